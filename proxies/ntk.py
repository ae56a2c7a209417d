"""NTK proxies of TE-NAS (Chen et al., ICLR 2021) and NASI (Shu et al., ICLR 2022): functions of
the empirical Neural Tangent Kernel Θ = J Jᵀ on one batch (proxies/ntk_kernel.py).

A well-conditioned NTK means gradient descent moves every direction of the training signal at a
similar rate, so TE-NAS ranks networks by the condition number κ = λ_max/λ_min (negated here:
higher is better). The trace tr(Θ)/N, the mean squared per-sample gradient norm, is NASI's
trainability measure in the form the project uses.

The model is in train mode as in TE-NAS: with BatchNorm the samples then interact, and the kernel
is computed by TE-NAS's per-sample backward passes instead of the fast per-layer construction;
the proxy's `note` says when it took that path, and why (the runner records it beside the score).

Precision: κ of an untrained network's NTK reaches 1e7 and more, and λ_min carries the relative
round-off of the per-sample gradients times κ (float32: ~1e-7 · 1e7 = all of it). So the model and
batch run in float64 (`Needs(kernel=True)`; a run may ask for float32 kernels), TF32 is off, and
a score whose κ·ε of that dtype exceeds 1e-2 gets a note that its κ is beyond the dtype's
resolution. Proxies of one architecture share one kernel per (model, inputs): `ntk` and
`ntk_trace` build it once (proxies.base.shared).
"""

from __future__ import annotations

import torch
from torch import nn

from proxies.base import Batch, Needs, Proxy, register, shared
from proxies.ntk_kernel import condition_number, ntk_kernel

TE_NAS = ("Chen et al., Neural Architecture Search on ImageNet in Four GPU Hours: "
          "A Theoretically Inspired Perspective (TE-NAS), ICLR 2021")

# κ·ε above this: the condition number is beyond what the kernel's dtype resolves.
RESOLUTION_LIMIT = 1e-2


class KernelProxy(Proxy):
    """A proxy computed from the empirical NTK; says in its note how the kernel was built."""

    needs = Needs(kernel=True, min_batch=2)
    version = 2  # float64 kernels, checked fast path
    kernel_method: str = ""  # "fast" or "naive": how the last kernel was built

    def kernel(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Θ (N x N, float64) of `model` on images `x`, shared with the other kernel proxies."""
        ntk = shared(("ntk",), (model, x), lambda: ntk_kernel(model, x))
        self.kernel_method = ntk.method
        if ntk.reason:
            self.add_note(f"naive NTK (per-sample backward): {ntk.reason}")
        if ntk.blocks > 1:
            self.add_note(f"kernel built from pairs of {ntk.blocks} blocks of the batch after "
                          "running out of memory")
        return ntk.kernel

    def condition_number(self, kernel: torch.Tensor) -> float:
        """κ of the kernel, with a note when κ·ε of the kernel dtype exceeds RESOLUTION_LIMIT."""
        kappa = condition_number(kernel)
        eps = torch.finfo(self.kernel_dtype).eps
        if kappa * eps > RESOLUTION_LIMIT:
            self.add_note(f"condition number {kappa:.3g} is beyond {self.kernel_dtype} resolution "
                          f"(κ·ε = {kappa * eps:.2g} > {RESOLUTION_LIMIT:g})")
        return kappa


@register("ntk")
class NTKConditionNumber(KernelProxy):
    """NTK condition number, −λ_max/λ_min of Θ = J Jᵀ, J_i = ∂Σ_c f_c(x_i)/∂θ over all parameters."""

    reference = TE_NAS

    def score(self, model: nn.Module, batch: Batch) -> float:
        return -self.condition_number(self.kernel(model, batch.x))


@register("ntk_trace")
class NTKTrace(KernelProxy):
    """NTK trace per sample, tr(Θ)/N: the mean squared norm of the per-sample gradients."""

    reference = ("Shu et al., NASI: Label- and Data-agnostic Neural Architecture Search at "
                 "Initialization, ICLR 2022 (trace form)")

    def score(self, model: nn.Module, batch: Batch) -> float:
        kernel = self.kernel(model, batch.x)
        return (kernel.trace() / len(kernel)).item()
