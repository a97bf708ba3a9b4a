"""Saving and loading realized models (a file of tensors and plain data, no pickle).

:func:`save_realized` / :func:`load_realized`
    The design: a realized model is saved as its module *tree*, not as a pickle. For every
    module the file holds its class (``"package.module:QualName"``), its plain attributes
    (numbers, strings, tuples, lists, dicts, None, and dataclasses such as ``realize_report``),
    its parameters and buffers (non-persistent ones too, e.g. ``CompactConv2d``'s gather
    indices), its children in order, and its forward hooks, which may only be pruning masks
    (re-created with ``torch.nn.utils.prune.custom_from_mask``) or methods of a module of the same
    model (skip projections). A ``torch.fx.GraphModule`` (the graph inside the ``InferenceModel``
    that ``realize`` returns by default, with BatchNorms folded and epilogues fused) is recorded
    by its graph, node by node: the op, the target (a function as ``"module:name"``, checked to
    import back to the same function), the arguments (other nodes by name). Everything is
    tensors and plain data, so the file loads with ``torch.load(weights_only=True)``: no pickled
    code runs. Loading imports each class (only from ``topoprune`` and ``torch``, unless
    ``trusted_modules`` names more), makes the instance *without calling its constructor*, and
    puts the saved attributes, tensors, children and hooks back; graph modules are rebuilt with
    ``torch.fx.GraphModule(root, graph)``, their functions imported from the same modules (plus
    ``operator``, ``math`` and a few harmless builtins). So every module comes back exactly as it
    was: each realize choice (``dense``, ``grouped``, ``direct`` with its tile, ``strided``
    pools, masks left on unreached layers), fused convs and their epilogues, narrowed layers,
    skip projections, and module types realize may produce later, with no per-type code here.
    Outputs are bit-for-bit those of the saved model on the same machine and thread count. A
    graph calls the functions it names when the model runs, like any model code: load files you
    made or trust.

    Why not ``torch.save(model)``: that pickles references to code that runs on load
    (``weights_only=False``, so only for files one trusts) and still breaks when a class moves.
    Why not the masked state plus the realize choices, rebuilt by re-realizing: the choices are
    not the whole story (``remove_empty`` narrows layers; realize may fold or fuse layers), so
    every new realize feature would need its own rebuild code.

    The format's limit is the same as any state-dict format's: a module class that is renamed or
    that gains attributes in ``__init__`` after the file was written cannot be rebuilt faithfully.
    ``save_realized(..., example_input=x)`` stores a probe (two samples and their outputs), and
    :func:`load_realized` then checks that the rebuilt model reproduces them, so such a change is
    a clear error rather than silently different outputs. To be safe across versions, keep the
    run folder: :func:`topoprune.experiments.trained.realize_run` rebuilds the realized model
    from it in one call.

Example
-------
>>> import tempfile, torch
>>> from pathlib import Path
>>> from topoprune.compact import realize
>>> from topoprune.models import create_model
>>> from topoprune.pruning import prune
>>> model = create_model("lenet5", in_channels=1, seed=0)
>>> _ = prune(model, "rgp", 0.5, nodes=4)
>>> x = torch.randn(4, 1, 28, 28)
>>> fast = realize(model, x, repeats=1, warmup=0)
>>> path = save_realized(fast, Path(tempfile.mkdtemp()) / "lenet5.pt", example_input=x)
>>> loaded = load_realized(path)
>>> torch.equal(loaded(x), fast(x)), loaded.realize_report == fast.realize_report
(True, True)
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.nn.utils import prune

from topoprune.errors import TopopruneError
from topoprune.files import atomic_write
from topoprune.measure.running import evaluating

SAVED_FORMAT = 1
SAVED_KIND = "topoprune-realized-model"
TRUSTED_MODULES = ("topoprune.", "torch.")
"""Where :func:`load_realized` imports module classes from by default."""

PROBE_SAMPLES = 2
PROBE_TOLERANCE = 1e-4
"""Largest difference on the probe, as a fraction of the largest probe output (other thread
counts or machines may round differently)."""

_MODULE_INTERNALS = frozenset(vars(nn.Module()))
_HOOK_KINDS = {"pre": "_forward_pre_hooks", "post": "_forward_hooks"}


# --- plain values ----------------------------------------------------------------------------


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _encode(value: Any, where: str) -> Any:
    """``value`` as tensors and plain data (``weights_only`` loads it); dataclasses tagged."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (int, float, str)) and not isinstance(value, enum.Enum):
        return next(base for base in (str, int, float) if isinstance(value, base))(value)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_encode(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _encode(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if "<locals>" in cls.__qualname__:
            raise TopopruneError(
                f"cannot save {where}: {cls.__qualname__} is defined in a function"
            )
        fields = {
            item.name: _encode(getattr(value, item.name), f"{where}.{item.name}")
            for item in dataclasses.fields(value)
            if item.init
        }
        return {"__dataclass__": _class_path(cls), "fields": fields}
    raise TopopruneError(
        f"cannot save {where}: a {type(value).__name__} is neither a tensor nor plain data "
        "(numbers, strings, tuples, lists, dicts, dataclasses)"
    )


def _decode(value: Any, trusted: tuple[str, ...]) -> Any:
    if isinstance(value, tuple):
        return tuple(_decode(item, trusted) for item in value)
    if isinstance(value, list):
        return [_decode(item, trusted) for item in value]
    if isinstance(value, dict):
        if "__dtype__" in value and len(value) == 1:
            return getattr(torch, value["__dtype__"])
        if "__device__" in value and len(value) == 1:
            return torch.device(value["__device__"])
        if "__dataclass__" in value and set(value) == {"__dataclass__", "fields"}:
            cls = _import_class(value["__dataclass__"], trusted)
            if not dataclasses.is_dataclass(cls):
                raise TopopruneError(f"{value['__dataclass__']} is no longer a dataclass")
            return cls(**{key: _decode(item, trusted) for key, item in value["fields"].items()})
        return {key: _decode(item, trusted) for key, item in value.items()}
    return value


def _is_trusted(module_name: str, trusted: tuple[str, ...]) -> bool:
    return any(
        module_name == prefix.rstrip(".") or module_name.startswith(prefix) for prefix in trusted
    )


def _import_class(path: str, trusted: tuple[str, ...]) -> type:
    module_name, _, qualname = path.partition(":")
    if not _is_trusted(module_name, trusted):
        raise TopopruneError(
            f"the file names the class {path}, outside {', '.join(trusted)}: pass "
            f"trusted_modules=({module_name.split('.')[0] + '.'!r},) if you trust this file"
        )
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        raise TopopruneError(
            f"the file names the class {path}, which this version of the code does not have: "
            "realize the run again (realize_run)"
        ) from None
    if not isinstance(found, type):
        raise TopopruneError(f"the file names {path}, which is not a class")
    return found


# --- torch.fx graphs (fused inference models) ------------------------------------------------

FUNCTION_MODULES = ("_operator", "operator", "math")
"""Modules besides the trusted ones whose functions a saved graph may call."""

SAFE_BUILTINS = frozenset(
    {"getattr", "len", "int", "float", "bool", "abs", "min", "max", "range", "slice", "tuple"}
)
"""The builtins a saved graph may call (``builtins.getattr`` for ``x.shape`` and the like)."""


def _resolve(module_name: str, name: str) -> Any:
    found: Any = importlib.import_module(module_name)
    for part in name.split("."):
        found = getattr(found, part)
    return found


def _function_path(function: Any, where: str) -> str:
    """``"module:name"`` that imports back to ``function`` itself."""
    module_name = getattr(function, "__module__", None) or ""
    names = [getattr(function, "__name__", None), getattr(function, "__qualname__", None)]
    for name in names:
        if module_name and name and "<locals>" not in name:
            try:
                if _resolve(module_name, name) is function:
                    return f"{module_name}:{name}"
            except (ImportError, AttributeError):
                pass
    raise TopopruneError(
        f"cannot save {where}: its graph calls {function!r}, which cannot be imported"
    )


def _function(path: str, trusted: tuple[str, ...]) -> Any:
    module_name, _, name = path.partition(":")
    allowed = _is_trusted(module_name, (*trusted, *FUNCTION_MODULES)) or (
        module_name == "builtins" and name in SAFE_BUILTINS
    )
    if not allowed:
        raise TopopruneError(f"the file's graph calls {path}, which load_realized does not import")
    try:
        return _resolve(module_name, name)
    except (ImportError, AttributeError):
        raise TopopruneError(
            f"the file's graph calls {path}, which this version of the code does not have: "
            "realize the run again (realize_run)"
        ) from None


def _encode_argument(value: Any, where: str) -> Any:
    """A node argument as plain data: nodes by name, slices and Ellipsis tagged."""
    if isinstance(value, fx.Node):
        return {"__node__": value.name}
    if isinstance(value, slice):
        parts = (value.start, value.stop, value.step)
        return {"__slice__": [_encode_argument(part, where) for part in parts]}
    if value is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(value, torch.memory_format):
        return {"__memory_format__": str(value).removeprefix("torch.")}
    if isinstance(value, tuple):
        return tuple(_encode_argument(item, where) for item in value)
    if isinstance(value, list):
        return [_encode_argument(item, where) for item in value]
    if isinstance(value, dict):
        return {key: _encode_argument(item, where) for key, item in value.items()}
    return _encode(value, where)


def _decode_argument(value: Any, nodes: dict[str, fx.Node], trusted: tuple[str, ...]) -> Any:
    if isinstance(value, tuple):
        return tuple(_decode_argument(item, nodes, trusted) for item in value)
    if isinstance(value, list):
        return [_decode_argument(item, nodes, trusted) for item in value]
    if isinstance(value, dict):
        if set(value) == {"__node__"}:
            return nodes[value["__node__"]]
        if set(value) == {"__slice__"}:
            return slice(*(_decode_argument(part, nodes, trusted) for part in value["__slice__"]))
        if set(value) == {"__ellipsis__"}:
            return Ellipsis
        if set(value) == {"__memory_format__"}:
            return getattr(torch, value["__memory_format__"])
        if set(value) & {"__dtype__", "__device__", "__dataclass__"}:
            return _decode(value, trusted)
        return {key: _decode_argument(item, nodes, trusted) for key, item in value.items()}
    return value


def _graph_record(module: fx.GraphModule, where: str) -> dict[str, Any]:
    nodes = []
    for node in module.graph.nodes:
        target = node.target
        if node.op == "call_function":
            target = _function_path(target, where or "the model")
        elif not isinstance(target, str):
            raise TopopruneError(
                f"cannot save {where or 'the model'}: a {node.op} node targets {target!r}"
            )
        nodes.append(
            {
                "op": node.op,
                "name": node.name,
                "target": target,
                "args": _encode_argument(tuple(node.args), where),
                "kwargs": _encode_argument(dict(node.kwargs), where),
            }
        )
    return {"class_name": type(module).__name__, "nodes": nodes}


def _graph(record: dict[str, Any], trusted: tuple[str, ...]) -> fx.Graph:
    graph = fx.Graph()
    nodes: dict[str, fx.Node] = {}
    for row in record["nodes"]:
        target = row["target"]
        if row["op"] == "call_function":
            target = _function(target, trusted)
        args = _decode_argument(row["args"], nodes, trusted)
        kwargs = _decode_argument(row["kwargs"], nodes, trusted)
        nodes[row["name"]] = graph.create_node(row["op"], target, args, kwargs, name=row["name"])
    graph.lint()
    return graph


def _graph_module_internals() -> frozenset[str]:
    return frozenset(vars(fx.GraphModule(nn.Module(), fx.Graph())))


# --- module trees ----------------------------------------------------------------------------


def _pruned_names(module: nn.Module) -> list[str]:
    return [
        hook._tensor_name
        for hook in module._forward_pre_hooks.values()
        if isinstance(hook, prune.BasePruningMethod)
    ]


def _hooks(module: nn.Module, where: str, paths: dict[int, str]) -> list[dict[str, Any]]:
    """The forward hooks of ``module``: pruning masks and methods of the model's modules."""
    rows = []
    for kind, attribute in _HOOK_KINDS.items():
        with_kwargs = getattr(module, f"{attribute}_with_kwargs")
        always = module._forward_hooks_always_called if kind == "post" else {}
        for handle, hook in getattr(module, attribute).items():
            if isinstance(hook, prune.BasePruningMethod):
                rows.append({"kind": kind, "prune": hook._tensor_name})
                continue
            owner = getattr(hook, "__self__", None)
            method = getattr(hook, "__func__", None)
            if (
                inspect.ismethod(hook)
                and id(owner) in paths
                and getattr(type(owner), method.__name__, None) is method
            ):
                rows.append(
                    {
                        "kind": kind,
                        "owner": paths[id(owner)],
                        "method": method.__name__,
                        "with_kwargs": bool(with_kwargs.get(handle, False)),
                        "always_call": bool(always.get(handle, False)),
                    }
                )
                continue
            raise TopopruneError(
                f"cannot save {where or 'the model'}: it has a forward hook {hook!r} that is "
                "neither a pruning mask nor a method of one of the model's modules"
            )
    return rows


def _module_record(module: nn.Module, where: str, paths: dict[int, str]) -> dict[str, Any]:
    cls, graph = type(module), None
    skipped = _MODULE_INTERNALS | set(_pruned_names(module))
    if isinstance(module, fx.GraphModule):  # its class is made per instance: record the graph
        cls, graph = fx.GraphModule, _graph_record(module, where)
        skipped |= _graph_module_internals()
    elif "<locals>" in cls.__qualname__:
        raise TopopruneError(
            f"cannot save {where or 'the model'}: its class {cls.__qualname__} is defined inside "
            "a function, so it cannot be imported when loading"
        )
    attributes = {
        name: _encode(value, f"{where or 'model'}.{name}")
        for name, value in vars(module).items()
        if name not in skipped
    }
    children = {}
    for name, child in module._modules.items():
        child_path = f"{where}.{name}" if where else name
        children[name] = None if child is None else paths.get(id(child), child_path)
    return {
        "class": _class_path(cls),
        "training": module.training,
        "attributes": attributes,
        "parameters": {
            name: None if p is None else p.detach().clone()
            for name, p in module._parameters.items()
        },
        "requires_grad": {
            name: p.requires_grad for name, p in module._parameters.items() if p is not None
        },
        "buffers": {
            name: None if b is None else b.detach().clone() for name, b in module._buffers.items()
        },
        "non_persistent": sorted(module._non_persistent_buffers_set),
        "children": children,
        "graph": graph,
    }


def _hook_owners(module: nn.Module) -> list[nn.Module]:
    """The modules whose methods are forward hooks of ``module``."""
    hooks = [*module._forward_pre_hooks.values(), *module._forward_hooks.values()]
    owners = (getattr(hook, "__self__", None) for hook in hooks if inspect.ismethod(hook))
    return [owner for owner in owners if isinstance(owner, nn.Module)]


def module_tree(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Every module of ``model`` as a record of tensors and plain data, by path (``""`` = root);
    a module reached twice is recorded once, at its first path. A module reachable only as the
    owner of a hook (a skip projection that a fused graph no longer calls) is recorded too, at
    the path ``"<hook owner N>"``."""
    paths: dict[int, str] = {}
    order: list[tuple[str, nn.Module]] = []
    queue = [("", model)]
    while queue:
        where, module = queue.pop(0)
        if id(module) in paths:
            continue
        paths[id(module)] = where
        order.append((where, module))
        for name, child in module._modules.items():
            if child is not None:
                queue.append((f"{where}.{name}" if where else name, child))
        if not queue:  # the tree is done: add the hook owners it does not hold
            owners = [
                owner for _, held in order for owner in _hook_owners(held) if id(owner) not in paths
            ]
            detached = sum(path.startswith("<") for path, _ in order)
            queue = [(f"<hook owner {i}>", owner) for i, owner in enumerate(owners, detached)]
    records = {}
    for where, module in order:
        record = _module_record(module, where, paths)
        record["hooks"] = _hooks(module, where, paths)
        records[where] = record
    return records


def _new_module(record: dict[str, Any], trusted: tuple[str, ...]) -> nn.Module:
    """The module of ``record`` without its children and hooks; a graph module comes back as a
    plain ``nn.Module`` holding its tensors, made a ``GraphModule`` once its children are in."""
    cls = nn.Module if record.get("graph") else _import_class(record["class"], trusted)
    if not issubclass(cls, nn.Module):
        raise TopopruneError(f"the file names {record['class']}, which is not a torch module")
    module = cls.__new__(cls)
    nn.Module.__init__(module)  # the bookkeeping only: the saved state replaces __init__'s work
    module.training = bool(record["training"])
    module.__dict__.update(
        {name: _decode(value, trusted) for name, value in record["attributes"].items()}
    )
    for name, tensor in record["parameters"].items():
        parameter = None
        if tensor is not None:
            parameter = nn.Parameter(tensor, requires_grad=record["requires_grad"][name])
        module.register_parameter(name, parameter)
    non_persistent = set(record["non_persistent"])
    for name, tensor in record["buffers"].items():
        module.register_buffer(name, tensor, persistent=name not in non_persistent)
    return module


def _restore_hooks(module: nn.Module, rows: list[dict[str, Any]], built: dict[str, nn.Module]):
    for row in rows:
        if "prune" in row:
            name = row["prune"]
            parameter = module._parameters.pop(f"{name}_orig")
            mask = module._buffers.pop(f"{name}_mask")
            module.register_parameter(name, parameter)
            prune.custom_from_mask(module, name, mask)
            continue
        hook = getattr(built[row["owner"]], row["method"])
        if row["kind"] == "pre":
            module.register_forward_pre_hook(hook, with_kwargs=row["with_kwargs"])
        else:
            module.register_forward_hook(
                hook, with_kwargs=row["with_kwargs"], always_call=row["always_call"]
            )


def build_module_tree(
    records: dict[str, dict[str, Any]], trusted: Iterable[str] = TRUSTED_MODULES
) -> nn.Module:
    """The model :func:`module_tree` recorded, rebuilt (see the module docstring)."""
    trusted = tuple(trusted)
    built = {where: _new_module(record, trusted) for where, record in records.items()}
    parents: dict[str, list[tuple[str, str]]] = {}
    for where, record in records.items():
        for name, child in record["children"].items():
            built[where]._modules[name] = None if child is None else built[child]
            if child is not None:
                parents.setdefault(child, []).append((where, name))
    for where, record in records.items():
        _restore_hooks(built[where], record["hooks"], built)
    graphs = [where for where, record in records.items() if record.get("graph")]
    for where in sorted(graphs, key=lambda path: -path.count(".") - bool(path)):  # inner first
        record = records[where]
        module = fx.GraphModule(
            built[where], _graph(record["graph"], trusted), record["graph"]["class_name"]
        )
        module.training = bool(record["training"])
        module.__dict__.update(
            {name: _decode(value, trusted) for name, value in record["attributes"].items()}
        )
        built[where] = module
        for parent, name in parents.get(where, []):
            built[parent]._modules[name] = module
    return built[""]


# --- files -----------------------------------------------------------------------------------


def _probe(model: nn.Module, example_input: torch.Tensor | tuple | None) -> dict[str, Any] | None:
    if example_input is None:
        return None
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    inputs = tuple(x.detach()[:PROBE_SAMPLES].clone() for x in inputs)
    with evaluating(model), torch.no_grad():
        outputs = model(*inputs)
    if not isinstance(outputs, torch.Tensor):
        raise TopopruneError("save_realized's probe needs a model that returns one tensor")
    return {"inputs": inputs, "output": outputs.detach().clone()}


def save_realized(
    model: nn.Module, path: str | Path, *, example_input: torch.Tensor | tuple | None = None
) -> Path:
    """Write ``model`` (a realized model, or any model of ``topoprune``/``torch`` modules) to
    ``path`` atomically, as its module tree (see the module docstring); returns ``path``.

    ``example_input``: a batch the model accepts; its first samples and the model's outputs on
    them are stored, and :func:`load_realized` checks that the rebuilt model reproduces them.
    Raises :class:`TopopruneError` (and writes nothing) when a module holds something other than
    tensors and plain data, or a hook that is neither a mask nor a method of the model.
    """
    from topoprune import __version__

    payload = {
        "format": SAVED_FORMAT,
        "kind": SAVED_KIND,
        "versions": {"topoprune": __version__, "torch": str(torch.__version__)},
        "modules": module_tree(model),
        "probe": _probe(model, example_input),
    }
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_realized(path: str | Path, *, trusted_modules: Iterable[str] = ()) -> nn.Module:
    """The model :func:`save_realized` wrote to ``path``, on the CPU, in the train/eval modes it
    was saved in (``realize_report`` and the other attributes included).

    ``trusted_modules``: module-name prefixes, beyond ``topoprune.`` and ``torch.``, whose classes
    the file may name (for models built from one's own classes). A file with a probe is checked:
    the rebuilt model must reproduce the stored outputs (to ``PROBE_TOLERANCE``) or this raises
    :class:`TopopruneError`.
    """
    path = Path(path)
    if not path.is_file():
        raise TopopruneError(f"no saved model at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file: one line
        raise TopopruneError(
            f"{path} is not a readable saved model ({err.__class__.__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("kind") != SAVED_KIND:
        raise TopopruneError(f"{path} is not a model written by save_realized")
    if payload.get("format") != SAVED_FORMAT:
        raise TopopruneError(
            f"{path} has format {payload.get('format')}; this version reads {SAVED_FORMAT}: "
            "realize the run again (realize_run)"
        )
    model = build_module_tree(payload["modules"], (*TRUSTED_MODULES, *trusted_modules))
    probe = payload.get("probe")
    if probe is not None:
        _check_probe(model, probe, path)
    return model


def _check_probe(model: nn.Module, probe: dict[str, Any], path: Path) -> None:
    expected = probe["output"]
    try:
        with evaluating(model), torch.no_grad():
            output = model(*probe["inputs"])
    except Exception as err:
        raise TopopruneError(
            f"the model rebuilt from {path} fails on its probe ({err.__class__.__name__}: "
            f"{str(err).strip()[:200]}): the code changed since it was saved; realize the run "
            "again (realize_run)"
        ) from None
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    same_shape = isinstance(output, torch.Tensor) and output.shape == expected.shape
    worst = float((output - expected).abs().max()) if same_shape and expected.numel() else 0.0
    if not same_shape or worst > PROBE_TOLERANCE * scale + 1e-6:
        raise TopopruneError(
            f"the model rebuilt from {path} does not reproduce the outputs saved with it: the "
            "code changed since it was saved; realize the run again (realize_run)"
        )
