"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; MIT licence): the data the `micro` benchmark trains on.

Reads the four gzip IDX files that Debian's `dataset-fashion-mnist` package installs, and a small
stratified sample of real test images shipped in the repository, so that proxies have a real-data
batch on a fresh clone without the full data set.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from spaces.errors import BenchError

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
UPSTREAM_URL = "https://github.com/zalandoresearch/fashion-mnist"
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
IMAGE_SIZE = 28
# IDX magic: two zero bytes, 0x08 (unsigned byte data), then the number of dimensions.
IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}
SAMPLE_FILE = "fashion_mnist_sample.npz"


@dataclass(frozen=True)
class Split:
    """One split: images uint8 (N, 1, 28, 28) and labels int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor


def read_idx(path: Path, kind: str) -> np.ndarray:
    """The array in one gzip IDX file of `kind` images (N, 28, 28) or labels (N,), checked against
    the magic number, the image size and the number of data bytes."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise BenchError(f"cannot read {path}: {err}") from None
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BenchError(f"{path} is too short to be an IDX file")
    magic, *shape = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, header, 4))
    if magic != IDX_MAGIC[kind]:
        raise BenchError(f"{path}: IDX magic {magic:#010x}, expected {IDX_MAGIC[kind]:#010x} ({kind})")
    if kind == "images" and shape[1:] != [IMAGE_SIZE, IMAGE_SIZE]:
        raise BenchError(f"{path}: images of {shape[1]}x{shape[2]}, expected 28x28")
    if len(raw) - header != int(np.prod(shape)):
        raise BenchError(f"{path}: {len(raw) - header} data bytes, the header says {int(np.prod(shape))}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_split(split: str, data_dir: Path | str | None = None) -> Split:
    """The `train` or `test` split from `data_dir` (default: where Debian's package puts it)."""
    if split not in ("train", "test"):
        raise BenchError(f"unknown Fashion-MNIST split {split!r}; known: train, test")
    directory = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    paths = {kind: directory / FILES[(split, kind)] for kind in ("images", "labels")}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise BenchError(
            f"Fashion-MNIST files missing in {directory}: {', '.join(missing)}; "
            f"install them with `apt-get install dataset-fashion-mnist` or download them from "
            f"{UPSTREAM_URL} and pass --data-dir"
        )
    images = read_idx(paths["images"], "images")
    labels = read_idx(paths["labels"], "labels")
    if len(images) != len(labels):
        raise BenchError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    if len(labels) and labels.max() >= len(CLASSES):
        raise BenchError(f"{paths['labels']}: label {labels.max()} out of range 0..9")
    return Split(
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
    )


def stratified_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """`per_class` indices of each class drawn without replacement with `seed`, in class order."""
    rng = np.random.default_rng(seed)
    chosen = [
        np.sort(rng.choice(np.flatnonzero(labels == c), per_class, replace=False))
        for c in range(len(CLASSES))
    ]
    return np.concatenate(chosen)


def write_real_sample(path: Path, data_dir: Path | str | None = None, per_class: int = 26,
                      seed: int = 0) -> None:
    """Write the shipped sample: `per_class` test images of each class, drawn with `seed`."""
    test = load_split("test", data_dir)
    index = stratified_indices(test.labels.numpy(), per_class, seed)
    np.savez_compressed(
        path, images=test.images.numpy()[index], labels=test.labels.numpy()[index],
        test_index=index, seed=np.int64(seed),
    )


def load_real_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped stratified sample of real test images: x uint8 (N, 1, 28, 28), y int64 (N,)."""
    with files("bench").joinpath("data", SAMPLE_FILE).open("rb") as handle:
        arrays = np.load(handle)
        images, labels = arrays["images"], arrays["labels"]
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


if __name__ == "__main__":
    write_real_sample(Path(__file__).parent / "data" / SAMPLE_FILE)
