"""ViNTK: the NTK condition number generalised to high frequencies (docs/proxies.md, ViNTK).

Zhou & Zhu, "When Training-Free NAS Meets Vision Transformer: A Neural Tangent Kernel
Perspective" (ICASSP 2024, arXiv 2405.04536) state only that ViNTK "generalizes the standard NTK to
the high-frequency domain by integrating the Fourier features from inputs". This module is the
project's reading, fixed before any correlation was looked at:

- a high-frequency view H(X) of the batch X (N x C x H x W), either
  `fourier`: γ_σ(X) = sin(2πσX + φ), φ ~ U[0, 2π) per channel, which folds the intensity range
  through a sinusoid and so moves energy to high spatial frequencies (the map Tancik et al.,
  NeurIPS 2020, apply to coordinates), or
  `highpass`: the inverse FFT of FFT(X) with every frequency of radius below r·f_max zeroed,
  f_max = 0.5 cycles per pixel (the Nyquist frequency along an axis);
  either view is then standardised per image (zero mean, unit variance over C, H, W), so the
  kernel compares frequency content, not input energy;
- `joint`: the empirical NTK of [X; H(X)] (2N x 2N), whose spectrum sees the low- and
  high-frequency directions and their coupling; score −log κ;
- `mean`: −(log κ(Θ(X)) + log κ(Θ(H(X)))) / 2, the two kernels apart.

The default `vintk` is the Fourier view with σ = 1 and the joint kernel. φ is drawn from a seed
derived from the batch's content, so the same batch always gets the same phases.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from proxies.base import Batch, register
from proxies.ntk import KernelProxy
from spaces.errors import BenchError

NYQUIST = 0.5  # cycles per pixel


def batch_seed(x: torch.Tensor) -> int:
    """A seed that is a function of the batch's values only (not of its device or dtype)."""
    data = x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def standardise_per_image(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    mean, std = flat.mean(dim=1), flat.std(dim=1).clamp_min(1e-8)
    return (x - mean.reshape(-1, 1, 1, 1)) / std.reshape(-1, 1, 1, 1)


def fourier_view(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """γ_σ(X) = sin(2πσX + φ), φ ~ U[0, 2π) per channel seeded by the batch, standardised."""
    generator = torch.Generator().manual_seed(batch_seed(x))
    phase = torch.rand(x.shape[1], generator=generator, dtype=torch.float64) * 2 * math.pi
    phase = phase.to(x.device, x.dtype).reshape(1, -1, 1, 1)
    return standardise_per_image(torch.sin(2 * math.pi * sigma * x + phase))


def high_pass_view(x: torch.Tensor, radius: float) -> torch.Tensor:
    """X with every spatial frequency below radius·f_max removed, standardised per image."""
    fy = torch.fft.fftfreq(x.shape[-2], device=x.device, dtype=x.dtype).reshape(-1, 1)
    fx = torch.fft.fftfreq(x.shape[-1], device=x.device, dtype=x.dtype).reshape(1, -1)
    keep = torch.sqrt(fy**2 + fx**2) >= radius * NYQUIST
    return standardise_per_image(torch.fft.ifft2(torch.fft.fft2(x) * keep).real)


VIEWS = {"fourier": fourier_view, "highpass": high_pass_view}
COMBINATIONS = ("joint", "mean")


@register("vintk", view="fourier", sigma=1.0, combine="joint")
@register("vintk_s0.5", view="fourier", sigma=0.5, combine="joint")
@register("vintk_s2", view="fourier", sigma=2.0, combine="joint")
@register("vintk_s4", view="fourier", sigma=4.0, combine="joint")
@register("vintk_mean", view="fourier", sigma=1.0, combine="mean")
@register("vintk_hp", view="highpass", radius=0.5, combine="joint")
class ViNTK(KernelProxy):
    """ViNTK, −log κ of the NTK on [X; H(X)] (or the mean over X and H(X) apart), H(X) a
    high-frequency view of the inputs: Fourier features sin(2πσX + φ) or a spectral high-pass."""

    reference = ("Zhou & Zhu, When Training-Free NAS Meets Vision Transformer: A Neural Tangent "
                 "Kernel Perspective, ICASSP 2024 (arXiv 2405.04536); this project's reading, "
                 "docs/proxies.md")

    def __init__(self, view: str, combine: str, **view_params: float):
        if view not in VIEWS or combine not in COMBINATIONS:
            raise BenchError(f"vintk: view must be one of {', '.join(VIEWS)} and combine one of "
                             f"{', '.join(COMBINATIONS)}, got {view!r} and {combine!r}")
        super().__init__(view=view, combine=combine, **view_params)
        self.view_params = view_params

    def high_frequency_view(self, x: torch.Tensor) -> torch.Tensor:
        return VIEWS[self.view](x, **self.view_params)

    def score(self, model: nn.Module, batch: Batch) -> float:
        high = self.high_frequency_view(batch.x)
        if self.combine == "joint":
            return -math.log(self.condition_number(self.kernel(model, torch.cat([batch.x, high]))))
        log_kappas = [math.log(self.condition_number(self.kernel(model, x))) for x in (batch.x, high)]
        return -sum(log_kappas) / 2
