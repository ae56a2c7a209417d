"""What the proxies cost next to training: one training step, every proxy and TE-NAS's naive NTK,
side by side in one process on the same network and batch (issue 3's performance targets).

Each measured call runs `repeats` times, interleaved round by round so that a change in the load of
a shared machine falls on every row alike; the table gives the median, min and max wall-clock
seconds, the median CPU seconds of the process (on a shared CPU machine the steadier figure: it
does not count the time other jobs held the cores) and the peak memory above what was resident
before the call (model, batch and the harness), each also as a ratio to the training step. On
CUDA it adds the median GPU seconds, the time between two CUDA events recorded on the current
stream before and after the call (so it includes the gaps in which the GPU waited for the host),
and its ratio. The network is built on the device with the run's reproducibility settings
(bench/device.py: deterministic algorithms, TF32 off, also for the training step), which
`device_settings` in perf.json records.
The training step is forward, cross-entropy, backward and an AdamW step (the optimizer AutoFormer
and Auto-Prox train with) on a copy of the model, with the optimizer created inside the
measurement, so its peak includes the gradients and AdamW's state. Inputs are 1/f ("pink")
images; timings do not depend on their content.

Peak memory. On CUDA: `torch.cuda.max_memory_allocated` after a reset, minus the memory allocated
before. On Linux CPUs: the process's peak resident set, VmHWM in /proc/self/status, reset before
each call by writing 5 to /proc/self/clear_refs after `malloc_trim(0)` has handed freed heap pages
back to the system; the peak minus the resident set at the reset is what the call added
(tracemalloc does not see torch's allocations). Elsewhere memory is reported as NaN.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

from bench.device import device_settings
from bench.inputs import make_batch
from bench.runner import KERNEL_DTYPES, build_model, expand_all, pick_device
from proxies.base import Batch, get_proxy
from proxies.ntk_kernel import ntk_kernel
from spaces.base import canonical_json, get_space
from spaces.errors import BenchError, describe_error

TRAIN_STEP = "train_step"
INPUT_KIND = "pink"
NAIVE_NTK = "ntk_naive"
COLUMNS = ["proxy", "method", "seconds_median", "seconds_min", "seconds_max", "cpu_seconds_median",
           "peak_mem_mb", "ratio_to_train_step", "cpu_ratio_to_train_step",
           "mem_ratio_to_train_step", "repeats", "error"]
# Added where the device is CUDA.
GPU_COLUMNS = ["gpu_seconds_median", "gpu_ratio_to_train_step"]
BASES = {"wall": "seconds_median", "cpu": "cpu_seconds_median", "gpu": "gpu_seconds_median"}


@dataclass(frozen=True)
class PerfConfig:
    """One `bench perf` measurement: the network (space, seeded architecture and weights), the
    batch, the device, the proxies (all registered ones when empty) and the repeats."""

    space: str = "autoprox-t"
    batch_size: int = 64
    img_size: int | None = None
    device: str = "auto"
    seed: int = 0
    proxies: tuple[str, ...] = ()
    repeats: int = 3
    naive_repeats: int = 1
    kernel_dtype: str = "float64"

    def __post_init__(self):
        if self.batch_size < 2:
            raise BenchError(f"batch size must be at least 2 for an NTK, got {self.batch_size}")
        if self.repeats < 1 or self.naive_repeats < 0:
            raise BenchError("repeats must be at least 1 and naive repeats at least 0")
        if self.kernel_dtype not in KERNEL_DTYPES:
            raise BenchError(f"kernel dtype must be one of {', '.join(KERNEL_DTYPES)}")


@dataclass
class Measurement:
    """The wall-clock and CPU seconds, the peak memory (MiB) and, on CUDA, the GPU seconds of
    every repeat of one call."""

    name: str
    method: str = ""
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    error: str = ""
    gpu_seconds: list[float] = field(default_factory=list)


def measure_perf(config: PerfConfig, console: Console | None = None) -> tuple[pd.DataFrame, dict]:
    """Time and measure the training step, the proxies and the naive NTK; returns the table (one
    row per measured call) and a description of the setting (device, network, versions)."""
    console = console or Console()
    device = pick_device(config.device)
    space = get_space(config.space)
    img_size = config.img_size or space.default_img_size
    arch = space.sample_many(1, config.seed)[0]
    model = build_model(space, arch, img_size, config.seed, device)
    if isinstance(model, Exception):
        raise BenchError(f"{config.space}: the seed-{config.seed} network does not build: "
                         f"{describe_error(model)}")
    batch = make_batch(INPUT_KIND, config.batch_size, img_size, space.in_chans,
                       space.num_classes, config.seed).to(device)
    names = expand_all(config.proxies or ("all",))
    dtype = KERNEL_DTYPES[config.kernel_dtype]
    proxies = {name: get_proxy(name, dtype) for name in names}
    meter = PeakMemory(device)

    student = copy.deepcopy(model)
    calls: dict[str, Callable[[], object]] = {TRAIN_STEP: lambda: train_step(student, batch)}
    calls.update({name: (lambda p=p: p(model, batch)) for name, p in proxies.items()})
    # In the kernel proxies' dtype, the conversion timed as theirs is.
    calls[NAIVE_NTK] = lambda: ntk_kernel(copy.deepcopy(model).to(dtype).train(),
                                          batch.x.to(dtype), "naive")
    results = {name: Measurement(name) for name in calls}
    results[TRAIN_STEP].method = "AdamW"
    results[NAIVE_NTK].method = "naive"

    train_step(student, batch)  # warm-up: thread pools, allocator, lazily built kernels
    for round_index in range(max(config.repeats, config.naive_repeats)):
        for name, call in calls.items():
            wanted = config.naive_repeats if name == NAIVE_NTK else config.repeats
            if round_index >= wanted or results[name].error:
                continue
            console.log(f"round {round_index + 1}: {name}")
            measure(call, results[name], meter, device)
    for name, proxy in proxies.items():
        results[name].method = getattr(proxy, "kernel_method", "")

    setting = {
        "config": asdict(config), "device": describe_device(device), "img_size": img_size,
        "arch": json.loads(canonical_json(arch)),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "memory_method": meter.method, "device_settings": device_settings(device),
    }
    return perf_table(list(results.values())), setting


def train_step(model: nn.Module, batch: Batch) -> None:
    """Forward, cross-entropy, backward and one AdamW step. The optimizer is created here and the
    gradients dropped at the end, so the step's peak includes both."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters())
    F.cross_entropy(model(batch.x), batch.y).backward()
    optimizer.step()
    model.zero_grad(set_to_none=True)


def measure(call: Callable[[], object], result: Measurement, meter: PeakMemory,
            device: torch.device) -> None:
    """One repeat of `call` into `result` (its first exception ends the call's repeats)."""
    meter.reset()
    synchronize(device)
    events = GPUEvents(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        call()
    except Exception as err:
        result.error = f"{type(err).__name__}: {err}"
        return
    events.stop()
    synchronize(device)
    result.seconds.append(time.perf_counter() - start)
    result.cpu_seconds.append(time.process_time() - cpu_start)
    result.peak_mb.append(meter.peak_mb())
    if events.start is not None:
        result.gpu_seconds.append(events.seconds())


class GPUEvents:
    """A pair of CUDA events around a call on the current stream (nothing off CUDA); `seconds`
    after the device is synchronised."""

    def __init__(self, device: torch.device):
        self.start = self.end = None
        if device.type == "cuda":
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.start.record()

    def stop(self) -> None:
        if self.end is not None:
            self.end.record()

    def seconds(self) -> float:
        return self.start.elapsed_time(self.end) / 1000  # elapsed_time is in milliseconds


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory a call adds above what was resident when `reset` ran (module docstring)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.libc = load_libc()
        status = Path("/proc/self/status")
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated"
        elif self.libc is not None and status.exists() and "VmHWM" in status.read_text():
            self.method = "VmHWM after malloc_trim and clear_refs"
        else:
            self.method = "unavailable"
        self.baseline = 0.0

    def reset(self) -> None:
        gc.collect()
        if self.method.startswith("torch.cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device) / 2**20
        elif self.method.startswith("VmHWM"):
            self.libc.malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            self.baseline = proc_status_mb("VmRSS")

    def peak_mb(self) -> float:
        if self.method.startswith("torch.cuda"):
            return torch.cuda.max_memory_allocated(self.device) / 2**20 - self.baseline
        if self.method.startswith("VmHWM"):
            return proc_status_mb("VmHWM") - self.baseline
        return float("nan")


def load_libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def proc_status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in
             (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if line.startswith("model name")]
    return f"cpu {names[0] if names else platform.processor()} ({torch.get_num_threads()} threads)"


def perf_table(results: list[Measurement]) -> pd.DataFrame:
    """One row per call (COLUMNS, and GPU_COLUMNS where any call was timed on a GPU)."""
    table = pd.DataFrame([{
        "proxy": r.name, "method": r.method, "seconds_median": median(r.seconds),
        "seconds_min": min(r.seconds, default=math.nan),
        "seconds_max": max(r.seconds, default=math.nan),
        "cpu_seconds_median": median(r.cpu_seconds),
        "peak_mem_mb": max(r.peak_mb, default=math.nan), "repeats": len(r.seconds),
        "error": r.error, "gpu_seconds_median": median(r.gpu_seconds),
    } for r in results])
    train = table.set_index("proxy").loc[TRAIN_STEP]
    for ratio, column in (("ratio_to_train_step", "seconds_median"),
                          ("cpu_ratio_to_train_step", "cpu_seconds_median"),
                          ("mem_ratio_to_train_step", "peak_mem_mb"),
                          ("gpu_ratio_to_train_step", "gpu_seconds_median")):
        table[ratio] = table[column] / train[column]
    timed_on_gpu = any(r.gpu_seconds for r in results)
    return table[COLUMNS + (GPU_COLUMNS if timed_on_gpu else [])]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def target_checks(table: pd.DataFrame) -> list[dict]:
    """Issue 3's targets, each with the measured value and whether it is met (None: not measured);
    the time targets once on wall-clock and once on CPU seconds."""
    rows = table.set_index("proxy")

    def value(name: str, column: str) -> float:
        return float(rows.loc[name, column]) if name in rows.index else float("nan")

    def ratio(numerator: float, denominator: float) -> float:
        # A toy network's step can add no measurable memory: a ratio to 0 is not measured.
        return numerator / denominator if denominator else float("nan")

    checks = [("ntk peak memory <= 1.5 x training step", "memory",
               ratio(value("ntk", "peak_mem_mb"), value(TRAIN_STEP, "peak_mem_mb")), 1.5, "<=")]
    for basis, column in ((b, c) for b, c in BASES.items() if c in table):
        ntk = value("ntk", column)
        checks += [
            ("ntk time <= 3 x training step", basis, ratio(ntk, value(TRAIN_STEP, column)), 3.0,
             "<="),
            ("naive NTK time >= 5 x ntk", basis, ratio(value(NAIVE_NTK, column), ntk), 5.0, ">="),
            ("vintk time <= 2.5 x ntk", basis, ratio(value("vintk", column), ntk), 2.5, "<="),
        ]
    return [{"target": text, "basis": basis, "measured": measured,
             "met": None if math.isnan(measured)
             else (measured <= bound if sense == "<=" else measured >= bound)}
            for text, basis, measured, bound, sense in checks]


def write_perf(table: pd.DataFrame, setting: dict, out_dir: Path) -> None:
    """perf.csv (the table) and perf.json (the setting and the target checks) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "perf.csv", index=False)
    report = {**setting, "targets": target_checks(table)}
    (out_dir / "perf.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def print_perf(table: pd.DataFrame, setting: dict, console: Console) -> None:
    title = (f"{setting['config']['space']} ({setting['params']:,} params), "
             f"{setting['img_size']} px, batch {setting['config']['batch_size']}, "
             f"{setting['device']}")
    gpu = "gpu_seconds_median" in table
    grid = Table(title=title)
    for column in ("proxy", "method", "median s", "min s", "max s", "cpu s",
                   *(("gpu s",) if gpu else ()), "peak MiB", "x train time", "x train cpu",
                   *(("x train gpu",) if gpu else ()), "x train mem", "error"):
        grid.add_column(column, overflow="fold")
    for row in table.itertuples():
        gpu_time = (f"{row.gpu_seconds_median:.3f}",) if gpu else ()
        gpu_ratio = (f"{row.gpu_ratio_to_train_step:.2f}",) if gpu else ()
        grid.add_row(row.proxy, row.method, f"{row.seconds_median:.2f}", f"{row.seconds_min:.2f}",
                     f"{row.seconds_max:.2f}", f"{row.cpu_seconds_median:.2f}", *gpu_time,
                     f"{row.peak_mem_mb:.0f}", f"{row.ratio_to_train_step:.2f}",
                     f"{row.cpu_ratio_to_train_step:.2f}", *gpu_ratio,
                     f"{row.mem_ratio_to_train_step:.2f}", row.error)
    console.print(grid)
    for check in target_checks(table):
        verdict = {True: "met", False: "MISSED", None: "not measured"}[check["met"]]
        console.print(f"{check['target']} ({check['basis']}): {check['measured']:.2f} {verdict}")
