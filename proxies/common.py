"""Pieces that several proxies share: which parameters count as weights, activation hooks, the loss.

Weights. A proxy that sums "over weight tensors" (grad_norm, snip, grasp, plain, l2_norm, synflow,
dss) sums over the `weight` tensor of every Linear and Conv layer (`nn.Linear`, `nn.Conv1d/2d/3d`
and their subclasses), as Abdelfattah et al.'s reference implementation (foresight) does. Biases,
normalisation affines, class tokens, position embeddings and relative-position tables are not
weights: they are not what the papers prune, and including them would let a space's embedding
choices, rather than its layers, move the score.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from proxies.base import Batch

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear and Conv layers of `model` whose weight is trainable, in module order."""
    return [
        m for m in model.modules()
        if isinstance(m, WEIGHT_LAYERS) and m.weight is not None and m.weight.requires_grad
    ]


def weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight tensors that the proxies sum over (see the module docstring)."""
    return [m.weight for m in weight_layers(model)]


def cross_entropy(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of `model` on the batch's images and labels."""
    return F.cross_entropy(model(batch.x), batch.y)


def samples_interact(module: nn.Module) -> bool:
    """BatchNorm normalising with the statistics of the batch mixes the samples."""
    return isinstance(module, _BatchNorm) and (module.training or module.running_mean is None)


def interacting_modules(model: nn.Module) -> list[str]:
    """Names of the modules through which the samples of a batch interact (`samples_interact`)."""
    return [name for name, module in model.named_modules() if samples_interact(module)]


def loss_gradients(model: nn.Module, batch: Batch,
                   params: list[torch.Tensor]) -> tuple[list[torch.Tensor], int]:
    """∂L/∂p for the mean cross-entropy L on the batch, and into how many parts the batch was cut:
    out of GPU memory, where the samples do not interact, the size-weighted sum of the gradients
    of 2, 4, ... parts (a mean decomposes over the batch)."""
    parts = 1
    while True:
        try:
            return part_gradients(model, batch, params, parts), parts
        except torch.OutOfMemoryError:
            if 2 * parts > len(batch.x) or interacting_modules(model):
                raise
            parts *= 2
            if batch.x.is_cuda:
                torch.cuda.empty_cache()


def part_gradients(model: nn.Module, batch: Batch, params: list[torch.Tensor],
                   parts: int) -> list[torch.Tensor]:
    if parts == 1:
        return weight_gradients(cross_entropy(model, batch), params)
    total = [torch.zeros_like(p) for p in params]
    for x, y in zip(batch.x.chunk(parts), batch.y.chunk(parts)):
        part = Batch(x, y, batch.num_classes, batch.kind)
        for sum_, grad in zip(total, weight_gradients(cross_entropy(model, part), params)):
            sum_.add_(grad, alpha=len(x) / len(batch.x))
    return total


def weight_gradients(
    loss: torch.Tensor, params: list[torch.Tensor], create_graph: bool = False
) -> list[torch.Tensor]:
    """∂loss/∂p for each tensor in `params`; zeros for a tensor the loss does not reach."""
    grads = torch.autograd.grad(
        loss, params, create_graph=create_graph, allow_unused=True, materialize_grads=True
    )
    return list(grads)


@dataclass
class Recorded:
    """What one call of a hooked module saw: the module, its first positional input, its output."""

    module: nn.Module
    input: torch.Tensor
    output: torch.Tensor


@contextmanager
def record_calls(
    modules: list[nn.Module] | nn.Module, types: tuple[type, ...] = ()
) -> Iterator[list[Recorded]]:
    """Record the input and output of every call of the given modules while the block runs.

    Pass a list of modules, or a model and `types` to hook every submodule of those types
    (subclasses included). Yields a list that fills in call order; a module called twice appears
    twice. Tensors are kept in the autograd graph, so `torch.autograd.grad(loss, r.output)` gives
    the gradient at that activation. Hooks are removed when the block exits.
    """
    if isinstance(modules, nn.Module):
        modules = [m for m in modules.modules() if isinstance(m, types)]
    calls: list[Recorded] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        calls.append(Recorded(module, args[0] if args else None, output))

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def replace_modules(model: nn.Module, types: tuple[type, ...], make) -> int:
    """Replace every submodule of `types` by `make(old_module)`, in place; returns how many."""
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, types)
    ]
    for parent, name, child in targets:
        setattr(parent, name, make(child))
    return len(targets)


class UndefinedScore(ArithmeticError):
    """The proxy's formula has no value for this network and input (a singular kernel, a constant
    Jacobian). Raised instead of returning a silent inf or NaN, so the harness records the reason
    as the architecture's failure. Not a BenchError: the user's input is not at fault."""
