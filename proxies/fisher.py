"""Fisher information of hidden activations, the channel-pruning saliency of Theis et al. (2018)
that Turner et al. (BlockSwap, ICLR 2020) use to rank networks.

For each hidden activation a (one channel per feature map or token feature) the saliency is
0.5 · mean over the batch of (Σ over positions of a · ∂L/∂a)², summed over channels and layers.
"Positions" are the spatial positions of a CNN feature map [B, C, H, W] or the tokens of a ViT
activation [B, N, C]. The public implementation (foresight) sums over every dimension after the
second, which on [B, N, C] is the channel dimension: it then scores tokens instead of channels.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import UndefinedScore, cross_entropy, record_calls


def hidden_activations(model: nn.Module) -> dict[nn.Module, int]:
    """The modules whose outputs are the hidden activations, each with its channel dimension.

    ViTs: the activation inside every timm `Mlp` (its `.act`, GELU in our spaces), channels last.
    CNNs: every `nn.ReLU` elsewhere, channels first (dimension 1), Turner et al.'s post-ReLU maps.
    """
    mlp_acts = {m.act: -1 for m in model.modules() if isinstance(m, Mlp)}
    relus = {m: 1 for m in model.modules() if isinstance(m, nn.ReLU) and m not in mlp_acts}
    return mlp_acts | relus


def channel_saliency(a: torch.Tensor, grad: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """0.5 · mean_b (Σ_positions a · ∂L/∂a)² for each channel of one activation."""
    prod = (a * grad).movedim(channel_dim, -1)
    per_sample = prod.reshape(prod.shape[0], -1, prod.shape[-1]).sum(dim=1)  # (B, C)
    return 0.5 * per_sample.pow(2).mean(dim=0)


@register("fisher")
class Fisher(Proxy):
    """Fisher, Σ over channels of hidden activations a of ½ mean_b (Σ_tokens a · ∂L/∂a)²."""

    needs = Needs(labels=True)
    reference = (
        "Turner et al., BlockSwap: Fisher-guided Block Substitution for Network Compression "
        "on a Budget, ICLR 2020"
    )

    def score(self, model: nn.Module, batch: Batch) -> float:
        channel_dims = hidden_activations(model)
        with record_calls(list(channel_dims)) as calls:
            loss = cross_entropy(model, batch)
        if not calls:
            raise UndefinedScore("fisher found no hidden activation (timm Mlp or nn.ReLU)")
        outputs = [c.output for c in calls]
        grads = torch.autograd.grad(loss, outputs, allow_unused=True, materialize_grads=True)
        return sum(
            channel_saliency(c.output, g, channel_dims[c.module]).sum()
            for c, g in zip(calls, grads)
        ).item()
