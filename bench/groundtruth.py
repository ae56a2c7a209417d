"""Ground truth the project trains itself: each sampled architecture trained with one fixed recipe.

The `micro` benchmark (spaces/micro.py) is trained on Fashion-MNIST on a CPU. Every finished
training appends one row to a CSV table and flushes it, so the job can be killed and resumed at any
time; a resumed job reads the table and never trains the same (architecture, seed) twice. The first
`REPEATED` architectures are trained with every seed first, so seed noise is measurable early.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.functional import cross_entropy

from bench.fashion_mnist import Split, load_split
from spaces.base import Arch, SearchSpace, arch_id, canonical_json
from spaces.errors import BenchError

FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
ARCH_SEED = 0
REPEATED = 30
COLUMNS = ["arch_id", "arch", "seed", "accuracy", "seconds", "params", "flops", "threads"]


@dataclass(frozen=True)
class Recipe:
    """The one training recipe of a benchmark (recorded in its provenance).

    AdamW with linear warm-up then cosine decay to zero, no augmentation, on a fixed subset of the
    training set (the first `train_images` of a permutation drawn with `subset_seed`); the training
    seed sets the initial weights and the batch order. Top-1 accuracy on all 10,000 test images.
    """

    train_images: int = 10_000
    subset_seed: int = 0
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "AdamW"
    lr: float = 2e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_fraction: float = 0.1
    schedule: str = "linear warm-up, then cosine to 0, stepped per batch"
    augmentation: str = "none"
    normalisation: str = f"x / 255, minus {FASHION_MNIST_MEAN}, divided by {FASHION_MNIST_STD}"
    eval_batch_size: int = 1000


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Fashion-MNIST images as the float inputs the benchmark's networks were trained on."""
    return (images.float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD


def train_subset(train: Split, recipe: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed training subset of the recipe, normalised."""
    generator = torch.Generator().manual_seed(recipe.subset_seed)
    index = torch.randperm(len(train.labels), generator=generator)[: recipe.train_images]
    return normalise(train.images[index]), train.labels[index]


def learning_rate(step: int, total: int, recipe: Recipe) -> float:
    """Linear warm-up over the first `warmup_fraction` of the steps, then cosine decay to zero."""
    warmup = max(1, round(recipe.warmup_fraction * total))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_network(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, seed: int,
                  max_steps: int | None = None) -> None:
    """Train `model` in place on (x, y) with the recipe; `seed` orders the batches.

    `max_steps` stops early (for tests); the schedule is still the full recipe's.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                  weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(y) / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    steps = total if max_steps is None else min(total, max_steps)
    model.train()
    for step, batch in zip(range(steps), batches(len(y), recipe, generator)):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total, recipe)
        loss = cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def batches(n: int, recipe: Recipe, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of a fresh permutation per epoch (the last batch of an epoch may be short)."""
    for _ in range(recipe.epochs):
        yield from torch.randperm(n, generator=generator).split(recipe.batch_size)


@torch.no_grad()
def top1_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Percentage of images whose highest logit is the label."""
    model.eval()
    correct = sum(
        int((model(xb).argmax(dim=1) == yb).sum())
        for xb, yb in zip(x.split(batch_size), y.split(batch_size))
    )
    return 100.0 * correct / len(y)


def train_and_evaluate(space: SearchSpace, arch: Arch, seed: int, train: tuple, test: tuple,
                       recipe: Recipe, max_steps: int | None = None) -> float:
    """Top-1 test accuracy (%) of `arch` trained from initial weights drawn with `seed`."""
    torch.manual_seed(seed)
    model = space.build(arch)
    train_network(model, *train, recipe, seed, max_steps)
    return top1_accuracy(model, *test, recipe.eval_batch_size)
