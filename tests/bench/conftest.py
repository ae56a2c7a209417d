"""A tiny search space and call-counting proxies, registered for the runner and CLI tests; the
micro-fmnist run and the cache readers that the parallel-execution tests share."""

import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

from proxies.base import PROXIES, Needs, Proxy, register
from spaces.base import SPACES, SearchSpace, register_space
from spaces.errors import BenchError

CALLS: list[str] = []


class ToyMLPSpace(SearchSpace):
    """Two-layer MLPs on 4x4 grey images; the hidden width is the only choice (13 fails to build)."""

    name = "toy-mlp"
    description = "test space"
    default_img_size = 4
    in_chans = 1
    num_classes = 3

    def choices(self):
        return {"width": list(range(1, 30))}

    def sample(self, rng: random.Random):
        return {"width": rng.choice(self.choices()["width"])}

    def validate(self, arch):
        if not isinstance(arch, dict) or set(arch) != {"width"}:
            raise BenchError('toy-mlp architectures are {"width": int}')
        if arch["width"] not in self.choices()["width"]:
            raise BenchError(f"width must be one of 1..29, not {arch.get('width')}")
        return {"width": arch["width"]}

    def build(self, arch, img_size=None):
        size = img_size or self.default_img_size
        if arch["width"] == 13:
            raise ValueError("thirteen is unlucky")
        return nn.Sequential(nn.Flatten(), nn.Linear(size * size, arch["width"]), nn.ReLU(),
                             nn.Linear(arch["width"], self.num_classes))


class CountingProxy(Proxy):
    """The hidden width, recording each call; raises on width 7 so failures can be tested, and
    notes odd widths so that notes can be."""

    needs = Needs(gradients=False)

    def score(self, model, batch):
        CALLS.append(self.name)
        if STOP_AFTER and len(CALLS) > STOP_AFTER[0]:
            raise KeyboardInterrupt
        width = model[1].out_features
        if width == 7:
            raise RuntimeError("seven is not allowed")
        self.note = "odd width" if width % 2 else ""
        return float(width)


STOP_AFTER: list[int] = []

if "toy-mlp" not in SPACES:
    register_space(ToyMLPSpace)
if "test_width" not in PROXIES:
    register("test_width")(CountingProxy)
    register("test_width_again", unused=1)(CountingProxy)


@pytest.fixture
def calls():
    """The proxy calls made during a test (and no interruption unless the test asks)."""
    CALLS.clear()
    STOP_AFTER.clear()
    yield CALLS
    STOP_AFTER.clear()


@pytest.fixture
def interrupt_after():
    """`interrupt_after[:] = [k]` makes the counting proxy raise KeyboardInterrupt once it has been
    called k times; `interrupt_after.clear()` lets the next run go through."""
    return STOP_AFTER


def write_idx(path, array):
    """Write a uint8 array as a gzip IDX file (magic 0x0801 labels, 0x0803 images)."""
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype("uint8").tobytes())


@pytest.fixture
def idx_writer():
    """The function that writes a uint8 array as a gzip IDX file."""
    return write_idx


@pytest.fixture
def fashion_mnist_dir(tmp_path):
    """A tiny data set in Fashion-MNIST's four IDX files: 80 training and 40 test images whose
    class c is a bright horizontal band at rows 2c..2c+5, with noise (so it can be learned)."""
    import numpy as np

    from bench.fashion_mnist import FILES

    rng = np.random.default_rng(0)
    for split, count in (("train", 80), ("test", 40)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 60, size=(count, 28, 28))
        for image, label in zip(images, labels):
            image[2 * label : 2 * label + 6] += 190
        write_idx(tmp_path / FILES[(split, "images")], images)
        write_idx(tmp_path / FILES[(split, "labels")], labels)
    return tmp_path


# A run of the parallel-execution tests (workers, Ray): cheap proxies, gradient ones and a float64
# kernel on 12 micro networks, seconds in all.
PARALLEL_PROXIES = ["params", "l2_norm", "grad_norm", "synflow", "ntk"]
PARALLEL_N = 12
COMPARED = ["arch_id", "proxy", "score", "error", "note"]  # `seconds` differs run to run


def parallel_run_options(tmp_path, name: str, **changes) -> dict:
    """`run(**...)` options of that run, writing tmp_path/name and caching in tmp_path/name.sqlite."""
    return {"benchmark": "micro-fmnist", "n": PARALLEL_N, "proxies": PARALLEL_PROXIES,
            "batch_size": 8, "seed": 0, "device": "cpu", "threads": 1, "out": str(tmp_path / name),
            "cache": str(tmp_path / f"{name}.sqlite"), **changes}


def scores_text(out: Path) -> str:
    """The run's scores.csv, cell for cell as written, without the seconds."""
    table = pd.read_csv(out / "scores.csv", dtype=str, keep_default_na=False)
    return table[COMPARED].to_csv(index=False)


def cached_rows(path: Path, *, live: bool = False) -> int:
    """Rows in a score cache, 0 where the file does not exist; with `live` (a run is writing it),
    0 also where it cannot be read at this instant, instead of an error."""
    if not Path(path).exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.Error:
        if live:
            return 0
        raise
