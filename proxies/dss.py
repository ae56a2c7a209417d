"""DSS, TF-TAS's training-free indicator for ViTs: synaptic diversity of the attention projections
plus synaptic saliency of the other Linear layers, both on the |W|, all-ones-input flow of SynFlow.

With R = Σ f(1) after every parameter is replaced by |θ|:
- attention projections (`qkv` and `proj` of every timm `Attention`, subclasses included):
  ‖∂R/∂W‖_nuc · ‖W‖_nuc, the synaptic diversity (a low-rank, redundant projection scores low);
- every other Linear layer (the MLPs, the head): Σ |∂R/∂W ⊙ W|, the synaptic saliency.
TF-TAS's code keeps LayerNorm and softmax active and removes only BatchNorm; so do we (BatchNorm
becomes its affine map, which at initialisation is the identity TF-TAS substitutes). LayerNorm
keeps activations near unit scale, so no log is needed here, unlike SynFlow. Only Linear layers
are summed (docs/proxies.md, `dss`); TF-TAS's code also adds the patch-embedding convolution's
saliency, which we leave out. Float64, like SynFlow, and for the nuclear norms' SVDs.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from timm.layers import Attention
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import record_calls, weight_gradients
from proxies.synflow import strip_normalization, synaptic_flow


def attention_projections(model: nn.Module) -> list[nn.Linear]:
    """The q/k/v and output projections of every timm Attention module of `model`."""
    return [
        layer
        for m in model.modules() if isinstance(m, Attention)
        for layer in (m.qkv, m.proj) if isinstance(layer, nn.Linear)
    ]


def gradient_nuclear_norm(output_grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """‖Gᵀ A‖_nuc, the nuclear norm of a Linear layer's weight gradient, from the gradients at its
    outputs G (T × out) and its inputs A (T × in), T the token rows.

    The gradient has rank ≤ T (T = 5 for a ViT at 32 px). With thin QR decompositions Gᵀ = Q_g R_g
    and Aᵀ = Q_a R_a, Gᵀ A = Q_g (R_g R_aᵀ) Q_aᵀ has the singular values of the T × T matrix
    R_g R_aᵀ, so the SVD costs T³ instead of out · in².
    """
    if len(inputs) >= min(output_grads.shape[1], inputs.shape[1]):
        return torch.linalg.svdvals(output_grads.T @ inputs).sum()
    r_g, r_a = torch.linalg.qr(output_grads.T).R, torch.linalg.qr(inputs.T).R
    return torch.linalg.svdvals(r_g @ r_a.T).sum()


@register("dss")
class DSS(Proxy):
    """DSS, Σ_attn ‖∂R/∂W‖_nuc ‖W‖_nuc + Σ_other Linear |W ⊙ ∂R/∂W|, R = Σ f(1) with θ → |θ|."""

    needs = Needs(float64=True, mutates=True, train_mode=False)
    reference = "Zhou et al., Training-free Transformer Architecture Search, CVPR 2022"

    def score(self, model: nn.Module, batch: Batch) -> float:
        strip_normalization(model, (_BatchNorm,))
        projections = attention_projections(model)
        others = [m for m in model.modules() if isinstance(m, nn.Linear) and m not in projections]
        with record_calls(projections) as calls:
            flow = synaptic_flow(model, batch)
        grads = weight_gradients(flow, [m.weight for m in others] + [c.output for c in calls])
        rows = defaultdict(lambda: ([], []))  # projection -> (output gradients, inputs) per call
        for call, g in zip(calls, grads[len(others):]):
            rows[call.module][0].append(g.reshape(-1, g.shape[-1]))
            rows[call.module][1].append(call.input.detach().reshape(-1, call.input.shape[-1]))
        with torch.no_grad():
            saliency = sum((m.weight * g).abs().sum() for m, g in zip(others, grads))
            diversity = sum(
                gradient_nuclear_norm(torch.cat(g), torch.cat(a))
                * torch.linalg.matrix_norm(m.weight, "nuc")
                for m, (g, a) in rows.items()
            )
        return float(saliency + diversity)
