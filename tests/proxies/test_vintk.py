"""ViNTK: its high-frequency views, its joint and mean kernels, and its registered variants."""

import math

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from bench.inputs import pink_noise
from proxies.base import Batch, get_proxy
from proxies.ntk_kernel import condition_number, ntk_kernel
from proxies.vintk import NYQUIST, ViNTK, fourier_view, high_pass_view
from spaces.errors import BenchError


def pink(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return pink_noise((n, 3, size, size), torch.Generator().manual_seed(seed))


def energy_above(x: torch.Tensor, radius: float) -> float:
    """Fraction of the spectral energy at spatial frequencies of radius ≥ `radius` (cycles/px)."""
    power = torch.fft.fft2(x).abs() ** 2
    fy = torch.fft.fftfreq(x.shape[-2]).reshape(-1, 1)
    fx = torch.fft.fftfreq(x.shape[-1]).reshape(1, -1)
    high = torch.sqrt(fy**2 + fx**2) >= radius
    return ((power * high).sum() / power.sum()).item()


def test_fourier_view_is_reproducible_and_depends_on_the_batch():
    x = pink()
    assert torch.equal(fourier_view(x, 1.0), fourier_view(x.clone(), 1.0))
    assert torch.allclose(fourier_view(x.double(), 1.0).float(), fourier_view(x, 1.0), atol=1e-4)
    # A constant batch makes each channel constant, sin(2πσc + φ): its value shows φ.
    zeros = torch.zeros(1, 3, 4, 4)
    assert not torch.allclose(fourier_view(zeros, 1.0)[0, :, 0, 0],
                              fourier_view(zeros + 1e-3, 1.0)[0, :, 0, 0], atol=1e-2)


def test_fourier_view_has_more_high_frequency_energy_than_pink_noise():
    x = pink()
    for sigma in (1.0, 2.0):
        assert energy_above(fourier_view(x, sigma), 0.25) > 2 * energy_above(x, 0.25)
    assert energy_above(fourier_view(x, 2.0), 0.25) > energy_above(fourier_view(x, 0.5), 0.25)


def test_fourier_and_high_pass_views_are_standardised_per_image():
    x = pink()
    for view in (fourier_view(x, 1.0), high_pass_view(x, 0.5)):
        flat = view.flatten(1)
        assert torch.allclose(flat.mean(1), torch.zeros(4), atol=1e-5)
        assert torch.allclose(flat.std(1), torch.ones(4), atol=1e-5)


def test_high_pass_view_removes_every_frequency_below_the_radius():
    x = pink()
    view = high_pass_view(x, 0.5)
    assert energy_above(view, 0.5 * NYQUIST) == pytest.approx(1.0, abs=1e-9)
    assert energy_above(x, 0.5 * NYQUIST) < 0.5


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                             mlp_ratio=2.0, num_classes=5)


def test_vintk_is_minus_log_kappa_of_the_joint_2n_kernel_in_float64():
    model, x = tiny_vit(), pink(n=4, size=16)
    x64 = x.double()
    joint = ntk_kernel(model.double(), torch.cat([x64, fourier_view(x64, 1.0)])).kernel
    assert joint.shape == (8, 8)
    score = get_proxy("vintk")(tiny_vit(), Batch(x, torch.zeros(4, dtype=torch.long), 5, "pink"))
    assert score == pytest.approx(-math.log(condition_number(joint)), rel=1e-9)


def test_vintk_mean_averages_log_kappa_of_the_two_views_apart():
    model, x = tiny_vit(), pink(n=4, size=16)
    x64 = x.double()
    log_kappas = [math.log(condition_number(ntk_kernel(model.double(), part).kernel))
                  for part in (x64, fourier_view(x64, 1.0))]
    score = get_proxy("vintk_mean")(tiny_vit(), Batch(x, torch.zeros(4, dtype=torch.long), 5))
    assert score == pytest.approx(-sum(log_kappas) / 2, rel=1e-9)


def test_variants_are_registered_with_their_hyper_parameters():
    expected = {
        "vintk": {"view": "fourier", "sigma": 1.0, "combine": "joint"},
        "vintk_s0.5": {"view": "fourier", "sigma": 0.5, "combine": "joint"},
        "vintk_s2": {"view": "fourier", "sigma": 2.0, "combine": "joint"},
        "vintk_s4": {"view": "fourier", "sigma": 4.0, "combine": "joint"},
        "vintk_mean": {"view": "fourier", "sigma": 1.0, "combine": "mean"},
        "vintk_hp": {"view": "highpass", "radius": 0.5, "combine": "joint"},
    }
    for name, hparams in expected.items():
        proxy = get_proxy(name)
        assert proxy.config() == {"name": name, **hparams, "version": 2, "kernel_dtype": "float64"}


def test_unknown_view_is_a_bench_error():
    with pytest.raises(BenchError, match="view"):
        ViNTK(view="wavelet", combine="joint")
