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
from bench.progress import progress_bar
from bench.trained_benchmark import export_benchmark
from spaces.base import Arch, SearchSpace, arch_id, canonical_json
from spaces.errors import BenchError

FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
ARCH_SEED = 0
REPEATED = 30
COLUMNS = ["arch_id", "arch", "seed", "accuracy", "seconds", "params", "flops", "threads"]
DATASET = ("Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747), "
           "https://github.com/zalandoresearch/fashion-mnist")


@dataclass(frozen=True)
class Recipe:
    """The one training recipe of a benchmark (recorded in its provenance).

    AdamW with linear warm-up then cosine decay to zero, no augmentation, on a fixed subset of the
    training set (the first `train_images` of a permutation drawn with `subset_seed`); the training
    seed sets the initial weights and the batch order. Top-1 accuracy on all 10,000 test images.
    """

    train_images: int = 20_000
    subset_seed: int = 0
    epochs: int = 4
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


@dataclass(frozen=True)
class Training:
    """One (architecture, seed) pair of the benchmark's plan."""

    arch: Arch
    seed: int

    @property
    def key(self) -> tuple[str, int]:
        return arch_id(self.arch), self.seed


def training_plan(space: SearchSpace, n: int, seeds: int) -> list[Training]:
    """The benchmark's trainings in order: the first `REPEATED` architectures with every seed, then
    the remaining architectures with seed 0. Architectures are drawn with the fixed `ARCH_SEED`."""
    if n < 1 or seeds < 1:
        raise BenchError(f"need at least one architecture and one seed, got n={n}, seeds={seeds}")
    archs = [space.validate(arch) for arch in space.sample_many(n, ARCH_SEED)]
    repeated = [Training(arch, seed) for arch in archs[:REPEATED] for seed in range(seeds)]
    return repeated + [Training(arch, 0) for arch in archs[REPEATED:]]


def read_table(path: Path) -> list[dict]:
    """The rows of a benchmark table (none if the file does not exist yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != COLUMNS:
            raise BenchError(f"{path} has columns {reader.fieldnames}, expected {COLUMNS}")
        return list(reader)


def drop_partial_row(path: Path) -> None:
    """Cut a last row left unfinished by a killed job (the file then lacks its final newline)."""
    if not path.exists():
        return
    text = path.read_bytes()
    if text and not text.endswith(b"\n"):
        path.write_bytes(text[: text.rfind(b"\n") + 1])


def write_provenance(path: Path, space: SearchSpace, recipe: Recipe, n: int, seeds: int) -> None:
    """Write the provenance next to the table; an existing one must record the same recipe. The
    larger of the two architecture counts is kept (the sample of n is a prefix of a larger one),
    and every (CPU vector kernels, torch version) the table was trained with is listed."""
    machine = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "torch": torch.__version__}
    machines = [machine]
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded.get("recipe") != json.loads(json.dumps(asdict(recipe))):
            raise BenchError(f"{path} records a different recipe; train into another --out file")
        n = max(n, recorded.get("architectures", 0))
        machines = recorded.get("machines", [])
        machines += [machine] if machine not in machines else []
    provenance = {
        "source": "trained by this project (bench groundtruth train)",
        "space": space.name,
        "dataset": DATASET,
        "dataset_licence": "MIT",
        "evaluation": "top-1 accuracy (%) on the 10,000 test images",
        "architectures": n,
        "architecture_sampling": f"space.sample_many(n, seed={ARCH_SEED}) (a prefix for a "
                                 "smaller n), in that order",
        "seeds": f"the first {min(n, REPEATED)} architectures with seeds 0..{seeds - 1}, "
                 "the others with seed 0",
        "seed_meaning": "torch.manual_seed(seed) before building the model (initial weights); "
                        "a torch.Generator seeded with it orders the batches",
        "recipe": asdict(recipe),
        "determinism": "CPU, one thread (torch.set_num_threads(1)); same arch and seed give the "
                       "same accuracy with the same torch and CPU vector kernels",
        "machines": machines,
        "columns": {
            "arch_id": "first 12 hex digits of sha256 of the canonical architecture JSON",
            "arch": "canonical architecture JSON (sorted keys)",
            "seed": "training seed",
            "accuracy": "top-1 accuracy (%) on the Fashion-MNIST test set",
            "seconds": "wall-clock seconds of training and evaluation",
            "params": "trainable parameters",
            "flops": "forward FLOPs of one 28x28 image (a multiply-accumulate is 2 FLOPs)",
            "threads": "torch CPU threads used",
        },
    }
    path.write_text(json.dumps(provenance, indent=2) + "\n")


def train_benchmark(space: SearchSpace, n: int, seeds: int, out: Path,
                    benchmark: Path | None = None, data_dir: Path | str | None = None,
                    recipe: Recipe = Recipe(), max_steps: int | None = None,
                    progress: bool = True) -> int:
    """Train the plan's missing (architecture, seed) pairs, appending one row to `out` per finished
    training and, when `benchmark` is given, rewriting the per-architecture benchmark there after
    each; returns how many it trained. `max_steps` shortens each training (tests only)."""
    out = Path(out)
    drop_partial_row(out)
    done = {(row["arch_id"], int(row["seed"])) for row in read_table(out)}
    todo = [training for training in training_plan(space, n, seeds) if training.key not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_provenance(out.with_suffix(".json"), space, recipe, n, seeds)
    if not todo:
        return 0
    train, test = load_split("train", data_dir), load_split("test", data_dir)
    train_data = train_subset(train, recipe)
    test_data = normalise(test.images), test.labels
    new_file = not out.exists() or out.stat().st_size == 0
    with (out.open("a", newline="") as handle,
          progress_bar("{task.description}", disable=not progress) as bar):
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        task = bar.add_task("training", total=len(todo))
        for training in todo:
            start = time.perf_counter()
            accuracy = train_and_evaluate(space, training.arch, training.seed, train_data,
                                          test_data, recipe, max_steps)
            row = {
                "arch_id": arch_id(training.arch),
                "arch": canonical_json(training.arch),
                "seed": training.seed,
                "accuracy": f"{accuracy:.2f}",
                "seconds": f"{time.perf_counter() - start:.1f}",
                "params": space.count_params(training.arch),
                "flops": space.count_flops(training.arch),
                "threads": torch.get_num_threads(),
            }
            writer.writerow(row)
            handle.flush()
            bar.console.log(f"{row['arch_id']} seed {row['seed']}: {row['accuracy']} % "
                            f"in {row['seconds']} s")
            if benchmark is not None:
                export_benchmark(out, benchmark)
            bar.advance(task)
    return len(todo)
