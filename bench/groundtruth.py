"""Ground truth the project trains itself: each sampled architecture trained with one fixed recipe.

The `micro` benchmark (spaces/micro.py) is trained on Fashion-MNIST on a CPU. Every finished
training appends one row to a CSV table and flushes it, so the job can be killed and resumed at any
time; a resumed job reads the table and never trains the same (architecture, seed) twice. The first
`REPEATED` architectures are trained with every seed first, so seed noise is measurable early.
The provenance beside the table is recomputed from its rows after each training; a job with nothing
to train writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import groupby
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
    """The complete rows of a benchmark table (none if the file does not exist yet); a last row
    left unfinished by a killed job is ignored here and cut only before the next append."""
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    if not complete:
        return []
    reader = csv.DictReader(io.StringIO(complete, newline=""))
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


def this_machine() -> dict:
    """What an accuracy depends on besides the recipe and threads: CPU vector kernels and torch."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def recorded_provenance(path: Path, recipe: Recipe) -> dict:
    """The provenance beside a table ({} if none yet); refuses one recorded with another recipe."""
    if not path.exists():
        return {}
    recorded = json.loads(path.read_text())
    if recorded.get("recipe") != json.loads(json.dumps(asdict(recipe))):
        raise BenchError(f"{path} records a different recipe; train into another --out file")
    return recorded


def seed_groups(rows: list[dict]) -> list[tuple[int, tuple[int, ...]]]:
    """Runs of consecutive architectures (in order of first training) trained with the same seeds,
    as (how many architectures, their seeds)."""
    seeds: dict[str, set[int]] = {}
    for row in rows:
        seeds.setdefault(row["arch_id"], set()).add(int(row["seed"]))
    runs = groupby(tuple(sorted(arch_seeds)) for arch_seeds in seeds.values())
    return [(len(list(run)), key) for key, run in runs]


def describe_seeds(seeds: tuple[int, ...]) -> str:
    """'seed 0', 'seeds 0..2' for a range, 'seeds 0, 2' otherwise."""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == tuple(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}..{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def describe_seed_groups(groups: list[tuple[int, tuple[int, ...]]]) -> str:
    """The provenance's `seeds`, e.g. 'the first 30 architectures with seeds 0..2, the others with
    seed 0'."""
    if len(groups) == 1:
        return f"every architecture with {describe_seeds(groups[0][1])}"
    (first, first_seeds), *middle, (_, last_seeds) = groups
    parts = [f"the first {first} architectures with {describe_seeds(first_seeds)}"]
    parts += [f"the next {count} with {describe_seeds(seeds)}" for count, seeds in middle]
    return ", ".join([*parts, f"the others with {describe_seeds(last_seeds)}"])


def describe_determinism(rows: list[dict]) -> str:
    """The provenance's `determinism`, naming the torch thread counts the rows were trained with."""
    threads = sorted({int(row["threads"]) for row in rows})
    if threads == [1]:
        return ("CPU, one thread (torch.set_num_threads(1)); same arch and seed give the same "
                "accuracy with the same torch and CPU vector kernels")
    return (f"CPU, torch threads {', '.join(map(str, threads))} (the threads column says which); "
            "same arch, seed and threads give the same accuracy with the same torch and CPU "
            "vector kernels")


def training_provenance(space: SearchSpace, recipe: Recipe, rows: list[dict],
                        machines: list[dict]) -> dict:
    """The provenance of a per-training table. `architectures`, `seeds` and `determinism` are
    computed from its rows, never from a command's arguments; `machines` lists every (CPU vector
    kernels, torch version) that trained a row, which the rows themselves do not record."""
    groups = seed_groups(rows)
    return {
        "source": "trained by this project (bench groundtruth train)",
        "space": space.name,
        "dataset": DATASET,
        "dataset_licence": "MIT",
        "evaluation": "top-1 accuracy (%) on the 10,000 test images",
        "architectures": sum(count for count, _ in groups),
        "architecture_sampling": f"space.sample_many(n, seed={ARCH_SEED}) (a prefix for a "
                                 "smaller n), in that order",
        "seeds": describe_seed_groups(groups),
        "seed_meaning": "torch.manual_seed(seed) before building the model (initial weights); "
                        "a torch.Generator seeded with it orders the batches",
        "recipe": asdict(recipe),
        "determinism": describe_determinism(rows),
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


def train_benchmark(space: SearchSpace, n: int, seeds: int, out: Path,
                    benchmark: Path | None = None, data_dir: Path | str | None = None,
                    recipe: Recipe = Recipe(), max_steps: int | None = None,
                    progress: bool = True) -> int:
    """Train the plan's missing (architecture, seed) pairs, appending one row to `out` per finished
    training, then rewriting its provenance from all its rows and, when `benchmark` is given, the
    per-architecture benchmark there; returns how many it trained. With nothing to train it writes
    nothing. `max_steps` shortens each training (tests only)."""
    out = Path(out)
    provenance_path = out.with_suffix(".json")
    machines = recorded_provenance(provenance_path, recipe).get("machines", [])
    done = {(row["arch_id"], int(row["seed"])) for row in read_table(out)}
    todo = [training for training in training_plan(space, n, seeds) if training.key not in done]
    if not todo:
        return 0
    machines += [this_machine()] if this_machine() not in machines else []
    train, test = load_split("train", data_dir), load_split("test", data_dir)
    train_data = train_subset(train, recipe)
    test_data = normalise(test.images), test.labels
    out.parent.mkdir(parents=True, exist_ok=True)
    drop_partial_row(out)
    new_file = not out.exists() or out.stat().st_size == 0
    with (out.open("a", newline="") as handle,
          progress_bar("{task.description}", disable=not progress) as bar):
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        task = bar.add_task("training", total=len(todo))
        for training in todo:
            row = trained_row(space, training, train_data, test_data, recipe, max_steps)
            writer.writerow(row)
            handle.flush()
            bar.console.log(f"{row['arch_id']} seed {row['seed']}: {row['accuracy']} % "
                            f"in {row['seconds']} s")
            provenance = training_provenance(space, recipe, read_table(out), machines)
            provenance_path.write_text(json.dumps(provenance, indent=2) + "\n")
            if benchmark is not None:
                export_benchmark(out, benchmark)
            bar.advance(task)
    return len(todo)


def trained_row(space: SearchSpace, training: Training, train_data: tuple, test_data: tuple,
                recipe: Recipe, max_steps: int | None) -> dict:
    """Train one (architecture, seed) pair and return its row of the table."""
    start = time.perf_counter()
    accuracy = train_and_evaluate(space, training.arch, training.seed, train_data, test_data,
                                  recipe, max_steps)
    return {
        "arch_id": arch_id(training.arch),
        "arch": canonical_json(training.arch),
        "seed": training.seed,
        "accuracy": f"{accuracy:.2f}",
        "seconds": f"{time.perf_counter() - start:.1f}",
        "params": space.count_params(training.arch),
        "flops": space.count_flops(training.arch),
        "threads": torch.get_num_threads(),
    }
