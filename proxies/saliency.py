"""Weight-saliency proxies from pruning-at-initialisation: functions of W and ∂L/∂W.

L is the mean cross-entropy on one labelled batch and the sums run over the weight tensors of
every Linear and Conv layer (`proxies.common.weights`). The model is in train mode, as in
Abdelfattah et al.'s reference implementation: on a CNN with BatchNorm the gradients therefore
depend on the statistics of the whole batch; ViTs (LayerNorm only) have no such interaction.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from proxies.base import Batch, Needs, Proxy, register, shared
from proxies.common import cross_entropy, loss_gradients, weight_gradients, weights

ZERO_COST = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


class LossGradientProxy(Proxy):
    """A proxy Σ over the weight tensors W of term(W, ∂L/∂W), L the cross-entropy on the batch.

    grad_norm, snip and plain of one architecture share one loss gradient (proxies.base.shared).
    """

    needs = Needs(labels=True)
    reference = ZERO_COST

    def term(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, model: nn.Module, batch: Batch) -> float:
        ws = weights(model)
        grads, parts = shared(("loss gradients",), (model, batch.x, batch.y),
                              lambda: loss_gradients(model, batch, ws))
        if parts > 1:
            self.add_note(f"loss gradient summed over {parts} parts of the batch after running "
                          "out of memory")
        return sum(self.term(w, g) for w, g in zip(ws, grads)).item()


@register("grad_norm")
class GradNorm(LossGradientProxy):
    """Gradient norm, Σ over weight tensors of ‖∂L/∂W‖₂ (Frobenius norm per tensor)."""

    def term(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return g.norm()


@register("snip")
class Snip(LossGradientProxy):
    """SNIP connection sensitivity, Σ |W ⊙ ∂L/∂W|."""

    reference = (
        "Lee et al., SNIP: Single-shot Network Pruning based on Connection Sensitivity, ICLR 2019"
    )

    def term(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (w * g).abs().sum()


@register("plain")
class Plain(LossGradientProxy):
    """Plain saliency, Σ W ⊙ ∂L/∂W (signed: the first-order Taylor change of the loss)."""

    def term(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (w * g).sum()


@register("grasp")
class Grasp(Proxy):
    """GraSP, −Σ W ⊙ (H g), g = ∂L/∂W, H the Hessian of the loss (by double backprop)."""

    needs = Needs(labels=True)
    reference = (
        "Wang et al., Picking Winning Tickets Before Training by Preserving Gradient Flow, "
        "ICLR 2020"
    )

    def score(self, model: nn.Module, batch: Batch) -> float:
        # Hessian-gradient product by double backprop: H g = ∂/∂W (∂L/∂W · stop_grad(g)).
        # One forward pass serves both derivatives, so dropout (if any) sees one mask. No
        # temperature on the logits (T = 1, as Abdelfattah et al. evaluate it). The fused
        # scaled-dot-product attention kernels have no double backward; the math kernel has.
        ws = weights(model)
        with sdpa_kernel(SDPBackend.MATH):
            loss = cross_entropy(model, batch)
        grads = weight_gradients(loss, ws, create_graph=True)
        g_dot_g = sum((g * g.detach()).sum() for g in grads)
        hessian_grads = weight_gradients(g_dot_g, ws)
        return -sum((w * hg).sum() for w, hg in zip(ws, hessian_grads)).item()


@register("l2_norm")
class L2Norm(Proxy):
    """Weight magnitude, Σ over weight tensors of ‖W‖₂ (Frobenius norm per tensor)."""

    needs = Needs(gradients=False, train_mode=False)
    reference = ZERO_COST

    def score(self, model: nn.Module, batch: Batch) -> float:
        with torch.no_grad():
            return sum(w.norm() for w in weights(model)).item()
