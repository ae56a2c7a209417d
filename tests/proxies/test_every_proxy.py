"""What every registered proxy promises, whatever its formula: a finite float on the tiny ViT and
BatchNorm CNN and on the smallest and largest architecture of every space, the same score for the
same seed (another for another seed), and the caller's model, running statistics included, left as
it was."""

import math

import pytest
import torch
from torch import nn

from proxies.base import PROXIES, Batch, Proxy, all_proxy_names, get_proxy
from spaces.errors import BenchError


def project_proxies() -> list[str]:
    """The proxies the project registers (test modules may register toy proxies of their own)."""
    return [name for name in all_proxy_names() if PROXIES[name].cls.__module__.startswith("proxies.")]


NAMES = project_proxies()


def one_per_code_path(names: list[str]) -> list[str]:
    """The first of each group of registrations that differ only in numeric hyper-parameters (such
    as ViNTK's σ): they take the same path through the code, so the first covers the group on the
    costly extreme architectures; every registration still runs on the tiny models below."""
    first: dict[tuple, str] = {}
    for name in names:
        proxy = get_proxy(name)
        path = (type(proxy), *((key, value) for key, value in proxy.hparams.items()
                               if isinstance(value, bool) or not isinstance(value, (int, float))))
        first.setdefault(path, name)
    return list(first.values())


@pytest.mark.parametrize("name", one_per_code_path(NAMES))
def test_finite_on_the_extreme_architectures_of_every_space(name, extreme_model):
    model, batch = extreme_model
    score = get_proxy(name)(model, batch)
    assert isinstance(score, float) and math.isfinite(score)


def caller_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers, BatchNorm's running statistics included (a train-mode forward
    moves them; the next proxy on the same model must not see that)."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def check_seeded_and_side_effect_free(proxy: Proxy, make, batch) -> None:
    """What every proxy promises on a model builder `make(seed)` and a batch, as its `needs`
    declares: a finite float, the same for the same seed, another for another seed unless it is
    weight-free, and the caller's model (running statistics included) left as it was."""
    model = make(0)
    before = caller_state(model)
    score = proxy(model, batch)
    assert isinstance(score, float) and math.isfinite(score)
    after = caller_state(model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert proxy(make(0), batch) == score
    if proxy.needs.weights:
        assert proxy(make(1), batch) != score
    else:
        assert proxy(make(1), batch) == score


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_score_and_the_callers_model_is_left_as_it_was(name, small_model):
    make, batch = small_model
    check_seeded_and_side_effect_free(get_proxy(name), make, batch)


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_below_the_declared_minimum_is_refused_before_scoring(name, small_model):
    make, batch = small_model
    proxy = get_proxy(name)
    assert proxy.batch_problem(len(batch.x)) is None
    too_small = proxy.needs.min_batch - 1
    if too_small >= 1:
        assert proxy.batch_problem(too_small)
        with pytest.raises(BenchError):
            proxy(make(0), Batch(batch.x[:too_small], batch.y[:too_small], batch.num_classes))
