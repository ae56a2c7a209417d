"""The proxy contract: a named class that turns (model, batch) into one float, higher is better."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from spaces.errors import BenchError


@dataclass(frozen=True)
class Batch:
    """Inputs for one proxy evaluation: images `x` (N, C, H, W), labels `y` (N,), and the class count.

    `kind` says where the images came from (gaussian, pink or real) so reports can show it.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    kind: str = "gaussian"

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Batch:
        x = self.x.to(device=device, dtype=dtype or self.x.dtype)
        return Batch(x, self.y.to(device), self.num_classes, self.kind)

    def split(self, parts: int) -> list[Batch]:
        """The batch cut into `parts` equal mini-batches (for proxies that need several)."""
        if len(self.x) % parts:
            raise BenchError(f"batch size {len(self.x)} does not split into {parts} equal batches")
        xs, ys = self.x.chunk(parts), self.y.chunk(parts)
        return [Batch(x, y, self.num_classes, self.kind) for x, y in zip(xs, ys)]


@dataclass(frozen=True)
class Needs:
    """What a proxy needs from the harness.

    labels: uses `batch.y`; real_data: meaningful only on real images; float64: runs the model in
    double precision; gradients: does a backward pass; mutates: changes weights, so the harness hands
    it a copy of the model; train_mode: model in train mode (BatchNorm uses batch statistics).
    """

    labels: bool = False
    real_data: bool = False
    float64: bool = False
    gradients: bool = True
    mutates: bool = False
    train_mode: bool = True

    def describe(self) -> str:
        flags = [name for name, on in vars(self).items() if on and name != "train_mode"]
        return ", ".join(flags) or "nothing"


class Proxy:
    """Base class of every zero-cost proxy.

    A subclass sets `needs` and a docstring whose first line is its one-line description, sets
    `reference` to its paper, and implements `score`. Keyword arguments given at registration are
    the proxy's hyper-parameters; they are stored as attributes and are part of the cache key.
    Call the proxy (`proxy(model, batch)`), not `score`: the call prepares the model as `needs` says
    and restores its buffers afterwards. A proxy that can compute its score in more than one way
    says in `note` which way the last call took (the runner records it beside the score).
    """

    name: ClassVar[str] = ""
    needs: ClassVar[Needs] = Needs()
    reference: ClassVar[str] = ""
    note: str = ""

    def __init__(self, **hparams: Any):
        self.hparams = dict(sorted(hparams.items()))
        for key, value in self.hparams.items():
            setattr(self, key, value)

    def score(self, model: nn.Module, batch: Batch) -> float:
        raise NotImplementedError

    def __call__(self, model: nn.Module, batch: Batch) -> float:
        self.note = ""
        if self.needs.mutates or self.needs.float64:
            model = copy.deepcopy(model)
        if self.needs.float64:
            model = model.double()
            batch = batch.to(batch.x.device, torch.float64)
        model.train(self.needs.train_mode)
        model.zero_grad(set_to_none=True)
        with preserved_buffers(model):
            return float(self.score(model, batch))

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def config(self) -> dict[str, Any]:
        """Name and hyper-parameters: what identifies this proxy's scores in the cache."""
        return {"name": self.name, **self.hparams}


@contextmanager
def preserved_buffers(model: nn.Module):
    """Restore `model`'s buffers on exit: a train-mode forward moves BatchNorm's running
    statistics, and the next proxy on the same model must not see which proxies ran before it."""
    saved = [(buffer, buffer.clone()) for buffer in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


@dataclass(frozen=True)
class Registration:
    cls: type[Proxy]
    hparams: dict[str, Any]


PROXIES: dict[str, Registration] = {}


def register(name: str, **hparams: Any):
    """Class decorator: make `cls(**hparams)` available as proxy `name`.

    Stack it to register variants of one class under several names.
    """

    def decorate(cls: type[Proxy]) -> type[Proxy]:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is registered twice")
        PROXIES[name] = Registration(cls, hparams)
        return cls

    return decorate


def get_proxy(name: str) -> Proxy:
    """A fresh instance of the proxy registered as `name`, or a BenchError listing known names."""
    import proxies.catalog  # noqa: F401  (the one place that imports every proxy module)

    if name not in PROXIES:
        raise BenchError(f"unknown proxy {name!r}; known: {', '.join(sorted(PROXIES))}")
    reg = PROXIES[name]
    proxy = reg.cls(**reg.hparams)
    proxy.name = name
    return proxy


def all_proxy_names() -> list[str]:
    import proxies.catalog  # noqa: F401

    return sorted(PROXIES)
