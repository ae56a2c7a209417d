"""autoprox-t: Auto-Prox's AutoFormerSub counted by hand, its pooling, and its 200 public networks."""

import random

import pytest
import torch
from timm.layers import Attention

from spaces.autoformer import RelativePosition2D
from spaces.autoprox import AutoProxSpace
from spaces.base import get_space
from spaces.errors import BenchError

GROUND_TRUTH_FILES = ["gt_autoformer.pth", "gt_autoformer_2.pth"]


def hand_count(arch: dict, num_classes: int, grid: int = 14) -> int:
    """AutoFormerSub's parameters: q/k/v width = embed_dim, no relative tables."""
    e = arch["embed_dim"]
    total = (3 * 16 * 16 + 1) * e + e + (grid * grid + 1) * e  # patch conv, class token, positions
    for ratio in arch["mlp_ratio"]:
        hidden = int(ratio * e)
        total += 2 * 2 * e + (e + 1) * 3 * e + (e + 1) * e  # LayerNorms, qkv, proj
        total += (e + 1) * hidden + (hidden + 1) * e  # MLP
    return total + 2 * e + (e + 1) * num_classes  # final LayerNorm, head


def autoprox_records(folder) -> list[dict]:
    """The architectures of both Auto-Prox AutoFormer files, `hidden_dim` renamed `embed_dim`."""
    archs = []
    for name in GROUND_TRUTH_FILES:
        for record in torch.load(folder / "autoprox" / name, weights_only=True):
            arch = dict(record["arch"])
            arch["embed_dim"] = arch.pop("hidden_dim")
            archs.append(arch)
    return archs


def test_space_defaults_to_cifar100_and_takes_other_class_counts():
    assert get_space("autoprox-t").num_classes == 100
    space = AutoProxSpace(num_classes=4)
    arch = space.sample(random.Random(0))
    assert space.build(arch, img_size=32)(torch.randn(3, 3, 32, 32)).shape == (3, 4)
    with pytest.raises(BenchError, match="num_classes must be a positive integer"):
        AutoProxSpace(num_classes=0)


@pytest.mark.parametrize("num_classes", [100, 102])
def test_parameter_count_matches_hand_count(num_classes):
    space = AutoProxSpace(num_classes)
    for arch in space.sample_many(3, seed=11):
        assert space.count_params(arch) == hand_count(arch, num_classes)


def test_attention_has_head_dim_embed_over_heads_and_no_relative_position():
    space = get_space("autoprox-t")
    arch = {"embed_dim": 216, "depth": 12, "mlp_ratio": [3.5] * 12, "num_heads": [3, 4] * 6}
    model = space.build(arch, img_size=32)
    attns = [m for m in model.modules() if isinstance(m, Attention)]
    assert [a.head_dim for a in attns] == [72, 54] * 6
    assert not any(isinstance(m, RelativePosition2D) for m in model.modules())


def test_head_reads_mean_of_normalised_patch_tokens():
    torch.manual_seed(0)
    space = get_space("autoprox-t")
    model = space.build(space.sample(random.Random(2)), img_size=64)
    normed = []
    model.norm.register_forward_hook(lambda module, inputs, output: normed.append(output))
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64))
        assert torch.allclose(logits, model.head(normed[0][:, 1:].mean(dim=1)), atol=1e-6)
        assert not torch.allclose(logits, model.head(normed[0].mean(dim=1)), atol=1e-3)


def test_all_200_public_networks_validate(shared_data):
    space = get_space("autoprox-t")
    archs = autoprox_records(shared_data)
    assert len(archs) == 200
    assert all(space.validate(arch) == arch for arch in archs)


def test_public_networks_of_every_width_and_depth_build_with_hand_counted_params(shared_data):
    """One network per (embed_dim, depth) found in the files: every width, depth and per-layer
    (heads, MLP ratio) choice is built. Building all 200 would take a minute on two cores."""
    space = get_space("autoprox-t")
    first = {}
    for arch in autoprox_records(shared_data):
        first.setdefault((arch["embed_dim"], arch["depth"]), arch)
    assert len(first) == 9
    layers = {pair for arch in first.values() for pair in zip(arch["num_heads"], arch["mlp_ratio"])}
    assert len(layers) == 4
    for arch in first.values():
        model = space.build(arch, img_size=32)
        assert sum(p.numel() for p in model.parameters()) == hand_count(arch, 100, grid=2)
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 100)
