"""PiT spaces: hand-counted parameters, timm's registered PiTs, valid resolutions, Auto-Prox's PiTs."""

import random
from itertools import product

import pytest
import timm
import torch

from spaces.base import canonical_json, get_space
from spaces.errors import BenchError

PIT_SPACES = ["pit-t", "pit-xs", "pit-s"]


def grid(img_size: int) -> int:
    return (img_size - 16) // 8 + 1


def hand_count(arch: dict, num_classes: int = 1000, img_size: int = 224) -> int:
    """PiT's parameters stage by stage (Heo et al. 2021): conv stem, blocks, pooling, head."""
    widths = [arch["base_dim"] * heads for heads in arch["num_heads"]]
    first = widths[0]
    total = (3 * 16 * 16 + 1) * first + first * grid(img_size) ** 2 + first  # stem, positions, cls
    for stage, (c, depth) in enumerate(zip(widths, arch["depth"])):
        hidden = int(c * arch["mlp_ratio"])
        block = 2 * 2 * c + (c + 1) * 3 * c + (c + 1) * c + (c + 1) * hidden + (hidden + 1) * c
        total += depth * block
        if stage:  # pooling into this stage: depthwise-grouped 3x3 conv and a linear for the cls
            previous = widths[stage - 1]
            total += c * 9 + c + (previous + 1) * c
    return total + 2 * widths[-1] + (widths[-1] + 1) * num_classes


@pytest.mark.parametrize("name", PIT_SPACES)
def test_parameter_count_matches_hand_count(name):
    space = get_space(name)
    for arch in space.sample_many(3, seed=5):
        assert space.count_params(arch) == hand_count(arch)


@pytest.mark.parametrize("name, timm_name, base_dim, heads", [
    ("pit-t", "pit_ti_224", 32, [2, 4, 8]),
    ("pit-xs", "pit_xs_224", 48, [2, 4, 8]),
    ("pit-s", "pit_s_224", 48, [3, 6, 12]),
])
def test_timm_registered_pit_is_an_architecture_of_the_space(name, timm_name, base_dim, heads):
    arch = {"base_dim": base_dim, "mlp_ratio": 4, "depth": [2, 6, 4], "num_heads": heads}
    reference = timm.create_model(timm_name, pretrained=False)
    expected = sum(p.numel() for p in reference.parameters())
    assert get_space(name).count_params(arch) == expected == hand_count(arch)


@pytest.mark.parametrize("name", PIT_SPACES)
@pytest.mark.parametrize("img_size", [16, 32, 40])
def test_forward_at_reduced_resolution_gives_logits(name, img_size):
    space = get_space(name)
    arch = {"base_dim": min(space.base_dims), "mlp_ratio": 2, "depth": [1, 4, 2],
            "num_heads": [min(space.heads)] * 3}
    model = space.build(arch, img_size=img_size)
    assert model(torch.randn(2, 3, img_size, img_size)).shape == (2, 1000)
    assert sum(p.numel() for p in model.parameters()) == hand_count(arch, img_size=img_size)


@pytest.mark.parametrize("img_size", [8, 36, 60])
def test_build_rejects_sizes_that_the_stride_8_stem_does_not_tile(img_size):
    with pytest.raises(BenchError, match="multiple of the stem stride 8"):
        get_space("pit-t").build(get_space("pit-t").sample(random.Random(0)), img_size=img_size)


def test_sampled_heads_never_decrease_and_cover_all_ten_triples():
    space = get_space("pit-s")
    rng = random.Random(0)
    seen = {tuple(space.sample(rng)["num_heads"]) for _ in range(500)}
    allowed = {t for t in product([3, 6, 12], repeat=3) if list(t) == sorted(t)}
    assert seen == allowed and len(allowed) == 10


def test_validate_rejects_decreasing_heads_with_the_reason():
    arch = {"base_dim": 16, "mlp_ratio": 4, "depth": [1, 4, 2], "num_heads": [4, 2, 8]}
    with pytest.raises(BenchError, match="pit-t: num_heads .4, 2, 8. decreases"):
        get_space("pit-t").validate(arch)


@pytest.mark.parametrize("change, message", [
    ({"base_dim": 48}, "base_dim = 48 is not one of [16, 24, 32, 40]"),
    ({"mlp_ratio": 3}, "mlp_ratio = 3 is not one of [2, 4, 6, 8]"),
    ({"depth": [1, 5, 2]}, "depth[1] = 5 is not one of [4, 6, 8]"),
    ({"depth": [1, 4]}, "depth must be a list of 3 values"),
    ({"num_heads": [2, 4, 6]}, "num_heads[2] = 6 is not one of [2, 4, 8]"),
])
def test_validate_names_the_wrong_field(change, message):
    arch = {"base_dim": 16, "mlp_ratio": 4, "depth": [1, 4, 2], "num_heads": [2, 4, 8]}
    with pytest.raises(BenchError) as err:
        get_space("pit-t").validate(dict(arch, **change))
    assert message in str(err.value)


def test_validate_canonicalises_the_mlp_ratio_to_an_integer():
    arch = {"base_dim": 16, "mlp_ratio": 4.0, "depth": [1, 4, 2], "num_heads": [2, 4, 8]}
    assert canonical_json(get_space("pit-t").validate(arch)) == (
        '{"base_dim":16,"depth":[1,4,2],"mlp_ratio":4,"num_heads":[2,4,8]}')


def test_auto_prox_pit_networks_are_the_pit_t_space(shared_data):
    records = torch.load(shared_data / "autoprox" / "gt_pit.pth", weights_only=True)
    space = get_space("pit-t")
    archs = [record["arch"] for record in records]
    assert len(archs) == 100
    assert all(space.validate(arch) == arch for arch in archs)
    assert {arch["base_dim"] for arch in archs} == set(space.base_dims)
    smallest = min(archs, key=hand_count)
    model = space.build(smallest, img_size=32)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
