"""Inference fusion: BatchNorm folded into the conv before it, the residual add and the ReLU run in
the conv's output pass.

``fuse_for_inference(model)`` traces ``model`` with ``torch.fx`` (topoprune's compact forms are
leaves) and rewrites the graph:

1. ``conv → BatchNorm2d`` (the BatchNorm the conv's only reader, eval statistics): the BatchNorm's
   ``scale = γ / sqrt(var + ε)`` and ``shift = β − mean · scale`` are multiplied into the conv's
   weight and bias, and the BatchNorm disappears;
2. identities (``nn.Identity``, ``nn.Dropout`` in eval) are dropped;
3. ``conv → [+ residual] → [ReLU | ReLU6]``, each step the previous one's only reader: the conv
   becomes a :class:`FusedConv2d` called as ``conv(x, residual)``, which hands the add and the
   clamp to the conv form's ``fused_forward`` (the native kernel does them as it writes each
   output) or applies them in place on the conv's result.

Masked convs (``torch.nn.utils.prune``) get their mask folded into a plain conv first. The result
is an :class:`InferenceModel`, whose ``train()`` refuses with one line: its BatchNorm statistics
are baked into the weights.

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
>>> fused = fuse_for_inference(model)
>>> [type(module).__name__ for module in fused.network.children()]
['FusedConv2d']
>>> x = torch.randn(2, 3, 6, 6)
>>> torch.allclose(fused(x), model(x), atol=1e-5)
True
"""

from __future__ import annotations

import operator
from collections import Counter

import torch
import torch.nn.functional as F
from torch import fx, nn

from topoprune.compact.epilogue import NO_CLAMP, RELU, RELU6, Clamp, apply_epilogue
from topoprune.compact.masked import copy_model, folded_conv, is_masked_conv
from topoprune.errors import TopopruneError
from topoprune.measure.rules import mac_rule

_ADDS = (operator.add, operator.iadd, torch.add)
_CLAMPS: dict[object, Clamp] = {
    nn.ReLU: RELU,
    nn.ReLU6: RELU6,
    F.relu: RELU,
    torch.relu: RELU,
    F.relu6: RELU6,
}

TRAIN_REFUSAL = (
    "this model is fused for inference (BatchNorm folded into the convs) and cannot train; "
    "train the masked model, or call realize(..., trainable=True)"
)


class FusedConv2d(nn.Module):
    """A conv form (``nn.Conv2d``, ``CompactConv2d``, …) with its epilogue: ``clamp(conv(x) +
    residual)``.

    ``forward(x, residual=None)``: ``x`` (B, C_in, H, W), ``residual`` (B, C_out, H', W') or
    None → (B, C_out, H', W'). Forms with a ``fused_forward(x, residual, clamp)`` method do the
    epilogue themselves (the native kernel in its output pass). :func:`topoprune.count` counts
    the conv's MACs here, and its parameters on the conv.
    """

    def __init__(self, conv: nn.Module, clamp: Clamp = NO_CLAMP) -> None:
        super().__init__()
        self.conv = conv
        self.clamp = clamp

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        # The conv runs through its methods, not its __call__: its MACs are this module's own
        # (mac_counts), counted once.
        fused_forward = getattr(self.conv, "fused_forward", None)
        if fused_forward is not None:
            return fused_forward(x, residual, self.clamp)
        return apply_epilogue(self.conv.forward(x), residual, self.clamp)

    def mac_counts(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """``(macs, dense_macs)`` of one call: the wrapped conv's (the epilogue counts none)."""
        return mac_rule(self.conv)(self.conv, x, y)

    def extra_repr(self) -> str:
        return f"clamp={self.clamp}"


class InferenceModel(nn.Module):
    """A fused model for inference only: ``network`` is the rewritten ``torch.fx.GraphModule``.

    ``train()`` (and ``train(True)``) raise :class:`TopopruneError`; ``eval()`` is allowed.
    """

    def __init__(self, graph: fx.GraphModule) -> None:
        super().__init__()
        self.network = graph
        super().train(False)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.network(*args)

    def train(self, mode: bool = True) -> InferenceModel:
        if mode:
            raise TopopruneError(TRAIN_REFUSAL)
        return super().train(False)


class _Tracer(fx.Tracer):
    """Keeps topoprune's compact modules (native kernels, data-dependent paths) as leaves."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        own = type(module).__module__.startswith("topoprune.compact")
        return own or super().is_leaf_module(module, qualified_name)


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except Exception as error:  # fx raises many kinds on code it cannot trace
        raise TopopruneError(
            f"cannot fuse {type(model).__name__} for inference: torch.fx could not trace it "
            f"({type(error).__name__}: {str(error).splitlines()[0]}); use "
            "realize(..., trainable=True)"
        ) from error
    return fx.GraphModule(model, graph, type(model).__name__)


def _module(graph: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return graph.get_submodule(node.target) if node.op == "call_module" else None


def _lone_convs(graph: fx.GraphModule) -> list[fx.Node]:
    """The calls of conv forms that may be folded or fused: each module called once in the graph
    (folding or fusing changes every call of it) and without hooks (a fused conv runs its conv's
    methods, not its hooks); in graph order, so that the rewrite is the same on every run."""
    calls = Counter(node.target for node in graph.graph.nodes if node.op == "call_module")
    convs = []
    for node in graph.graph.nodes:
        module = _module(graph, node)
        if module is None or module._forward_hooks or module._forward_pre_hooks:
            continue
        if calls[node.target] == 1 and (
            isinstance(module, nn.Conv2d) or hasattr(module, "scale_outputs")
        ):
            convs.append(node)
    return convs


def _only_reader(node: fx.Node) -> fx.Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _set_module(graph: fx.GraphModule, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(graph.get_submodule(parent), child, module)


@torch.no_grad()
def _fold_batch_norm(conv: nn.Module, norm: nn.BatchNorm2d) -> nn.Module:
    """A copy of ``conv`` computing ``norm(conv(x))`` with ``norm``'s eval statistics."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    folded = copy_model(conv)
    if isinstance(folded, nn.Conv2d):
        folded.weight.mul_(scale.reshape(-1, 1, 1, 1))
        bias = shift if folded.bias is None else folded.bias * scale + shift
        folded.bias = nn.Parameter(bias.clone())
    else:
        folded.scale_outputs(scale, shift)
    return folded


def _foldable(norm: nn.Module | None) -> bool:
    return (
        isinstance(norm, nn.BatchNorm2d)
        and norm.running_mean is not None
        and norm.affine
        and type(norm) is nn.BatchNorm2d
    )


def fold_batch_norms(graph: fx.GraphModule) -> int:
    """Fold every ``conv → BatchNorm2d`` pair of ``graph`` in place; returns how many."""
    folded = 0
    for node in _lone_convs(graph):
        reader = _only_reader(node)
        if reader is None or not _foldable(_module(graph, reader)):
            continue
        _set_module(
            graph, node.target, _fold_batch_norm(_module(graph, node), _module(graph, reader))
        )
        reader.replace_all_uses_with(node)
        graph.graph.erase_node(reader)
        folded += 1
    return folded


def _clamp_of(graph: fx.GraphModule, node: fx.Node) -> Clamp | None:
    """The clamp ``node`` applies to its only tensor argument, or None if it is no activation."""
    if node.op == "call_module":
        return _CLAMPS.get(type(_module(graph, node)))
    if node.op == "call_function" and len(node.args) == 1 and not node.kwargs:
        return _CLAMPS.get(node.target)
    if node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1:
        return RELU
    return None


def _residual_of(node: fx.Node, conv_output: fx.Node) -> fx.Node | None:
    """The other operand when ``node`` adds two tensors one of which is ``conv_output``."""
    if node.op != "call_function" or node.target not in _ADDS or node.kwargs:
        return None
    if len(node.args) != 2 or conv_output not in node.args:
        return None
    other = node.args[1] if node.args[0] is conv_output else node.args[0]
    return other if isinstance(other, fx.Node) and other is not conv_output else None


def fuse_epilogues(graph: fx.GraphModule) -> int:
    """Turn each ``conv → [+ residual] → [ReLU]`` chain of ``graph`` into one ``FusedConv2d``
    call, in place; returns how many convs took an epilogue."""
    fused = 0
    for node in _lone_convs(graph):
        if len(node.args) != 1 or node.kwargs:
            continue
        chain, residual, clamp = [node], None, NO_CLAMP
        reader = _only_reader(node)
        if reader is not None and (other := _residual_of(reader, node)) is not None:
            chain.append(reader)
            residual, reader = other, _only_reader(reader)
        if reader is not None and (found := _clamp_of(graph, reader)) is not None:
            chain.append(reader)
            clamp = found
        if len(chain) == 1:
            continue
        _set_module(graph, node.target, FusedConv2d(_module(graph, node), clamp))
        with graph.graph.inserting_before(chain[-1]):  # after the residual is computed
            call = graph.graph.call_module(node.target, (node.args[0], residual))
        chain[-1].replace_all_uses_with(call)
        for dead in reversed(chain):  # each one's only reader is erased before it
            graph.graph.erase_node(dead)
        fused += 1
    return fused


def drop_identities(graph: fx.GraphModule) -> int:
    """Remove the calls of ``graph`` to ``nn.Identity`` and ``nn.Dropout`` (eval: the identity);
    returns how many."""
    dropped = 0
    for node in list(graph.graph.nodes):
        if isinstance(_module(graph, node), nn.Identity | nn.Dropout) and len(node.args) == 1:
            node.replace_all_uses_with(node.args[0])
            graph.graph.erase_node(node)
            dropped += 1
    return dropped


def _fold_masks(model: nn.Module) -> None:
    """Replace every masked conv of ``model`` (in place) by a plain conv with the mask folded in."""
    for name, module in list(model.named_modules()):
        if is_masked_conv(module):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, folded_conv(module))


def fuse_for_inference(model: nn.Module) -> InferenceModel:
    """A fused inference copy of ``model`` (see the module docstring); ``model`` is not modified.

    Outputs equal ``model.eval()``'s to float tolerance. Raises TopopruneError when torch.fx
    cannot trace the model.
    """
    copy = copy_model(model).eval()
    _fold_masks(copy)
    graph = _trace(copy)
    drop_identities(graph)
    fold_batch_norms(graph)
    fuse_epilogues(graph)
    graph.graph.lint()
    graph.delete_all_unused_submodules()
    graph.recompile()
    return InferenceModel(graph)
