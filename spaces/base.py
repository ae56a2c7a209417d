"""What every search space provides: sample, validate, build, count; and the registry of spaces."""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from spaces.choices import require_img_size
from spaces.errors import BenchError, unknown_name

Arch = dict[str, Any]
# Draws at a valid child before `mutate` or `crossover` give up and return a parent.
OFFSPRING_TRIES = 100


def canonical_json(arch: Arch) -> str:
    """The architecture as compact JSON with sorted keys: one string per architecture."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def arch_id(arch: Arch) -> str:
    """A short stable hash of the canonical architecture, usable as a file-safe identifier."""
    return hashlib.sha256(canonical_json(arch).encode()).hexdigest()[:12]


class SearchSpace(ABC):
    """A family of architectures: sample one, check one, build an untrained model, count it.

    Subclasses state their choices, the native resolution and channels of their inputs and the
    number of classes; `build` takes `img_size` so that proxies can run at reduced resolution.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    default_img_size: ClassVar[int] = 224
    in_chans: ClassVar[int] = 3
    num_classes: int = 1000

    @abstractmethod
    def choices(self) -> dict[str, list]:
        """The value choices of each architectural dimension, for `bench spaces`."""

    @abstractmethod
    def sample(self, rng: random.Random) -> Arch:
        """Draw one architecture uniformly over the space's choices."""

    @abstractmethod
    def validate(self, arch: Arch) -> Arch:
        """Return the architecture in canonical form, or raise BenchError saying what is wrong."""

    @abstractmethod
    def build(self, arch: Arch, img_size: int | None = None) -> nn.Module:
        """An untrained model for `arch` taking (N, in_chans, img_size, img_size) images."""

    def sample_many(self, n: int, seed: int) -> list[Arch]:
        """`n` distinct architectures drawn with `seed` (fewer only if the space is that small)."""
        rng = random.Random(seed)
        seen: dict[str, Arch] = {}
        for _ in range(100 * n):
            if len(seen) == n:
                break
            arch = self.sample(rng)
            seen.setdefault(canonical_json(arch), arch)
        return list(seen.values())

    def mutate(self, arch: Arch, rng: random.Random, prob: float = 0.2) -> Arch:
        """A child of `arch` for evolutionary search: each choice (each entry of a per-layer or
        per-stage list) redrawn with probability `prob`, from a fresh sample of the space. A child
        that does not validate is drawn again; after OFFSPRING_TRIES the parent is returned.
        Spaces whose list lengths depend on another choice (a depth) override this."""
        for _ in range(OFFSPRING_TRIES):
            fresh = self.sample(rng)
            child = valid_or_none(self, {key: mixed(value, fresh[key], rng, prob)
                                         for key, value in arch.items()})
            if child is not None:
                return child
        return self.validate(arch)

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
        """A child of `a` and `b`: each choice taken from either with equal probability (entry by
        entry in lists of the same length, the whole list otherwise). A child that does not
        validate is drawn again; after OFFSPRING_TRIES `a` is returned."""
        for _ in range(OFFSPRING_TRIES):
            child = valid_or_none(self, {key: mixed(value, b[key], rng, 0.5)
                                         for key, value in a.items()})
            if child is not None:
                return child
        return self.validate(a)

    def count_params(self, arch: Arch, img_size: int | None = None) -> int:
        """Trainable parameters of the model at `img_size` (default: the native resolution).

        Importing a benchmark counts every architecture, so the project's spaces override this
        with a closed form that builds nothing; this fallback, for small spaces, builds the model.
        """
        return self.built_param_count(arch, img_size)

    def built_param_count(self, arch: Arch, img_size: int | None = None) -> int:
        """Trainable parameters of the model as built: the reference for the closed forms.

        Built on the meta device, which gives every parameter its shape without memory (a PiT-S
        of 258M parameters would take 1 GB) and skips the arithmetic of initialisation.
        """
        with torch.device("meta"):
            model = self.build(arch, img_size)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def resolution(self, img_size: int | None) -> int:
        """`img_size`, or the native resolution when None, checked with `check_img_size`."""
        size = img_size or self.default_img_size
        self.check_img_size(size)
        return size

    def check_img_size(self, size: int) -> None:
        """Raise a BenchError, saying which sizes the space accepts, unless its models build and
        run on images of `size` pixels; runs call it before any work. Any positive integer here:
        spaces whose patches or strides constrain the size override it."""
        require_img_size(self.name, size, minimum=1, multiple=1, accepted="a positive integer")

    def count_flops(self, arch: Arch, img_size: int | None = None) -> int:
        """Forward FLOPs of one image at `img_size` (see `forward_flops`)."""
        size = img_size or self.default_img_size
        model = self.build(arch, img_size=size).eval()
        return forward_flops(model, torch.zeros(1, self.in_chans, size, size))


def mixed(value: Any, other: Any, rng: random.Random, prob: float) -> Any:
    """`value` with each entry replaced by `other`'s with probability `prob` when both are lists of
    one length, else replaced as a whole with that probability."""
    if isinstance(value, list) and isinstance(other, list) and len(value) == len(other):
        return [theirs if rng.random() < prob else ours for ours, theirs in zip(value, other)]
    return other if rng.random() < prob else value


def valid_or_none(space: SearchSpace, arch: Arch) -> Arch | None:
    """The canonical form of `arch`, or None when it is no architecture of `space`."""
    try:
        return space.validate(arch)
    except BenchError:
        return None


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of `model(x)` as torch.utils.flop_counter counts them (a multiply-accumulate is 2).

    Attention runs on the math kernel, whose matrix products the counter sees (it counts the
    fused CPU kernel as zero, so CPU and CUDA counts would differ). Not under no_grad: the
    counter's module tracker fails on timm's PiT there.
    """
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(x)
    return int(counter.get_total_flops())


SPACES: dict[str, type[SearchSpace]] = {}


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: make a space available by its `name`."""
    if cls.name in SPACES:
        raise ValueError(f"search space {cls.name!r} is registered twice")
    SPACES[cls.name] = cls
    return cls


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """The space called `name` (constructed with `kwargs`, e.g. num_classes), or a BenchError
    that suggests the close names (a typo) or lists the known ones."""
    import spaces.catalog  # noqa: F401  (the one place that imports every space module)

    if name not in SPACES:
        raise unknown_name("space", name, SPACES)
    return SPACES[name](**kwargs)


def all_space_names() -> list[str]:
    import spaces.catalog  # noqa: F401

    return sorted(SPACES)


def load_arch(space: SearchSpace, text: str) -> Arch:
    """Parse JSON text given by a user into a validated architecture of `space`."""
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchError(f"architecture is not valid JSON: {err.msg} at column {err.colno}") from None
    except RecursionError:
        raise BenchError("architecture is not valid JSON: nested too deeply") from None
    if not isinstance(arch, dict):
        raise BenchError("architecture must be a JSON object")
    return space.validate(arch)
