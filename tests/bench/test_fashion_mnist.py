"""The Fashion-MNIST loader on IDX files written in the test, and the shipped real-image sample."""

import gzip

import numpy as np
import pytest
import torch

from bench.fashion_mnist import (
    CLASSES,
    DEFAULT_DATA_DIR,
    FILES,
    load_real_sample,
    load_split,
    read_idx,
    stratified_indices,
)
from spaces.errors import BenchError


def test_load_split_returns_the_written_images_and_labels(tmp_path, idx_writer):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 28, 28)).astype(np.uint8)
    labels = np.array([3, 0, 9, 1, 1, 5, 2], dtype=np.uint8)
    idx_writer(tmp_path / FILES[("test", "images")], images)
    idx_writer(tmp_path / FILES[("test", "labels")], labels)
    split = load_split("test", tmp_path)
    assert split.images.dtype == torch.uint8 and split.images.shape == (7, 1, 28, 28)
    assert np.array_equal(split.images[:, 0].numpy(), images)
    assert split.labels.dtype == torch.int64 and split.labels.tolist() == labels.tolist()


def test_labels_file_with_the_images_magic_is_refused(tmp_path, idx_writer):
    path = tmp_path / "labels.gz"
    idx_writer(path, np.zeros((2, 28, 28)))
    with pytest.raises(BenchError, match="magic"):
        read_idx(path, "labels")


def test_images_of_another_size_are_refused(tmp_path, idx_writer):
    path = tmp_path / "images.gz"
    idx_writer(path, np.zeros((2, 32, 32)))
    with pytest.raises(BenchError, match="32x32"):
        read_idx(path, "images")


def test_truncated_file_is_refused(tmp_path, idx_writer):
    path = tmp_path / "images.gz"
    idx_writer(path, np.zeros((3, 28, 28)))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(BenchError, match="data bytes"):
        read_idx(path, "images")


def test_image_and_label_counts_must_agree(tmp_path, idx_writer):
    idx_writer(tmp_path / FILES[("train", "images")], np.zeros((3, 28, 28)))
    idx_writer(tmp_path / FILES[("train", "labels")], np.zeros(4))
    with pytest.raises(BenchError, match="3 train images but 4 labels"):
        load_split("train", tmp_path)


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(BenchError) as err:
        load_split("train", tmp_path)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "github.com/zalandoresearch/fashion-mnist" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_stratified_indices_take_the_same_count_of_each_class_without_repeats():
    labels = np.random.default_rng(0).integers(0, 10, size=500)
    index = stratified_indices(labels, per_class=4, seed=3)
    assert len(set(index.tolist())) == 40
    assert np.bincount(labels[index], minlength=10).tolist() == [4] * 10
    assert np.array_equal(index, stratified_indices(labels, per_class=4, seed=3))
    assert not np.array_equal(index, stratified_indices(labels, per_class=4, seed=4))


def test_shipped_sample_is_stratified_uint8_images():
    x, y = load_real_sample()
    assert x.dtype == torch.uint8 and x.shape == (260, 1, 28, 28)
    assert torch.bincount(y, minlength=len(CLASSES)).tolist() == [26] * 10
    assert x.float().std() > 50  # real images, not a constant


def test_shipped_sample_is_the_recorded_test_images():
    if not (DEFAULT_DATA_DIR / FILES[("test", "images")]).is_file():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    from importlib.resources import files

    with files("bench").joinpath("data", "fashion_mnist_sample.npz").open("rb") as handle:
        index = np.load(handle)["test_index"]
    test = load_split("test")
    x, y = load_real_sample()
    assert torch.equal(x, test.images[index]) and torch.equal(y, test.labels[index])
