"""The `nb201` space: NAS-Bench-201's cell-based CNN (Dong & Yang, ICLR 2020), the control space.

NTK-style proxies are known to rank CNNs well, so NAS-Bench-201 is where the project checks that its
proxies reproduce the published behaviour before trusting them on Vision Transformers. The model
follows NAS-Bench-201's TinyNetwork (and NASLib's copy of it): a 3x3 stem conv + BN, three stages of
five identical cells with 16/32/64 channels separated by residual reduction blocks, BN-ReLU, global
average pooling and a linear classifier. A cell is a DAG of 4 nodes; each of its 6 edges applies one
operation, and a node is the sum of its incoming edges. Parameters are counted in closed form
(`NB201Network.param_count`), without building the model.

An architecture is `{"ops": [six op names]}` in NAS-Bench-201's string order: edges (1<-0), (2<-0),
(2<-1), (3<-0), (3<-1), (3<-2). NASLib numbers the ops (0 skip_connect, 1 none, 2 nor_conv_3x3,
3 nor_conv_1x1, 4 avg_pool_3x3) and lists the edges in another order, (1<-0), (2<-0), (3<-0),
(2<-1), (3<-1), (3<-2) (its EDGE_LIST); the helpers below convert between the three forms.
"""

from __future__ import annotations

import random
import re

import torch
from torch import nn

from spaces.base import Arch, SearchSpace, register_space
from spaces.choices import pick_each, positive_int, require_img_size, require_keys
from spaces.errors import BenchError
from spaces.params import conv_params, linear_params, norm_params

OPS = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]  # NASLib's indices
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]  # (to, from), NAS-Bench-201 string order
NASLIB_EDGES = [(1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2)]
STEM_CHANNELS = 16
STAGE_WIDTHS = (STEM_CHANNELS, 2 * STEM_CHANNELS, 4 * STEM_CHANNELS)
CELLS_PER_STAGE = 5


def to_nb201_string(arch: Arch) -> str:
    """NAS-Bench-201's string, e.g. `|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|`."""
    ops = dict(zip(EDGES, arch["ops"]))
    nodes = ["|".join(f"{ops[(to, src)]}~{src}" for src in range(to)) for to in (1, 2, 3)]
    return "|" + "|+|".join(nodes) + "|"


def from_nb201_string(text: str) -> Arch:
    """The architecture of a NAS-Bench-201 string (the inverse of `to_nb201_string`)."""
    pattern = r"\|([a-z0-9_]+)~0\|\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|\+" \
              r"\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|([a-z0-9_]+)~2\|"
    match = re.fullmatch(pattern, text.strip())
    if not match:
        raise BenchError(f"not a NAS-Bench-201 architecture string: {text!r}")
    return NB201Space().validate({"ops": list(match.groups())})


def to_naslib_indices(arch: Arch) -> tuple[int, ...]:
    """NASLib's op-index tuple, e.g. (0, 2, 3, 2, 3, 1)."""
    ops = dict(zip(EDGES, arch["ops"]))
    return tuple(OPS.index(ops[edge]) for edge in NASLIB_EDGES)


def from_naslib_indices(indices) -> Arch:
    """The architecture of a NASLib op-index tuple (a sequence, or its text "(0, 2, 3, 2, 3, 1)")."""
    if isinstance(indices, str):
        try:
            indices = [int(part) for part in indices.strip().strip("()").split(",")]
        except ValueError:
            raise BenchError(f"not a NASLib op-index tuple: {indices!r}") from None
    indices = list(indices)
    if len(indices) != len(NASLIB_EDGES) or any(i not in range(len(OPS)) for i in indices):
        raise BenchError(f"a NASLib op-index tuple has 6 indices in 0..4, got {indices}")
    ops = dict(zip(NASLIB_EDGES, (OPS[i] for i in indices)))
    return {"ops": [ops[edge] for edge in EDGES]}


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution without bias, BatchNorm: NAS-Bench-201's convolution operation."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    @staticmethod
    def param_count(c_in: int, c_out: int, kernel_size: int) -> int:
        """The convolution (no bias) and the BatchNorm."""
        return conv_params(c_in, c_out, kernel_size, bias=False) + norm_params(c_out)


class Zero(nn.Module):
    """The `none` operation: zeros shaped like the input, kept in the graph as NAS-Bench-201 does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """One edge operation; inside a cell every edge keeps the width and resolution."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "none":
        return Zero()
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def op_params(name: str, channels: int) -> int:
    """Parameters of `make_op(name, channels)`: only the two convolutions have any."""
    kernel = {"nor_conv_3x3": 3, "nor_conv_1x1": 1}.get(name)
    return ReLUConvBN.param_count(channels, channels, kernel) if kernel else 0


class Cell(nn.Module):
    """The 4-node DAG: node j is the sum over i < j of op(i -> j)(node i); the output is node 3."""

    def __init__(self, ops: list[str], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            nodes.append(sum(self.edges[k](nodes[src]) for k, (dst, src) in enumerate(EDGES)
                             if dst == to))
        return nodes[3]


class ReductionBlock(nn.Module):
    """NAS-Bench-201's ResNet basic block with stride 2: two ReLU-Conv-BN 3x3 convs, and a 2x2
    average pool followed by a 1x1 conv on the shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))

    @staticmethod
    def param_count(c_in: int, c_out: int) -> int:
        """conv_a, conv_b and the shortcut's 1x1 conv (no bias)."""
        return (ReLUConvBN.param_count(c_in, c_out, 3) + ReLUConvBN.param_count(c_out, c_out, 3)
                + conv_params(c_in, c_out, 1, bias=False))


class NB201Network(nn.Module):
    """NAS-Bench-201's TinyNetwork (C = 16, N = 5) for one cell."""

    def __init__(self, ops: list[str], in_chans: int, num_classes: int):
        super().__init__()
        widths = STAGE_WIDTHS
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
        )
        layers: list[nn.Module] = []
        for stage, width in enumerate(widths):
            if stage:
                layers.append(ReductionBlock(widths[stage - 1], width))
            layers.extend(Cell(ops, width) for _ in range(CELLS_PER_STAGE))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(features.flatten(1))

    @staticmethod
    def param_count(ops: list[str], in_chans: int, num_classes: int) -> int:
        """The trainable parameters, layer by layer, without building the network."""
        widths = STAGE_WIDTHS
        total = conv_params(in_chans, widths[0], 3, bias=False) + norm_params(widths[0])  # stem
        for stage, width in enumerate(widths):
            if stage:
                total += ReductionBlock.param_count(widths[stage - 1], width)
            total += CELLS_PER_STAGE * sum(op_params(op, width) for op in ops)
        return (total + norm_params(widths[-1])  # lastact's BatchNorm
                + linear_params(widths[-1], num_classes))  # classifier


@register_space
class NB201Space(SearchSpace):
    name = "nb201"
    description = (
        "NAS-Bench-201 cell CNN (Dong & Yang 2020): 6 edges x 5 ops, 3 stages of 5 cells "
        "(16/32/64 channels); the CNN control space"
    )
    default_img_size = 32
    in_chans = 3

    def __init__(self, num_classes: int = 10):
        self.num_classes = positive_int(self.name, "num_classes", num_classes)

    def choices(self) -> dict[str, list]:
        edges = ", ".join(f"{to}<-{src}" for to, src in EDGES)
        return {f"ops (one per edge: {edges})": OPS}

    def sample(self, rng: random.Random) -> Arch:
        return {"ops": [rng.choice(OPS) for _ in EDGES]}

    def validate(self, arch: Arch) -> Arch:
        require_keys(self.name, arch, ("ops",))
        return {"ops": pick_each(self.name, "ops", arch["ops"], OPS, len(EDGES))}

    def check_img_size(self, size: int) -> None:
        """Raise unless both stride-2 reduction blocks halve the grid exactly. At other sizes the
        3x3 stride-2 path rounds up and the 2x2 pooled shortcut down, and the sum only works
        where broadcasting hides the mismatch (e.g. 3 or 6 px)."""
        require_img_size(self.name, size, minimum=4, multiple=4,
                         accepted="a positive multiple of 4 (two stride-2 reductions halve it)")

    def build(self, arch: Arch, img_size: int | None = None) -> nn.Module:
        arch = self.validate(arch)
        return NB201Network(arch["ops"], self.in_chans, self.num_classes)

    def count_params(self, arch: Arch, img_size: int | None = None) -> int:
        """The same at every accepted resolution: the network ends in global average pooling."""
        self.resolution(img_size)
        return NB201Network.param_count(self.validate(arch)["ops"], self.in_chans, self.num_classes)
