"""The micro space (counts by hand, shapes, validation) and the benchmark trained on it."""

import json
import random
from dataclasses import asdict

import pytest
import torch
from timm.layers import Attention

from bench.fashion_mnist import DEFAULT_DATA_DIR, FILES, load_split
from bench.groundtruth import (
    COLUMNS,
    Recipe,
    normalise,
    train_and_evaluate,
    train_subset,
    training_plan,
)
from bench.trained_benchmark import read_trainings
from spaces.base import get_space
from spaces.benchmarks import EMBEDDED_DIR, load_benchmark
from spaces.errors import BenchError

ARCH = {"embed_dim": 32, "depth": 3, "mlp_ratio": [1.0, 4.0, 2.0], "num_heads": [1, 4, 2]}
TRAININGS = EMBEDDED_DIR / "trainings" / "micro-fmnist.csv"


@pytest.fixture
def micro():
    return get_space("micro")


def hand_count(arch, patch=7, tokens=17, head_dim=16, classes=10):
    e = arch["embed_dim"]
    total = patch * patch * e + e + e + tokens * e  # patch conv, class token, positions
    for ratio, heads in zip(arch["mlp_ratio"], arch["num_heads"]):
        qkv, hidden = 3 * head_dim * heads, int(ratio * e)
        total += 2 * e + e * qkv + qkv + qkv // 3 * e + e  # norm1, qkv, proj
        total += 2 * e + e * hidden + hidden + hidden * e + e  # norm2, fc1, fc2
    return total + 2 * e + e * classes + classes  # final norm, head


def test_parameter_count_matches_a_hand_count(micro):
    assert micro.count_params(ARCH) == hand_count(ARCH) == 32_378
    rng = random.Random(5)
    for _ in range(5):
        arch = micro.sample(rng)
        assert micro.count_params(arch) == hand_count(arch)


def test_attention_width_is_sixteen_per_head_whatever_the_embedding(micro):
    model = micro.build(ARCH)
    attentions = [m for m in model.modules() if isinstance(m, Attention)]
    assert [a.qkv.out_features for a in attentions] == [48, 192, 96]
    assert all(a.proj.out_features == 32 for a in attentions)


@pytest.mark.parametrize("size, patches", [(28, 16), (14, 4), (32, 16)])
def test_forward_maps_grey_images_to_ten_logits(micro, size, patches):
    model = micro.build(ARCH, img_size=size)
    assert model.pos_embed.shape == (1, patches + 1, 32)
    assert model(torch.randn(3, 1, size, size)).shape == (3, 10)


def test_flops_of_a_one_layer_network_match_a_hand_count(micro):
    arch = {"embed_dim": 8, "depth": 1, "mlp_ratio": [2.0], "num_heads": [1]}
    tokens, e, width, hidden = 17, 8, 16, 16
    macs = 16 * 49 * e  # patch convolution
    macs += tokens * e * 3 * width + 2 * tokens * tokens * width + tokens * width * e
    macs += 2 * tokens * e * hidden + e * 10
    assert micro.count_flops(arch) == 2 * macs


@pytest.mark.parametrize("bad, message", [
    ({**ARCH, "embed_dim": 40}, "embed_dim"),
    ({**ARCH, "depth": 2}, "list of 2 values"),
    ({**ARCH, "num_heads": [1, 3, 2]}, "num_heads"),
    ({**ARCH, "mlp_ratio": [1.0, 4.0, 2.5]}, "mlp_ratio"),
    ({"embed_dim": 32}, "keys"),
])
def test_invalid_architectures_are_refused(micro, bad, message):
    with pytest.raises(BenchError, match=message):
        micro.validate(bad)


def test_samples_are_valid_and_canonical(micro):
    for arch in micro.sample_many(20, seed=1):
        assert micro.validate(arch) == arch
        assert len(arch["mlp_ratio"]) == len(arch["num_heads"]) == arch["depth"]


@pytest.fixture
def shipped():
    if not TRAININGS.is_file():
        pytest.fail(f"the shipped training table {TRAININGS} is missing")
    return read_trainings(TRAININGS)


def test_shipped_trainings_follow_the_plan_and_recipe(micro, shipped):
    assert list(shipped.columns) == COLUMNS
    plan = training_plan(micro, len(shipped), seeds=3)
    assert [(r.arch_id, r.seed) for r in shipped.itertuples()] == [t.key for t in plan[:len(shipped)]]
    provenance = json.loads(TRAININGS.with_suffix(".json").read_text())
    assert provenance["recipe"] == json.loads(json.dumps(asdict(Recipe())))
    assert provenance["dataset_licence"] == "MIT"
    assert shipped["accuracy"].between(10, 100).all()
    for row in shipped.head(3).itertuples():
        arch = json.loads(row.arch)
        assert row.params == micro.count_params(arch) and row.flops == micro.count_flops(arch)


def test_shipped_benchmark_is_the_mean_over_seeds_of_the_trainings(shipped):
    bench = load_benchmark("micro-fmnist", builds=4)
    assert bench.space == "micro" and bench.provenance["default_target"] == "accuracy"
    means = shipped.groupby("arch_id")["accuracy"].mean()
    table = bench.table.set_index("arch_id")
    assert set(table.index) == set(means.index)
    assert (table["accuracy"] - means[table.index]).abs().max() <= 5e-5  # rounded to 4 places
    assert (table["n_seeds"] == shipped.groupby("arch_id").size()[table.index]).all()


def test_retraining_a_shipped_network_reproduces_its_accuracy(micro, shipped):
    if not (DEFAULT_DATA_DIR / FILES[("train", "images")]).is_file():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    row = shipped.loc[shipped["seconds"].idxmin()]
    recipe = Recipe()
    train, test = load_split("train"), load_split("test")
    torch.set_num_threads(int(row["threads"]))
    accuracy = train_and_evaluate(micro, json.loads(row["arch"]), int(row["seed"]),
                                  train_subset(train, recipe),
                                  (normalise(test.images), test.labels), recipe)
    provenance = json.loads(TRAININGS.with_suffix(".json").read_text())
    here = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    if provenance["machines"] == [here]:
        assert accuracy == row["accuracy"]
    else:  # other vector kernels round differently; the training is otherwise the same
        assert abs(accuracy - row["accuracy"]) < 1.0
