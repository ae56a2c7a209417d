"""Seeded input batches: Gaussian, 1/f noise, real images."""

import numpy as np
import pytest
import torch

from bench.cache import batch_digest
from bench.inputs import make_batch, pink_noise
from spaces.errors import BenchError


@pytest.mark.parametrize("kind", ["gaussian", "pink"])
def test_batches_are_reproducible_from_the_seed(kind):
    a = make_batch(kind, 4, 16, 3, 10, seed=1)
    b = make_batch(kind, 4, 16, 3, 10, seed=1)
    c = make_batch(kind, 4, 16, 3, 10, seed=2)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    assert a.x.shape == (4, 3, 16, 16) and int(a.y.max()) < 10


def radial_amplitude(images: torch.Tensor) -> np.ndarray:
    """Mean FFT amplitude in radial frequency bins 1..size/2."""
    size = images.shape[-1]
    amp = torch.fft.fft2(images).abs().mean(dim=(0, 1)).numpy()
    fy, fx = np.meshgrid(np.fft.fftfreq(size) * size, np.fft.fftfreq(size) * size, indexing="ij")
    radius = np.rint(np.hypot(fx, fy)).astype(int)
    return np.array([amp[radius == r].mean() for r in range(1, size // 2)])


def test_pink_noise_has_a_one_over_f_amplitude_spectrum():
    x = pink_noise((8, 1, 64, 64), torch.Generator().manual_seed(0))
    amp = radial_amplitude(x)
    freqs = np.arange(1, 32)
    slope = np.polyfit(np.log(freqs), np.log(amp), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    white = radial_amplitude(torch.randn(8, 1, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert abs(np.polyfit(np.log(freqs), np.log(white), 1)[0]) < 0.1


def test_pink_noise_is_standardised_per_image_and_channel():
    x = pink_noise((3, 2, 32, 32), torch.Generator().manual_seed(0))
    assert torch.allclose(x.mean(dim=(-2, -1)), torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(x.std(dim=(-2, -1)), torch.ones(3, 2), atol=1e-4)


def test_real_batch_from_shipped_sample_is_resized_and_standardised():
    batch = make_batch("real", 8, 32, 1, 10, seed=0)
    assert batch.x.shape == (8, 1, 32, 32) and batch.kind == "real"
    assert batch.x.mean().abs() < 1e-5
    assert len(set(batch.y.tolist())) > 1


@pytest.mark.parametrize("in_chans, num_classes", [(3, 100), (3, 10), (1, 5)])
def test_real_images_that_do_not_fit_the_space_are_refused(in_chans, num_classes):
    # The shipped sample is grey Fashion-MNIST with 10 classes: copying it to 3 channels or
    # wrapping its labels onto fewer classes would feed a space data it was never meant for.
    with pytest.raises(BenchError, match="give --data-dir"):
        make_batch("real", 8, 32, in_chans, num_classes, seed=0)


def test_unknown_kind_and_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(BenchError, match="unknown input kind"):
        make_batch("uniform", 2, 8, 1, 2, seed=0)
    with pytest.raises(BenchError, match="does not exist"):
        make_batch("real", 2, 8, 1, 2, seed=0, data_dir=str(tmp_path / "nowhere"))


@pytest.mark.parametrize("kind", ["pink", "gaussian"])
def test_the_batch_does_not_depend_on_the_thread_count(kind):
    # On two threads the pink-noise FFT and standardisation rounded differently (a 64 px batch of
    # 32 hashed 0903… on two threads and 962e… on one), so the cache key depended on threads.
    before = torch.get_num_threads()
    digests = set()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            digests.add(batch_digest(make_batch(kind, 32, 64, 3, 100, 0)))
        finally:
            torch.set_num_threads(before)
    assert len(digests) == 1
    assert torch.get_num_threads() == before
