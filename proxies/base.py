"""The proxy contract: a named class that turns (model, batch) into one float, higher is better."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from spaces.errors import BenchError, unknown_name


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
    """What a proxy needs from the harness; the generic tests and the run's checks read it.

    labels: uses `batch.y`; real_data: meaningful only on real images; float64: runs the model in
    double precision; kernel: computes an NTK, so the model runs in the run's kernel dtype
    (float64 unless a run asks for float32); gradients: does a backward pass; weights: the score
    depends on the weight values (False for counts that read only the architecture); mutates:
    changes weights, so the harness hands it a copy of the model; train_mode: model in train
    mode (BatchNorm uses batch statistics); min_batch: the smallest batch the formula is defined on.
    """

    labels: bool = False
    real_data: bool = False
    float64: bool = False
    kernel: bool = False
    gradients: bool = True
    weights: bool = True
    mutates: bool = False
    train_mode: bool = True
    min_batch: int = 1

    def describe(self) -> str:
        flags = [name for name, on in vars(self).items()
                 if on is True and name not in ("train_mode", "weights", "gradients")]
        if self.gradients:
            flags.append("gradients")
        if not self.weights:
            flags.append("weight-free")
        if self.min_batch > 1:
            flags.append(f"batch >= {self.min_batch}")
        return ", ".join(flags) or "nothing"


class Proxy:
    """Base class of every zero-cost proxy.

    A subclass sets `needs`, a docstring whose first paragraph is its description, `reference`
    (its paper) and implements `score`; it bumps `version` whenever a change to its code can change
    a score, so that cached scores of the old code are never served. Keyword arguments given at
    registration are the proxy's hyper-parameters; they are stored as attributes and are part of
    the cache key. Call the proxy (`proxy(model, batch)`), not `score`: the call prepares the model
    as `needs` says and restores its buffers afterwards. A proxy that can compute its score in more
    than one way says how the last call went with `add_note` (the runner records it).
    """

    name: ClassVar[str] = ""
    needs: ClassVar[Needs] = Needs()
    reference: ClassVar[str] = ""
    version: ClassVar[int] = 1
    note: str = ""

    def __init__(self, **hparams: Any):
        self.hparams = dict(sorted(hparams.items()))
        for key, value in self.hparams.items():
            setattr(self, key, value)
        self.kernel_dtype = torch.float64

    def score(self, model: nn.Module, batch: Batch) -> float:
        raise NotImplementedError

    def __call__(self, model: nn.Module, batch: Batch) -> float:
        self.note = ""
        problem = self.batch_problem(len(batch.x))
        if problem:
            raise BenchError(problem)
        dtype = self.dtype()
        if self.needs.mutates:
            model = copy.deepcopy(model).to(dtype or next_dtype(model))
        elif dtype is not None and dtype != next_dtype(model):
            # Read-only proxies of one architecture share one converted copy.
            model = shared(("converted model", dtype), (model,),
                           lambda: copy.deepcopy(model).to(dtype))
        if dtype is not None:
            batch = shared(("converted batch", dtype), (batch.x,), lambda: batch.to(batch.x.device, dtype))
        model.train(self.needs.train_mode)
        model.zero_grad(set_to_none=True)
        with preserved_buffers(model):
            return float(self.score(model, batch))

    def dtype(self) -> torch.dtype | None:
        """The dtype the model and batch run in, or None to keep the caller's."""
        if self.needs.float64:
            return torch.float64
        return self.kernel_dtype if self.needs.kernel else None

    def add_note(self, text: str) -> None:
        self.note = f"{self.note}; {text}" if self.note else text

    def batch_problem(self, batch_size: int) -> str | None:
        """Why this proxy cannot score a batch of `batch_size` images, or None if it can."""
        if batch_size < self.needs.min_batch:
            return f"{self.name} needs a batch of at least {self.needs.min_batch} images"
        return None

    @classmethod
    def description(cls) -> str:
        """The docstring's first paragraph on one line."""
        text = (cls.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(text.split())

    def config(self) -> dict[str, Any]:
        """What identifies this proxy's scores in the cache: name, hyper-parameters, code version
        and, for kernel proxies, the kernel dtype."""
        config = {"name": self.name, **self.hparams, "version": self.version}
        if self.needs.kernel:
            config["kernel_dtype"] = str(self.kernel_dtype).removeprefix("torch.")
        return config


def next_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 for a parameter-free one)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


# Per-architecture memo of work that several proxies share (runner.shared_work opens one).
_SHARED: ContextVar[dict | None] = ContextVar("shared_work", default=None)


@contextmanager
def shared_work() -> Iterator[None]:
    """While open, `shared` computes each (key, inputs) once: the runner opens one around the
    proxies of one architecture, so that ntk and ntk_trace build one kernel."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared(key: tuple, inputs: tuple, compute: Callable[[], Any]) -> Any:
    """`compute()`, or its value from an earlier call with the same key on the same input objects
    inside the open `shared_work`; outside one, always `compute()`. The memo holds the inputs, so
    their ids cannot be reused by other objects while it is open."""
    memo = _SHARED.get()
    if memo is None:
        return compute()
    full_key = (key, *(id(item) for item in inputs))
    if full_key not in memo:
        memo[full_key] = (inputs, compute())
    return memo[full_key][1]


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


def get_proxy(name: str, kernel_dtype: torch.dtype = torch.float64) -> Proxy:
    """A fresh instance of the proxy registered as `name` (kernel proxies computing in
    `kernel_dtype`), or a BenchError suggesting the close names."""
    import proxies.catalog  # noqa: F401  (the one place that imports every proxy module)

    if name not in PROXIES:
        raise unknown_name("proxy", name, PROXIES)
    reg = PROXIES[name]
    proxy = reg.cls(**reg.hparams)
    proxy.name = name
    proxy.kernel_dtype = kernel_dtype
    return proxy


def all_proxy_names() -> list[str]:
    import proxies.catalog  # noqa: F401

    return sorted(PROXIES)
