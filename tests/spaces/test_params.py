"""Closed-form parameter counts: equal to the built model's on every registered space, at the native
and a reduced resolution, and computed without building anything."""

import random

import pytest
from timm.layers import Attention
from timm.models.vision_transformer import Block
from torch import nn

import spaces.catalog  # noqa: F401  (registers every space)
from spaces.autoprox import AutoProxSpace
from spaces.base import SPACES, SearchSpace
from spaces.params import attention_params, block_params, conv_params, linear_params, norm_params

# Every space the project registers, and autoprox-t at the class counts of its ground truths
# (CIFAR-100 by default, Flowers 102, Chaoyang 4).
CASES = {name: (lambda cls=cls: cls()) for name, cls in SPACES.items()
         if cls.__module__.startswith("spaces.")}
CASES.update({"autoprox-t-102": lambda: AutoProxSpace(102), "autoprox-t-4": lambda: AutoProxSpace(4)})


class ExtremeChoice(random.Random):
    """An rng whose `choice` takes the first (or last) option, as in tests/proxies/conftest.py:
    the smallest (largest) member of a space whose numeric options are ascending."""

    def __init__(self, last: bool):
        super().__init__(0)
        self.last = last

    def choice(self, seq):
        return seq[-1] if self.last else seq[0]


def architectures(space: SearchSpace) -> list[dict]:
    """Ten seeded samples, the smallest and the largest architecture."""
    return space.sample_many(10, seed=0) + [space.sample(ExtremeChoice(last)) for last in (False, True)]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_layer_counts_are_those_of_the_torch_and_timm_layers():
    assert linear_params(5, 3) == count(nn.Linear(5, 3))
    assert linear_params(5, 3, bias=False) == count(nn.Linear(5, 3, bias=False))
    assert conv_params(6, 12, 3, groups=6) == count(nn.Conv2d(6, 12, 3, groups=6))
    assert norm_params(7) == count(nn.LayerNorm(7)) == count(nn.BatchNorm2d(7))
    assert attention_params(8, 12) == count(Attention(8, 2, attn_head_dim=6, qkv_bias=True))
    block = Block(8, 2, mlp_ratio=3.5, qkv_bias=True)
    assert block_params(8, attention_params(8, 8), 3.5) == count(block)


@pytest.mark.parametrize("case", CASES)
def test_closed_form_equals_the_built_model(case):
    space = CASES[case]()
    for arch in architectures(space):
        assert space.count_params(arch) == space.built_param_count(arch), arch


@pytest.mark.parametrize("case", CASES)
def test_closed_form_follows_the_position_table_at_half_resolution(case):
    space = CASES[case]()
    size = space.default_img_size // 2
    for arch in architectures(space)[-2:]:
        assert space.count_params(arch, size) == space.built_param_count(arch, size), arch


@pytest.mark.parametrize("case", CASES)
def test_count_params_builds_nothing(case, monkeypatch):
    space = CASES[case]()
    arch = space.sample(random.Random(0))

    def refuse(*args, **kwargs):
        raise AssertionError("count_params built a model")

    monkeypatch.setattr(type(space), "build", refuse)
    monkeypatch.setattr(nn.Module, "__init__", refuse)
    assert space.count_params(arch) > 0


@pytest.mark.parametrize("case", CASES)
def test_the_meta_device_reference_counts_as_a_real_build(case):
    space = CASES[case]()
    smallest = space.sample(ExtremeChoice(last=False))
    assert space.built_param_count(smallest) == count(space.build(smallest))
