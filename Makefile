# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench-graphs bench-quick results clean

# torch is installed first and pinned: with no torch installed, pip resolves the package's
# `torch>=2.1` to the newest CUDA build (several GB); with 2.13.0 (a CPU wheel) already there,
# the package's install keeps it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/topoprune demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench-graphs: $(STAMP)
	$(PY) benchmarks/graphs.py

bench-quick: $(STAMP)
	$(VENV)/bin/topoprune bench --config configs/quick-mnist5k.yaml --out runs/bench-quick --workers 2

# the quick comparison, published as docs/results.md (finished runs in runs/bench-quick are kept)
results: $(STAMP)
	$(VENV)/bin/topoprune bench --config configs/quick-mnist5k.yaml --out runs/bench-quick --workers 2 --publish docs/results.md

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
