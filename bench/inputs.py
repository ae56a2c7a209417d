"""Seeded input batches for proxies: white Gaussian noise, 1/f ("pink") noise, or real images.

Which kind a run uses is part of its configuration and of every reported table: white noise has a
flat spectrum and so no low/high-frequency contrast for ViNTK to reveal (docs/proxies.md, ViNTK).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.threads import torch_threads
from proxies.base import Batch
from spaces.errors import BenchError

INPUT_KINDS = ("gaussian", "pink", "real")


def make_batch(kind: str, batch_size: int, img_size: int, in_chans: int, num_classes: int,
               seed: int, data_dir: str | None = None) -> Batch:
    """A reproducible batch of `batch_size` images (in_chans x img_size x img_size) with labels.

    Made on one thread: the FFT of pink noise and the standardisation round differently on two,
    and the batch (its content hash is in the score cache key) must not depend on the thread count.
    """
    with torch_threads(1):
        return seeded_batch(kind, batch_size, img_size, in_chans, num_classes, seed, data_dir)


def seeded_batch(kind: str, batch_size: int, img_size: int, in_chans: int, num_classes: int,
                 seed: int, data_dir: str | None) -> Batch:
    """`make_batch`'s images and labels, drawn from one generator seeded with `seed`."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch_size, in_chans, img_size, img_size)
    if kind == "gaussian":
        x = torch.randn(shape, generator=gen)
    elif kind == "pink":
        x = pink_noise(shape, gen)
    elif kind == "real":
        x, y = real_images(batch_size, img_size, in_chans, num_classes, seed, data_dir)
        return Batch(x, y, num_classes, kind)
    else:
        raise BenchError(f"unknown input kind {kind!r}; choose one of {', '.join(INPUT_KINDS)}")
    y = torch.randint(num_classes, (batch_size,), generator=gen)
    return Batch(x, y, num_classes, kind)


def pink_noise(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Images with a 1/f amplitude spectrum and random phases, standardised per image and channel
    (the standard second-order model of natural-image statistics)."""
    height, width = shape[-2:]
    fy = torch.fft.fftfreq(height).reshape(-1, 1)
    fx = torch.fft.rfftfreq(width).reshape(1, -1)
    radius = torch.sqrt(fx**2 + fy**2)
    amplitude = torch.where(radius > 0, 1.0 / radius.clamp_min(1e-12), torch.zeros(()))
    phase = torch.rand((*shape[:-2], height, width // 2 + 1), generator=gen) * 2 * torch.pi
    images = torch.fft.irfft2(amplitude * torch.exp(1j * phase), s=(height, width))
    return standardise(images)


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance per image and channel."""
    mean = images.mean(dim=(-2, -1), keepdim=True)
    std = images.std(dim=(-2, -1), keepdim=True).clamp_min(1e-8)
    return (images - mean) / std


def real_images(batch_size: int, img_size: int, in_chans: int, num_classes: int, seed: int,
                data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` images drawn with `seed` from `data_dir` (an ImageFolder or a CIFAR root), or
    from the Fashion-MNIST sample shipped with the project when no folder is given.

    The source must fit the space: the same number of channels and no more classes than the
    space's head has (a label the head cannot output would make every label-based proxy
    meaningless). Images are resized to img_size and standardised per image and channel.
    """
    source = open_image_source(data_dir, img_size)
    where = data_dir or "the shipped Fashion-MNIST sample (28 px grey, 10 classes)"
    if source.channels != in_chans or source.classes > num_classes:
        advice = " give --data-dir with images of the space's data set" if data_dir is None else ""
        raise BenchError(f"real images from {where} have {source.channels} channel(s) and "
                         f"{source.classes} classes; the space takes {in_chans} channel(s) and "
                         f"{num_classes} classes;{advice or ' give a folder that fits'}")
    if source.count < batch_size:
        raise BenchError(f"only {source.count} real images in {where}, batch size {batch_size} asked")
    pick = torch.randperm(source.count, generator=torch.Generator().manual_seed(seed))[:batch_size]
    images, labels = source.take(pick.tolist())
    x = F.interpolate(images.float(), size=(img_size, img_size), mode="bilinear",
                      antialias=True, align_corners=False)
    return standardise(x), labels.long()


@dataclass(frozen=True)
class ImageSource:
    """How many images a source has, their channels and classes, and a function that loads the
    ones at given indices (uint8, N x C x H x W, and labels)."""

    count: int
    channels: int
    classes: int
    take: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]]


def open_image_source(data_dir: str | None, img_size: int) -> ImageSource:
    """The images of `data_dir` (the shipped sample when None); only the picked images of a
    folder are decoded."""
    if data_dir is None:
        from bench.fashion_mnist import load_real_sample

        return tensor_source(*load_real_sample())
    root = Path(data_dir)
    if not root.exists():
        raise BenchError(f"data directory {root} does not exist")
    from torchvision import datasets

    for name in ("CIFAR10", "CIFAR100"):
        try:
            dataset = getattr(datasets, name)(root, train=False, download=False)
        except RuntimeError:
            continue
        return tensor_source(torch.as_tensor(dataset.data).permute(0, 3, 1, 2),
                             torch.as_tensor(dataset.targets), len(dataset.classes))
    try:
        folder = datasets.ImageFolder(root)
    except (FileNotFoundError, RuntimeError) as err:
        raise BenchError(f"{root} is neither a CIFAR root nor an ImageFolder: {err}") from None
    return ImageSource(len(folder), 3, len(folder.classes),
                       lambda indices: folder_images(folder, indices, img_size))


def tensor_source(images: torch.Tensor, labels: torch.Tensor,
                  classes: int | None = None) -> ImageSource:
    return ImageSource(len(images), images.shape[1], classes or int(labels.max()) + 1,
                       lambda indices: (images[indices], labels[indices]))


def folder_images(folder, indices: list[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the ImageFolder images at `indices`, each resized to `size` so they stack."""
    from torchvision.transforms.functional import pil_to_tensor, resize

    images, labels = [], []
    for index in indices:
        img, label = folder[index]
        images.append(resize(pil_to_tensor(img.convert("RGB")), [size, size], antialias=True))
        labels.append(label)
    return torch.stack(images), torch.tensor(labels)
