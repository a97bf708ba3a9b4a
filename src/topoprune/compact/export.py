"""Export a realized (or masked, or dense) model to ONNX, checked in onnxruntime.

:func:`export_onnx` writes one self-contained ``.onnx`` file (weights inside) whose first
dimension, the batch, is dynamic, and, with ``check=True``, runs it in onnxruntime
(``CPUExecutionProvider``) and compares it with the PyTorch model before the file is written.

What is exported is a copy of the model in eval mode, as it computes:

- masks (``torch.nn.utils.prune``: ``weight_orig`` × ``weight_mask``) are folded into the weights,
  so a masked model exports as plain layers with zeros where the mask removed weights;
- modules with a native path (``CompactConv2d``'s ``"direct"`` kernel, loaded with ctypes, which
  no exporter can record) are exported through their torch ops: such a module checks whether it
  is being exported (:func:`topoprune.compact.native_call.can_run_natively`) and then runs its
  pure-torch form, which computes the same outputs. ``CompactConv2d`` copies are also switched to
  ``impl="grouped"`` before the export. Any other module with a native path must follow the same
  rule; the onnxruntime check catches one that does not.

Which exporter, and why: ``torch.onnx.export(..., dynamo=True)``, the ``torch.export``-based
exporter (it needs ``onnxscript``; the default since torch 2.9). The legacy TorchScript exporter
(``dynamo=False``) is deprecated there, and with a dynamic batch it fails on LeNet-5's
``adaptive_avg_pool2d`` ("input size not accessible"); the dynamo exporter exports every model
of the zoo, masked or realized (``CompactConv2d``'s gathers and grouped conv, ``BlockMaxPool2d``'s
strided maxima), with a dynamic batch, and onnxruntime reproduces PyTorch's outputs to float
rounding (``tests/compact/test_export.py``). The spatial size stays fixed at the example's.

Install the extras with ``pip install 'topoprune[export]'`` (onnx, onnxscript, onnxruntime).
An example is in :func:`export_onnx`'s docstring.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact.compact_conv import CompactConv2d
from topoprune.compact.masked import copy_model
from topoprune.errors import TopopruneError
from topoprune.files import atomic_write
from topoprune.measure.running import evaluating

EXPORT_PACKAGES = ("onnx", "onnxscript")
"""What the exporter needs (``onnxruntime`` too, to check)."""

RELATIVE_TOLERANCE = 1e-4
"""The largest difference allowed between onnxruntime and PyTorch, as a fraction of the
largest output magnitude (float32; 10 × epsilon for coarser float types)."""

ABSOLUTE_FLOOR = 1e-6
"""An absolute allowance on top, for outputs that are all (nearly) zero."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how the onnxruntime check went.

    ``input_shapes``: the example inputs' shapes (dimension 0 is dynamic in the file);
    ``check_batches``: the batch sizes run in onnxruntime (the example's and one more, to show the
    batch is dynamic); ``max_abs_diff``: the largest difference from PyTorch over those runs,
    ``output_scale`` the largest output magnitude, ``tolerance`` the relative difference allowed
    (all None without a check).
    """

    path: Path
    bytes: int
    opset: int
    input_shapes: list[tuple[int, ...]]
    input_names: list[str]
    output_names: list[str]
    checked: bool
    check_batches: tuple[int, ...] = ()
    max_abs_diff: float | None = None
    output_scale: float | None = None
    tolerance: float | None = None
    seconds: float = 0.0
    exporter: str = field(default="torch.onnx.export(dynamo=True)")

    @property
    def relative_diff(self) -> float | None:
        """``max_abs_diff`` as a fraction of ``output_scale`` (None without a check)."""
        if self.max_abs_diff is None or self.output_scale is None:
            return None
        return self.max_abs_diff / self.output_scale if self.output_scale > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {**asdict(self), "path": str(self.path), "relative_diff": self.relative_diff}

    def describe(self) -> str:
        """One line: file, size, opset, and the check against PyTorch."""
        size = f"{self.bytes / 1e6:.2f} MB" if self.bytes >= 1e5 else f"{self.bytes / 1e3:.1f} kB"
        line = f"wrote {self.path} ({size}, opset {self.opset}, dynamic batch)"
        if not self.checked:
            return line + "; not checked in onnxruntime"
        batches = ", ".join(str(batch) for batch in self.check_batches)
        return (
            f"{line}; onnxruntime vs PyTorch at batch {batches}: max abs diff "
            f"{self.max_abs_diff:.3g} ({self.relative_diff:.3g} of the output scale "
            f"{self.output_scale:.3g})"
        )


def check_export_packages(*, check: bool = True) -> None:
    """Refuse (one line) when the packages the export needs are not installed."""
    names = (*EXPORT_PACKAGES, "onnxruntime") if check else EXPORT_PACKAGES
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise TopopruneError(
            f"ONNX export needs {', '.join(missing)}: pip install 'topoprune[export]'"
        )


def deployable_copy(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` in eval mode as it is exported: every pruning mask folded into its
    parameter (``torch.nn.utils.prune.remove``), ``CompactConv2d`` on its torch ops."""
    deployed = copy_model(model)
    for module in deployed.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
        if isinstance(module, CompactConv2d):
            module.impl = "grouped"
    return deployed.cpu().eval()


def _as_inputs(example_input: torch.Tensor | tuple) -> tuple[torch.Tensor, ...]:
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if not inputs or not all(isinstance(x, torch.Tensor) and x.dim() >= 1 for x in inputs):
        raise TopopruneError("export_onnx needs example_input as a batch tensor (or a tuple)")
    batches = {x.shape[0] for x in inputs}
    if len(batches) != 1 or 0 in batches:
        raise TopopruneError(
            f"export_onnx needs example inputs with one batch size >= 1; got {sorted(batches)}"
        )
    return tuple(x.detach() for x in inputs)


def _grow(inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The inputs with the first sample repeated once more: a batch one larger."""
    return tuple(torch.cat([x, x[:1]]) for x in inputs)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's own notices (optional torchvision ops, torch-internal deprecations)
    for the duration of the export; errors still propagate."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        logger.setLevel(level)


def _flat_outputs(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [tensor for item in output for tensor in _flat_outputs(item)]
    if isinstance(output, dict):
        return [tensor for item in output.values() for tensor in _flat_outputs(item)]
    raise TopopruneError(
        f"export_onnx exports models that return tensors; this one returns {type(output).__name__}"
    )


class _Exported(nn.Module):
    """The model under one more level: torch.export's unlifting fails on a top-level child named
    ``graph`` (it clashes with the unlifted module's own ``graph``), and any forward signature
    becomes ``*inputs``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.model(*inputs)


def _to_onnx(
    deployed: nn.Module, inputs: tuple[torch.Tensor, ...], opset: int | None
) -> tuple[bytes, list[str], list[str], int]:
    """The serialised ONNX model, its input and output names, and its default-domain opset."""
    with torch.no_grad():
        outputs = _flat_outputs(deployed(*inputs))
    input_names = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    output_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    # torch.export treats a size-1 dimension as a constant: trace a batch of at least 2.
    traced = _grow(inputs) if inputs[0].shape[0] == 1 else inputs
    try:
        batch = torch.export.Dim("batch")
        dynamic = torch.export.ShapesCollection()  # by tensor, whatever the forward's signature
        for x in traced:
            dynamic[x] = {0: batch}
        with _quiet_exporter():
            program = torch.onnx.export(
                _Exported(deployed),
                traced,
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                dynamic_shapes=dynamic,
                verbose=False,
            )
        proto = program.model_proto
        data = proto.SerializeToString()
    except TopopruneError:
        raise
    except Exception as err:  # the exporter raises many kinds: name it in one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise TopopruneError(
            f"ONNX export failed ({err.__class__.__name__}: {first[:300]})"
        ) from None
    opsets = [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
    return data, input_names, output_names, opsets[0] if opsets else 0


def _tolerance(dtype: torch.dtype) -> float:
    return max(RELATIVE_TOLERANCE, 10 * torch.finfo(dtype).eps)


def _check(
    model: nn.Module,
    data: bytes,
    inputs: tuple[torch.Tensor, ...],
    input_names: list[str],
) -> tuple[tuple[int, ...], float, float, float]:
    """Run the ONNX model in onnxruntime at the example batch and one larger; compare with
    ``model`` in eval mode. Returns (batches, max abs diff, output scale, tolerance)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise TopopruneError(
            f"onnxruntime cannot load the exported model ({err.__class__.__name__}: "
            f"{str(err).strip()[:300]})"
        ) from None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    batches, worst, scale, tolerance = [], 0.0, 0.0, RELATIVE_TOLERANCE
    for batch_inputs in (inputs, _grow(inputs)):
        with evaluating(model), torch.no_grad():
            expected = _flat_outputs(model(*(x.to(device) for x in batch_inputs)))
        feed = {name: x.cpu().numpy() for name, x in zip(input_names, batch_inputs, strict=True)}
        try:
            got = session.run(None, feed)
        except Exception as err:
            raise TopopruneError(
                f"onnxruntime cannot run the exported model at batch "
                f"{batch_inputs[0].shape[0]} ({err.__class__.__name__}: {str(err).strip()[:300]})"
            ) from None
        for reference, output in zip(expected, got, strict=True):
            reference = reference.detach().cpu()
            output = torch.from_numpy(output)
            if tuple(output.shape) != tuple(reference.shape):
                raise TopopruneError(
                    f"the ONNX model's output is {tuple(output.shape)}, PyTorch's "
                    f"{tuple(reference.shape)}: the export is wrong, file not written"
                )
            if reference.is_floating_point():
                tolerance = max(tolerance, _tolerance(reference.dtype))
                reference, output = reference.double(), output.double()
            if reference.numel():
                worst = max(worst, float((output - reference).abs().max()))
                scale = max(scale, float(reference.abs().max()))
        batches.append(batch_inputs[0].shape[0])
    return tuple(batches), worst, scale, tolerance


def export_onnx(
    model: nn.Module,
    example_input: torch.Tensor | tuple,
    path: str | Path,
    *,
    check: bool = True,
    opset: int | None = None,
) -> ExportReport:
    """Export ``model`` (realized, masked or dense) to the ONNX file ``path``; see the module
    docstring for what is exported and with which exporter.

    ``example_input``: a batch like the ones the model will serve (or a tuple of forward
    arguments, batch first); the file takes any batch size, the other dimensions as given.
    ``check``: run the file in onnxruntime at the example batch and one larger, compare with
    ``model`` in eval mode and raise :class:`TopopruneError` when the largest difference exceeds
    ``RELATIVE_TOLERANCE`` of the largest output magnitude (plus ``ABSOLUTE_FLOOR``).
    ``opset``: the ONNX opset to target (default: the exporter's).

    The file is written atomically and only once the export (and the check) succeeded: a failure
    leaves nothing behind, and an existing file at ``path`` is replaced only by a good one.
    ``model`` itself is not modified (its train/eval modes are restored).

    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh())
    >>> path = Path(tempfile.mkdtemp()) / "net.onnx"
    >>> report = export_onnx(net, torch.randn(1, 8), path)
    >>> path.stat().st_size == report.bytes, report.input_names, report.output_names
    (True, ['input'], ['output'])
    """
    started = time.perf_counter()
    check_export_packages(check=check)
    inputs = _as_inputs(example_input)
    path = Path(path)
    deployed = deployable_copy(model)
    data, input_names, output_names, opset_used = _to_onnx(deployed, inputs, opset)
    report = ExportReport(
        path=path,
        bytes=len(data),
        opset=opset_used,
        input_shapes=[tuple(x.shape) for x in inputs],
        input_names=input_names,
        output_names=output_names,
        checked=check,
    )
    if check:
        batches, worst, scale, tolerance = _check(model, data, inputs, input_names)
        report.check_batches, report.max_abs_diff = batches, worst
        report.output_scale, report.tolerance = scale, tolerance
        if worst > tolerance * scale + ABSOLUTE_FLOOR:
            raise TopopruneError(
                f"the ONNX model differs from PyTorch by up to {worst:.3g} (output scale "
                f"{scale:.3g}, allowed {tolerance:g} of it): export not written to {path}"
            )
    atomic_write(path, lambda handle: handle.write(data))
    report.seconds = time.perf_counter() - started
    return report
