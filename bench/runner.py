"""The benchmark runner: architectures x proxies -> cached scores -> rank correlations.

`run_benchmark` computes and returns a RunResult; writing the run directory is a separate step
(bench/report.py `write_run`) that the CLI and `run(..., out=...)` take.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.progress import TextColumn

from bench.cache import CachedScore, ScoreCache, batch_digest, library_versions
from bench.device import device_settings, prepare_device
from bench.ensemble import ENSEMBLE_PREFIX, ensemble_scores, parse_ensemble
from bench.executors import Executor, InProcess, Job, LocalPool, RayTasks, default_threads
from bench.inputs import make_batch
from bench.metrics import SIZE_MEASURES, rank_metrics
from bench.progress import format_duration, progress_bar
from bench.report import prepare_out_dir, write_run
from bench.threads import torch_threads
from proxies.base import Batch, Proxy, all_proxy_names, get_proxy, shared_work
from spaces.base import Arch, SearchSpace, arch_id, canonical_json, get_space
from spaces.errors import BenchError, describe_error, unknown_name

RESULTS_DIR = Path("results")

AGREEMENT_COLUMNS = ["proxy", "reference", "n", "kendall", "kendall_lo", "kendall_hi", "spearman"]
CORRELATION_COLUMNS = ["proxy", "target", "n", "failures", "ties", "kendall", "kendall_lo",
                       "kendall_hi", "spearman", "pearson", "topk_precision", "top1_relative",
                       "partial_params", "partial_params_lo", "partial_params_hi", "partial_flops",
                       "partial_flops_lo", "partial_flops_hi", "seconds_per_arch"]

# With neither a space nor a benchmark, a run uses the embedded benchmark (trained by the project).
DEFAULT_BENCHMARK = "micro-fmnist"
# The space whose training data the shipped real images (bench/data) come from.
SHIPPED_IMAGES_SPACE = "micro"
# With a space and no --n, a run samples this many architectures.
DEFAULT_N = 20
KERNEL_DTYPES = {"float64": torch.float64, "float32": torch.float32}
# Architectures the resolution check tries before it calls a resolution impossible.
RESOLUTION_PROBES = 3
# Networks below this many parameters are scored with one torch thread whatever --threads says:
# on a network that small (every `micro` one, most of nb201) a second intra-op thread gains
# nothing and stalls whenever another process holds a core.
SMALL_NETWORK_PARAMS = 1_000_000
EXECUTORS = ("local", "ray")
# Options that say where and how fast a run is scored, never what: outside the run's digest.
EXECUTION_FIELDS = ("threads", "workers", "executor", "address")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's scores; saved as config.json so a run can be repeated."""

    proxies: tuple[str, ...] = ("ntk", "vintk")
    space: str | None = None
    benchmark: str | None = None
    target: str | None = None
    n: int | None = None
    seed: int = 0
    # The weights' and the input batch's own seeds (None: the run seed, which always draws the
    # architectures), so that a proxy's stability under either can be measured alone.
    weight_seed: int | None = None
    input_seed: int | None = None
    batch_size: int = 32
    img_size: int | None = None
    inputs: str = "auto"
    data_dir: str | None = None
    device: str = "auto"
    kernel_dtype: str = "float64"
    retry_failures: bool = False
    out: str | None = None
    cache: str | None = None
    # torch threads per worker (None: the cores shared out among the workers, 1 per Ray task),
    # worker processes, and where to score (this machine, or Ray at `address`).
    threads: int | None = None
    workers: int = 1
    executor: str = "local"
    address: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "proxies", expand_all(self.proxies))
        if not self.proxies:
            raise BenchError("no proxies given; see `bench proxies` for the names")
        for name, value in (("n", self.n), ("batch_size", self.batch_size),
                            ("img_size", self.img_size), ("threads", self.threads),
                            ("workers", self.workers)):
            if value is not None and value < 1:
                raise BenchError(f"--{name.replace('_', '-')} must be a positive integer, not {value}")
        if self.benchmark and self.space:
            raise BenchError("give --space or --benchmark, not both: a benchmark fixes its space")
        if self.target and not self.benchmark:
            raise BenchError("--target names a column of a benchmark; give --benchmark too")
        if self.kernel_dtype not in KERNEL_DTYPES:
            raise BenchError(f"--kernel-dtype must be one of {', '.join(KERNEL_DTYPES)}, "
                             f"not {self.kernel_dtype!r}")
        if self.executor not in EXECUTORS:
            raise BenchError(f"--executor must be one of {', '.join(EXECUTORS)}, "
                             f"not {self.executor!r}")
        if self.executor == "ray" and self.workers != 1:
            raise BenchError("--workers is for --executor local; Ray runs as many tasks at once "
                             "as the cluster has room for")
        if self.address and self.executor != "ray":
            raise BenchError("--address names a Ray cluster; give --executor ray too")

    def resolved_threads(self) -> int:
        """torch threads per worker: --threads, else the cores shared out among the local
        workers, else 1 per Ray task (a task per core)."""
        if self.threads:
            return self.threads
        return 1 if self.executor == "ray" else default_threads(self.workers)

    def resolved_seeds(self) -> dict[str, int]:
        """The seeds of the weights and of the input batch, the run seed where none is given."""
        return {"weight_seed": self.seed if self.weight_seed is None else self.weight_seed,
                "input_seed": self.seed if self.input_seed is None else self.input_seed}

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "proxies": list(self.proxies)}

    @classmethod
    def from_file(cls, path: Path) -> RunConfig:
        """The configuration saved in a run's config.json."""
        try:
            saved = json.loads(Path(path).read_text())["config"]
            return cls(**saved)
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise BenchError(f"cannot read a run configuration from {path}: {err}") from None

    def digest(self) -> str:
        """A short hash of what determines the scores (not where they are written or cached)."""
        scoring = {key: value for key, value in self.to_dict().items()
                   if key not in EXECUTION_FIELDS}
        text = json.dumps({**scoring, "out": None, "cache": None, "retry_failures": None},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def out_dir(self) -> Path:
        """Where the run is written: --out, else results/runs/<time>-<digest>."""
        return Path(self.out) if self.out else RESULTS_DIR / "runs" / (
            time.strftime("%Y%m%d-%H%M%S") + "-" + self.digest())


def expand_all(names) -> tuple[str, ...]:
    """The proxy names with `all` replaced by every registered proxy and each `-name` taken out
    of the rest (`all,-grasp`), so that a saved configuration names exactly what was computed."""
    expanded: list[str] = []
    for name in (name for name in names if not name.startswith("-")):
        for item in (all_proxy_names() if name == "all" else [name]):
            if item not in expanded:
                expanded.append(item)
    for name in (name[1:] for name in names if name.startswith("-")):
        if not expanded:
            raise BenchError(f"-{name} leaves a proxy out, but the list names none to leave out of")
        if name not in expanded:
            raise unknown_name("proxy to leave out", name, expanded)
        expanded.remove(name)
    return tuple(expanded)


@dataclass
class RunResult:
    """What a run produced: long-format scores and one row per proxy of correlations; `out_dir`
    is set once the run is written."""

    config: RunConfig
    scores: pd.DataFrame
    correlations: pd.DataFrame
    info: dict = field(default_factory=dict)
    agreement: pd.DataFrame | None = None
    out_dir: Path | None = None


@dataclass(frozen=True)
class Candidates:
    """The architectures of a run, their space, and the ground truth if any."""

    space: SearchSpace
    space_kwargs: dict
    archs: list[Arch]
    target_name: str | None
    targets: list[float] | None
    extras: dict
    # Published scores of this project's proxies on the same architectures and the target's data
    # set: proxy name -> (benchmark column, one value per architecture).
    references: dict[str, tuple[str, list]] = field(default_factory=dict)


def run(**options) -> RunResult:
    """Python entry point: `run(proxies=["ntk", "params"], space="autoprox-t", n=20)` computes;
    with `out=DIR` it also writes the run directory (checked writable before any scoring)."""
    config = RunConfig(**options)
    if config.out:
        prepare_out_dir(config.out_dir())
    result = run_benchmark(config)
    if config.out:
        write_run(result, config.out_dir())
    return result


def run_benchmark(config: RunConfig, console: Console | None = None) -> RunResult:
    """Score every architecture with every proxy (reusing the cache) and correlate. Everything
    a user can get wrong is checked before the first score (`prepare`)."""
    console = console or Console(quiet=True)
    prepared = prepare(config)
    candidates = prepared.candidates
    try:
        with open_executor(config, prepared) as executor:
            started = time.perf_counter()
            scores = pd.DataFrame(score_all(prepared, executor, config.retry_failures, console))
            execution = execution_info(config, executor, time.perf_counter() - started)
        sizes = model_sizes(prepared, scores) if candidates.targets is not None else None
    finally:
        prepared.cache.close()
    if candidates.targets is not None:
        scores["target"] = [candidates.targets[i] for i in scores["arch_index"]]
    for spec in prepared.ensembles:
        scores = pd.concat([scores, ensemble_scores(scores, spec)], ignore_index=True)
    correlations = correlate(scores, candidates.target_name, config.seed, sizes)
    agreement = agree(scores, candidates.references, config.seed)
    info = {**run_info(config, prepared.setting, candidates, prepared.batch.x.device),
            **execution}
    return RunResult(config, scores.drop(columns="arch_index"), correlations, info, agreement)


@dataclass
class PreparedRun:
    """A run whose configuration passed every check: what `score_all` needs."""

    candidates: Candidates
    proxies: list[Proxy]
    ensembles: list[list[str]]
    batch: Batch
    setting: dict
    key_setting: dict
    cache: ScoreCache

    def scorer(self, threads: int) -> ArchitectureScorer:
        """This run's scoring in this process, on its own objects."""
        return ArchitectureScorer(self.candidates.space, {p.name: p for p in self.proxies},
                                  self.batch, self.setting["img_size"],
                                  self.setting["weight_seed"], threads)

    def setup(self, threads: int) -> ScoringSetup:
        """This run's scoring for another process or node to rebuild."""
        return ScoringSetup(self.candidates.space.name, self.candidates.space_kwargs,
                            tuple(proxy.config() for proxy in self.proxies),
                            str(self.proxies[0].kernel_dtype).removeprefix("torch."),
                            self.setting["img_size"], self.setting["weight_seed"],
                            self.batch.to("cpu"), self.batch.x.device.type, threads,
                            self.key_setting["versions"])


def prepare(config: RunConfig) -> PreparedRun:
    """Resolve and check the configuration: architectures, proxies against the batch size, the
    resolution against the space, the input images, the cache. Raises BenchError, having
    scored and cached nothing."""
    candidates = load_candidates(config)
    space = candidates.space
    device = pick_device(config.device)
    img_size = config.img_size or space.default_img_size
    components, ensembles = split_proxies(config.proxies)
    proxies = [get_proxy(name, KERNEL_DTYPES[config.kernel_dtype]) for name in components]
    for proxy in proxies:
        problem = proxy.batch_problem(config.batch_size)
        if problem:
            raise BenchError(f"--batch-size {config.batch_size}: {problem}")
    check_resolution(space, candidates.archs, img_size)
    input_kind = pick_input_kind(config, space)
    seeds = config.resolved_seeds()
    batch = make_batch(input_kind, config.batch_size, img_size, space.in_chans, space.num_classes,
                       seeds["input_seed"], config.data_dir)
    setting = {"space": space.name, "space_kwargs": candidates.space_kwargs, "inputs": input_kind,
               "data_dir": config.data_dir, "batch_size": config.batch_size, "img_size": img_size,
               "seed": config.seed, **seeds, "device": device.type}
    # The key names the batch by its content (which covers a --data-dir's images), not its path.
    # A weight or input seed enters it only where it differs from the run seed, so that the rows
    # cached before these seeds existed stay valid.
    key_setting = {**{k: v for k, v in setting.items() if k != "data_dir" and k not in seeds},
                   **{k: v for k, v in seeds.items() if v != config.seed},
                   "batch": batch_digest(batch), "versions": library_versions()}
    cache = ScoreCache(config.cache or RESULTS_DIR / "cache.sqlite")
    return PreparedRun(candidates, proxies, ensembles, batch.to(device), setting, key_setting,
                       cache)


def check_resolution(space: SearchSpace, archs: list[Arch], img_size: int) -> None:
    """The space's own rule for `img_size`, then a one-image forward of the run's first
    architectures: a resolution no model of the run can take is the user's error, not N
    failures. One architecture that fails while another runs is that architecture's failure."""
    space.check_img_size(img_size)
    errors = []
    for arch in archs[:RESOLUTION_PROBES]:
        try:  # on the meta device: every shape checked, no weight drawn, no arithmetic
            with torch.no_grad(), torch.device("meta"):
                space.build(arch, img_size=img_size).eval()(
                    torch.zeros(1, space.in_chans, img_size, img_size))
            return
        except BenchError:
            raise
        except Exception as err:
            errors.append(describe_error(err))
    raise BenchError(f"{space.name}: no model runs on {img_size} px images ({errors[0]}); "
                     "choose another --img-size")


def load_candidates(config: RunConfig) -> Candidates:
    """The run's architectures: every one of a benchmark with the target (or a seeded sample of n
    of them), or n architectures sampled from a space."""
    if config.benchmark or not config.space:
        from spaces.benchmarks import load_benchmark

        bench = load_benchmark(config.benchmark or DEFAULT_BENCHMARK)
        target = config.target or bench.provenance.get("default_target")
        if target not in bench.targets():
            raise BenchError(f"benchmark {bench.name} has no ground-truth column {target!r}; "
                             f"its targets: {', '.join(bench.targets())}")
        # Targets of one benchmark can come from datasets with different class counts.
        space_kwargs = dict(bench.provenance.get("space_kwargs") or {})
        classes = bench.provenance.get("columns", {}).get(target, {}).get("num_classes")
        space = bench.search_space()
        if classes and int(classes) != space.num_classes:
            space_kwargs["num_classes"] = int(classes)
            space = get_space(bench.space, **space_kwargs)
        table = bench.table[bench.table[target].notna()]
        if config.n is not None and config.n < len(table):
            table = table.sample(config.n, random_state=config.seed).sort_index()
        archs = [json.loads(text) for text in table["arch"]]
        references = {meaning["proxy"]: (column, table[column].astype(float).tolist())
                      for column, meaning in bench.provenance.get("columns", {}).items()
                      if meaning.get("proxy") and meaning.get("target") == target}
        return Candidates(space, space_kwargs, archs, target, table[target].astype(float).tolist(),
                          {"benchmark": bench.name, **bench.provenance.get("quality", {})},
                          references)
    space = get_space(config.space)
    archs = space.sample_many(config.n or DEFAULT_N, config.seed)
    return Candidates(space, {}, archs, None, None, {})


def pick_device(name: str) -> torch.device:
    """`auto` is cuda when present, else cpu; asking for cuda without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda asked, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise BenchError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


def pick_input_kind(config: RunConfig, space: SearchSpace) -> str:
    """`auto` means real images when a folder is given or the images shipped with the project
    (Fashion-MNIST) are the space's own data, else 1/f noise."""
    if config.inputs != "auto":
        return config.inputs
    return "real" if config.data_dir or space.name == SHIPPED_IMAGES_SPACE else "pink"


def split_proxies(names: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Proxies to compute (ensemble components included, each once) and the ensembles to form."""
    ensembles = [parse_ensemble(name) for name in names if name.startswith(ENSEMBLE_PREFIX)]
    components = [name for name in names if not name.startswith(ENSEMBLE_PREFIX)]
    for members in ensembles:
        components += [member for member in members if member not in components]
    return components, ensembles


def architecture_seed(seed: int, arch: Arch) -> int:
    """The seed for an architecture's weights: fixed by the weight seed and the architecture alone,
    so a score does not depend on which other architectures the run contains or their order."""
    digest = hashlib.sha256(f"{seed}:{canonical_json(arch)}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def score_all(prepared: PreparedRun, executor: Executor, retry_failures: bool,
              console: Console) -> list[dict]:
    """Score each architecture with each proxy: the cache's scores, the missing ones computed by
    `executor` and cached as each architecture arrives; the plan (what is cached, what is left
    and how long it should take) is printed first, then the progress."""
    archs, proxies = prepared.candidates.archs, prepared.proxies
    plan = plan_scores(prepared, archs, retry_failures)
    console.print(plan_summary(prepared, plan, executor.parallelism), highlight=False,
                  soft_wrap=True)
    with progress_bar("[bold]scoring", TextColumn("{task.fields[rate]}"), console=console,
                      transient=True) as progress:
        task = progress.add_task("archs", total=len(archs),
                                 completed=len(archs) - len(plan.jobs), rate="")
        started = time.perf_counter()
        for done, _ in enumerate(complete(prepared, executor, plan), 1):
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=1, rate=f"{rate:.2f} arch/s")
    rows = []
    for index, (arch, results) in enumerate(zip(archs, plan.scores)):
        for proxy, result in zip(proxies, results):
            rows.append({"arch_index": index, "arch_id": arch_id(arch),
                         "arch": canonical_json(arch), "proxy": proxy.name,
                         "score": np.nan if result.score is None else result.score,
                         "seconds": result.seconds, "error": result.error,
                         "note": result.note})
    return rows


@dataclass
class ScorePlan:
    """Each architecture's scores in the run's proxy order: the cache's where it has them, None
    where a job (one per architecture with any score missing) is to compute them."""

    scores: list[list[CachedScore | None]]
    jobs: list[Job]


def score_description(prepared: PreparedRun, arch_text: str, proxy: Proxy) -> dict:
    """What the cache keys a score by: the run's setting, the architecture and the proxy."""
    return {**prepared.key_setting, "arch": arch_text, "proxy": proxy.config()}


def plan_scores(prepared: PreparedRun, archs: list[Arch], retry_failures: bool = False) -> ScorePlan:
    """Look every (architecture, proxy) pair up in the cache; the missing ones, and with
    `retry_failures` the cached failures, become the jobs."""
    scores, jobs = [], []
    for index, arch in enumerate(archs):
        arch_text = canonical_json(arch)
        cached = [prepared.cache.get(score_description(prepared, arch_text, proxy))
                  for proxy in prepared.proxies]
        cached = [None if found and retry_failures and found.error else found for found in cached]
        missing = tuple(proxy.name for proxy, found in zip(prepared.proxies, cached)
                        if found is None)
        if missing:
            jobs.append(Job(index, arch, missing))
        scores.append(cached)
    return ScorePlan(scores, jobs)


def complete(prepared: PreparedRun, executor: Executor, plan: ScorePlan) -> Iterator[Job]:
    """Compute the plan's jobs with `executor`, filling the plan and caching each architecture's
    new scores (all but transient failures) the moment it arrives; yields each job when done."""
    position = {proxy.name: index for index, proxy in enumerate(prepared.proxies)}
    for job, results in executor.run(plan.jobs):
        arch_text = canonical_json(job.arch)
        for name, result in zip(job.proxies, results, strict=True):
            proxy = prepared.proxies[position[name]]
            if not result.transient:
                prepared.cache.put(score_description(prepared, arch_text, proxy), result)
            plan.scores[job.index][position[name]] = result
        yield job


def plan_summary(prepared: PreparedRun, plan: ScorePlan, parallelism: int) -> str:
    """One line before scoring: the pairs cached, the pairs to compute and how long they should
    take at the cache's median seconds per proxy under this setting, where it has timings."""
    total = len(plan.scores) * len(prepared.proxies)
    missing = Counter(name for job in plan.jobs for name in job.proxies)
    line = f"cache: {total - sum(missing.values())} of {total} (architecture, proxy) pairs scored"
    if not missing:
        return line + "; nothing to compute"
    line += f"; {sum(missing.values())} to compute on {len(plan.jobs)} architectures"
    medians = {proxy.name: statistics.median(seconds) for proxy in prepared.proxies
               if proxy.name in missing and (seconds := cached_seconds(prepared, proxy))}
    if medians:
        seconds = sum(missing[name] * median for name, median in medians.items()) / parallelism
        each = ", ".join(f"{name} {median:.3g} s" for name, median in medians.items())
        line += (f", about {format_duration(seconds)}"
                 f"{f' over {parallelism} workers' if parallelism > 1 else ''} at the cache's "
                 f"median seconds per score under this setting ({each})")
    unknown = [name for name in missing if name not in medians]
    if unknown:
        line += f"; no timing yet of {', '.join(unknown)} under this setting"
    return line


def cached_seconds(prepared: PreparedRun, proxy: Proxy) -> list[float]:
    """The seconds of every cached score of `proxy` under this run's setting, on any
    architecture. Rows are preselected by the text of the proxy and the batch digest in their
    stored description, then compared whole, the architecture aside."""
    wanted = json.loads(json.dumps({**prepared.key_setting, "proxy": proxy.config()}))
    fragments = [json.dumps({key: wanted[key]}, sort_keys=True)[1:-1] for key in ("proxy", "batch")]
    rows = prepared.cache.db.execute(
        "SELECT description, seconds FROM scores WHERE instr(description, ?) AND "
        "instr(description, ?)", fragments)
    return [seconds for text, seconds in rows
            if {k: v for k, v in json.loads(text).items() if k != "arch"} == wanted]


def open_executor(config: RunConfig, prepared: PreparedRun) -> Executor:
    """Where the run's missing scores are computed: this process (one worker), local worker
    processes (--workers), or Ray tasks (--executor ray)."""
    threads = config.resolved_threads()
    if config.executor == "ray":
        return RayTasks(prepared.setup(threads), config.address, threads)
    if config.workers > 1:
        return LocalPool(prepared.setup(threads), config.workers)
    return InProcess(prepared.scorer(threads))


def execution_info(config: RunConfig, executor: Executor, seconds: float) -> dict:
    """What config.json records of how the scores were computed (never what they are), with
    the wall-clock `seconds` the scoring took."""
    return {"threads": config.resolved_threads(),
            "execution": {"executor": config.executor, "address": config.address,
                          "parallel_jobs": executor.parallelism,
                          "threads_per_job": config.resolved_threads(),
                          "one_thread_below_params": SMALL_NETWORK_PARAMS,
                          "scoring_wall_seconds": seconds}}


@dataclass(frozen=True)
class ScoringSetup:
    """A run's scoring by name and by value, picklable: a worker process or a Ray node rebuilds
    it (`scorer`) and computes exactly what this process would."""

    space: str
    space_kwargs: dict
    proxies: tuple[dict, ...]  # each proxy's config(), as this process has it
    kernel_dtype: str
    img_size: int
    weight_seed: int
    batch: Batch  # on the CPU; the worker moves it to `device`
    device: str
    threads: int
    versions: dict

    def scorer(self) -> ArchitectureScorer:
        """The scoring rebuilt where it runs. A worker whose torch or timm (major.minor) or
        proxy code differ from this run's is refused: its scores would be cached under the
        run's key."""
        where = f"worker on {platform.node()}"
        if library_versions() != self.versions:
            raise BenchError(f"{where} has torch/timm {library_versions()}, the run "
                             f"{self.versions}: install the same versions on every node")
        try:
            space = get_space(self.space, **self.space_kwargs)
            proxies = [get_proxy(config["name"], KERNEL_DTYPES[self.kernel_dtype])
                       for config in self.proxies]
        except BenchError as err:
            raise BenchError(f"{where}: {err} (a space or proxy registered only in the "
                             "driver's own session cannot run in worker processes)") from None
        for proxy, config in zip(proxies, self.proxies):
            if proxy.config() != config:
                raise BenchError(f"{where} has proxy {proxy.config()}, the run {config}: "
                                 "install the same version of this package on every node")
        return ArchitectureScorer(space, {proxy.name: proxy for proxy in proxies},
                                  self.batch.to(self.device), self.img_size, self.weight_seed,
                                  self.threads)


@dataclass
class ArchitectureScorer:
    """Scores one architecture with named proxies in this process: the model built once with
    its seeded weights, the proxies sharing work on it (proxies.base.shared_work, counted in the
    seconds of the first that needs it), torch's threads chosen by the network's size."""

    space: SearchSpace
    proxies: dict[str, Proxy]
    batch: Batch
    img_size: int
    weight_seed: int
    threads: int

    def __call__(self, arch: Arch, names: tuple[str, ...]) -> list[CachedScore]:
        """A proxy that raises, or returns a non-finite value, is a failure with its reason; a
        transient one (out of memory, a CUDA error) is marked so and never cached."""
        seed = architecture_seed(self.weight_seed, arch)
        with torch_threads(self.threads_for(arch)), shared_work():
            model = build_model(self.space, arch, self.img_size, seed, self.batch.x.device)
            return [evaluate(self.proxies[name], model, self.batch, seed) for name in names]

    def threads_for(self, arch: Arch) -> int:
        """One thread below SMALL_NETWORK_PARAMS parameters, else the configured count. An
        architecture the space cannot count gets the configured count: building it fails, and
        its failure is recorded."""
        try:
            small = self.space.count_params(arch, self.img_size) < SMALL_NETWORK_PARAMS
        except Exception:
            small = False
        return 1 if small else self.threads



def build_model(space: SearchSpace, arch: Arch, img_size: int, seed: int, device):
    """The untrained model with seeded weights, built on `device` with its reproducibility
    settings (bench/device.py) in force, or the exception that building raised. Drawn on the
    device itself, with no CPU copy: on CPU the same weights as a CPU build, on CUDA other
    ones (CUDA's generator), which the cache key's device kind keeps apart."""
    prepare_device(device)
    torch.manual_seed(seed)
    try:
        with torch.device(device):
            return space.build(arch, img_size=img_size)
    except BenchError:
        raise
    except Exception as err:
        return err


def is_transient(err: BaseException) -> bool:
    """Errors that say nothing about the architecture: out of memory, a CUDA or driver fault."""
    return (isinstance(err, (torch.OutOfMemoryError, MemoryError))
            or (isinstance(err, RuntimeError) and "CUDA" in str(err)))


def evaluate(proxy: Proxy, model, batch: Batch, seed: int) -> CachedScore:
    """Run one proxy, timing it and turning an exception into a recorded failure (transient
    when `is_transient`). A BenchError is the user's input at fault and ends the run."""
    if isinstance(model, Exception):
        return CachedScore(None, 0.0, f"model does not build: {describe_error(model)}",
                           transient=is_transient(model))
    torch.manual_seed(seed)
    start = time.perf_counter()
    transient = False
    try:
        score = proxy(model, batch)
        error = None if math.isfinite(score) else f"non-finite score {score}"
    except BenchError:
        raise
    except Exception as err:
        score, error, transient = None, describe_error(err), is_transient(err)
    if batch.x.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if transient:
        error = f"{error} (transient: not cached, rerun to retry)"
    return CachedScore(score if error is None else None, seconds, error, proxy.note or None,
                       transient)


def model_sizes(prepared: PreparedRun, scores: pd.DataFrame) -> pd.DataFrame:
    """Params and FLOPs of each architecture (indexed by arch_index), for the partial τ: the
    run's own `params` and `flops` scores where it has those proxies, else counted by the space
    at the run's resolution (`count_size`)."""
    wide = scores.pivot(index="arch_index", columns="proxy", values="score")
    archs = prepared.candidates.archs
    return pd.DataFrame({measure: wide[measure] if measure in wide
                         else [count_size(prepared, measure, archs[i]) for i in wide.index]
                         for measure in SIZE_MEASURES}, index=wide.index)


def count_size(prepared: PreparedRun, measure: str, arch: Arch) -> float:
    """`count_params` or `count_flops` of the space at the run's resolution, NaN where the model
    does not build. Counted on the meta device (shapes only: the same counts, no weights drawn)
    and kept in the score cache, since a FLOP count runs a forward pass."""
    space, img_size = prepared.candidates.space, prepared.setting["img_size"]
    description = {"size": measure, "space": space.name,
                   "space_kwargs": prepared.candidates.space_kwargs, "img_size": img_size,
                   "arch": canonical_json(arch), "versions": prepared.key_setting["versions"]}
    cached = prepared.cache.get(description)
    if cached is None:
        count = space.count_params if measure == "params" else space.count_flops
        start = time.perf_counter()
        try:
            with torch.device("meta"):
                value, error = float(count(arch, img_size)), None
        except BenchError:
            raise
        except Exception as err:
            value, error = None, describe_error(err)
        cached = CachedScore(value, time.perf_counter() - start, error)
        prepared.cache.put(description, cached)
    return math.nan if cached.score is None else cached.score


def correlate(scores: pd.DataFrame, target_name: str | None, seed: int,
              sizes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per proxy against the ground truth, with its partial τ given each column of
    `sizes` (params, flops: one value per arch_index); without ground truth, every proxy against
    every other."""
    wide = scores.pivot(index="arch_index", columns="proxy", values="score")
    seconds = scores.groupby("proxy", sort=False)["seconds"].median()
    proxies = list(dict.fromkeys(scores["proxy"]))
    rows = []
    if target_name is not None:
        target = scores.drop_duplicates("arch_index").set_index("arch_index")["target"]
        pairs = [(proxy, target_name, target) for proxy in proxies]
    else:
        pairs = [(a, b, wide[b]) for a in proxies for b in proxies if a != b]
    given = ({measure: sizes[measure].loc[wide.index].to_numpy() for measure in sizes}
             if sizes is not None and target_name is not None else None)
    for proxy, against, reference in pairs:
        metrics = rank_metrics(wide[proxy].to_numpy(), reference.loc[wide.index].to_numpy(),
                               seed=seed, given=given)
        rows.append({"proxy": proxy, "target": against, **metrics,
                     "seconds_per_arch": float(seconds[proxy])})
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def agree(scores: pd.DataFrame, references: dict[str, tuple[str, list]], seed: int) -> pd.DataFrame:
    """Each proxy against the published score of the same proxy on the same architectures: how
    far this project's implementation and inputs reproduce the public ranking."""
    wide = scores.pivot(index="arch_index", columns="proxy", values="score")
    rows = []
    for proxy, (column, values) in references.items():
        if proxy in wide:
            published = np.asarray(values, dtype=float)[wide.index.to_numpy()]
            metrics = rank_metrics(wide[proxy].to_numpy(), published, seed=seed)
            rows.append({"proxy": proxy, "reference": column,
                         **{key: metrics[key] for key in AGREEMENT_COLUMNS[2:]}})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def run_info(config: RunConfig, setting: dict, candidates: Candidates, device) -> dict:
    """What config.json records beside the configuration: resolved settings and versions."""
    import timm

    return {
        "resolved": setting,
        "target": candidates.target_name,
        "n_architectures": len(candidates.archs),
        "benchmark": candidates.extras,
        "versions": {"torch": torch.__version__, "timm": timm.__version__,
                     "python": platform.python_version(), "numpy": np.__version__},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "device_settings": device_settings(device),
        "threads": torch.get_num_threads(),
    }
