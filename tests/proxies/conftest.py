"""Models shared by the proxy tests: a tiny ViT, a tiny CNN with BatchNorm, and the smallest and
largest architecture of every registered space for the smoke tests."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

import spaces.catalog  # noqa: F401
from proxies.base import Batch
from spaces.base import SPACES

SMOKE_BATCH = 4
SMOKE_IMG_SIZE = 32


class ExtremeChoice(random.Random):
    """An rng whose `choice` always takes the first (or last) option. Spaces sample every field
    with `rng.choice`, numeric options in ascending order, so this draws their smallest (largest)
    member. Categorical options have no order: for nb201 it gives all-skip_connect and
    all-avg_pool_3x3 cells, two parameter-free extremes rather than the smallest and largest."""

    def __init__(self, last: bool):
        super().__init__(0)
        self.last = last

    def choice(self, seq):
        return seq[-1] if self.last else seq[0]


def project_spaces() -> list[str]:
    """The spaces the project registers (test modules may register toy spaces of their own)."""
    return sorted(name for name, cls in SPACES.items() if cls.__module__.startswith("spaces."))


def random_batch(in_chans: int, img_size: int, num_classes: int, n: int, seed: int = 0) -> Batch:
    """Seeded Gaussian images and labels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_chans, img_size, img_size, generator=gen)
    y = torch.randint(num_classes, (n,), generator=gen)
    return Batch(x, y, num_classes)


@pytest.fixture(
    scope="session",
    params=[(space, last) for space in project_spaces() for last in (False, True)],
    ids=lambda case: f"{case[0]}-{'largest' if case[1] else 'smallest'}",
)
def extreme_model(request) -> tuple[nn.Module, Batch]:
    """The smallest or largest architecture of a space at img_size 32 (or the space's native size
    if smaller), seeded, with a batch of 4 Gaussian images."""
    space = SPACES[request.param[0]]()
    size = min(SMOKE_IMG_SIZE, space.default_img_size)
    torch.manual_seed(0)
    model = space.build(space.sample(ExtremeChoice(request.param[1])), img_size=size)
    return model, random_batch(space.in_chans, size, space.num_classes, SMOKE_BATCH)


def tiny_vit(seed: int = 0) -> nn.Module:
    """A 2-block timm ViT on 16 x 16 images: 16 patch tokens and a class token, width 16."""
    torch.manual_seed(seed)
    return VisionTransformer(img_size=16, patch_size=4, in_chans=3, num_classes=5, embed_dim=16,
                             depth=2, num_heads=2, mlp_ratio=2.0)


def tiny_cnn(seed: int = 0) -> nn.Module:
    """Conv-BN-ReLU twice, global average pooling and a linear head, on 3-channel images."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


@pytest.fixture(params=["vit", "cnn"])
def small_model(request) -> tuple[Callable[[int], nn.Module], Batch]:
    """A builder of the tiny ViT or the tiny CNN with BatchNorm (`make(seed)`), and a batch of 8
    images of 16 x 16 for it."""
    make = tiny_vit if request.param == "vit" else tiny_cnn
    return make, random_batch(3, 16, 5, 8)
