"""NASWOT: how differently a network's activation patterns separate the inputs of one batch.

Mellor et al., "Neural Architecture Search without Training", ICML 2021. Each input gets a binary
code per activation layer (which units have a positive pre-activation); inputs whose codes differ a
lot lie in different linear regions, which the paper finds in networks that train well.

ViT pitfall: the public code hooks only `ReLU` modules, so on a GELU Vision Transformer it records
nothing and every architecture gets the same (zero) kernel. GELU(z) = z·Φ(z) is close to z for
z >> 0 and to 0 for z << 0, switching regime at z = 0 like ReLU, so a GELU unit's code is the same
`z > 0`; here every ReLU and GELU module is hooked. Token activations [B, N, C] are flattened per
sample, so each of the N·C (token, channel) pairs is one unit.
"""

from __future__ import annotations

import torch
from timm.layers.activations import GELU as TimmGELU
from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import UndefinedScore, record_calls

# timm's own GELU module is not a subclass of nn.GELU, so both are listed.
ACTIVATIONS = (nn.ReLU, nn.GELU, TimmGELU)


def activation_codes(
    model: nn.Module, x: torch.Tensor, types: tuple[type, ...] = ACTIVATIONS
) -> list[torch.Tensor]:
    """Binary codes (B, units), pre-activation > 0, at every call of an activation of `types`.

    The hook sees the module's input; for an in-place ReLU that input has already been rectified,
    which leaves `> 0` unchanged.
    """
    with torch.no_grad(), record_calls(model, types) as calls:
        model(x)
        return [call.input.flatten(1) > 0 for call in calls]


def hamming_kernel(codes: list[torch.Tensor]) -> torch.Tensor:
    """K = Σ over layers of c cᵀ + (1−c)(1−c)ᵀ: K_ij counts the units where inputs i and j agree
    (units minus Hamming distance). float64 keeps the counts exact for any realistic width."""
    kernel = torch.zeros(())
    for code in codes:
        on = code.to(torch.float64)
        kernel = kernel + on @ on.T + (1.0 - on) @ (1.0 - on).T
    return kernel


@register("naswot")
class Naswot(Proxy):
    """NASWOT, log|K|, K_ij = Σ_layers #units where inputs i and j share the pre-activation sign.

    Codes come from every ReLU and GELU (the public code's ReLU-only hooks see nothing on a GELU
    ViT). A singular K (two inputs with identical codes everywhere, or a network without any of
    these activations) has log|K| = −inf; it is raised as UndefinedScore rather than returned, so
    the harness records the reason. In train mode BatchNorm normalises with batch statistics, so a
    CNN's codes depend on the whole batch, as in the public code.
    """

    needs = Needs(gradients=False, min_batch=2)
    reference = "Mellor et al., Neural Architecture Search without Training, ICML 2021"

    def score(self, model: nn.Module, batch: Batch) -> float:
        codes = activation_codes(model, batch.x)
        if not codes:
            raise UndefinedScore("naswot: the model has no ReLU or GELU module to take codes from")
        sign, logdet = torch.linalg.slogdet(hamming_kernel(codes))
        if sign <= 0:
            raise UndefinedScore("naswot: the activation-code kernel is singular "
                                 "(some inputs share every code)")
        return logdet.item()
