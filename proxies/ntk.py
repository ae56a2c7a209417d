"""NTK proxies of TE-NAS (Chen et al., ICLR 2021) and NASI (Shu et al., ICLR 2022): functions of
the empirical Neural Tangent Kernel Θ = J Jᵀ on one batch (proxies/ntk_kernel.py).

A well-conditioned NTK means gradient descent moves every direction of the training signal at a
similar rate, so TE-NAS ranks networks by the condition number κ = λ_max/λ_min (negated here:
higher is better). The trace tr(Θ)/N, the mean squared per-sample gradient norm, is NASI's
trainability measure in the form the project uses.

The model is in train mode as in TE-NAS: with BatchNorm the samples then interact, and the kernel
is computed by TE-NAS's per-sample backward passes instead of the fast per-layer construction;
the proxy's `note` says when it took that path, and why (the runner records it beside the score).
"""

from __future__ import annotations

import torch
from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from proxies.ntk_kernel import condition_number, ntk_kernel

TE_NAS = ("Chen et al., Neural Architecture Search on ImageNet in Four GPU Hours: "
          "A Theoretically Inspired Perspective (TE-NAS), ICLR 2021")


class KernelProxy(Proxy):
    """A proxy computed from the empirical NTK; remembers which construction computed it."""

    needs = Needs()
    kernel_method: str = ""

    def kernel(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Θ (N x N, float64) of `model` on images `x`."""
        ntk = ntk_kernel(model, x)
        self.kernel_method = ntk.method
        if ntk.reason:
            self.note = f"naive NTK (per-sample backward): {ntk.reason}"
        return ntk.kernel


@register("ntk")
class NTKConditionNumber(KernelProxy):
    """NTK condition number, −λ_max/λ_min of Θ = J Jᵀ, J_i = ∂Σ_c f_c(x_i)/∂θ over all parameters."""

    reference = TE_NAS

    def score(self, model: nn.Module, batch: Batch) -> float:
        return -condition_number(self.kernel(model, batch.x))


@register("ntk_trace")
class NTKTrace(KernelProxy):
    """NTK trace per sample, tr(Θ)/N: the mean squared norm of the per-sample gradients."""

    reference = ("Shu et al., NASI: Label- and Data-agnostic Neural Architecture Search at "
                 "Initialization, ICLR 2022 (trace form)")

    def score(self, model: nn.Module, batch: Batch) -> float:
        kernel = self.kernel(model, batch.x)
        return (kernel.trace() / len(kernel)).item()
