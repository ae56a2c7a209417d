"""Proxy-guided architecture search under parameter and FLOP constraints, and what it costs.

Two strategies: random sampling (TF-TAS, Zhou et al. CVPR 2022: draw the budget's candidates under
the constraints, keep the best-scored) and evolution (AutoFormer, Chen et al. ICCV 2021: a
population, the top-scored as parents, half the next generation by crossover and half by
mutation). Every score goes through the runner's prepared run and cache, with the scoring seed
fixed, so K searches of different strategy seeds (search i draws with seed + i) share their
scores. On a benchmark the search runs over its architectures and is judged by their ground
truth, next to a random pick and to the same search driven by `params`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from bench.ensemble import ENSEMBLE_PREFIX
from bench.executors import Executor
from bench.fashion_mnist import load_split
from bench.groundtruth import Recipe, normalise, train_and_evaluate, train_subset
from bench.progress import progress_bar
from bench.report import prepare_out_dir
from bench.runner import (
    DEFAULT_BENCHMARK,
    EXECUTION_FIELDS,
    RESULTS_DIR,
    PreparedRun,
    RunConfig,
    complete,
    count_size,
    execution_info,
    open_executor,
    plan_scores,
    prepare,
    run_info,
)
from spaces.base import Arch, SearchSpace, arch_id
from spaces.benchmarks import load_benchmark
from spaces.errors import BenchError

STRATEGIES = ("random", "evolution")
# The evolution options and their defaults: AutoFormer's population of 50 with 10 parents and
# mutation probability 0.2, scaled to a budget of 50 (five generations of 10).
EVOLUTION_DEFAULTS = {"population": 10, "parents": 5, "generations": None, "mutation_prob": 0.2}
# Samples a space is asked for before a search calls the constraints unsatisfiable there.
DRAWS = 1000
# Proposals for one slot of a generation before the slot is filled by a random draw.
CHILD_TRIES = 20
# Published costs of training-based search, in GPU-hours: AutoFormer's supernet training (about
# 24 GPU-days) and TF-TAS's whole search (under 0.5 GPU-days).
PUBLISHED_GPU_HOURS = {"AutoFormer supernet training": 24 * 24.0, "TF-TAS search": 0.5 * 24}
CONSTRAINT_PATTERN = re.compile(r"\s*(params|flops)\s*(<=|>=)\s*([^\s]+)\s*")
# --train: the training seed of the embedded benchmark's seed-0 column, and its thread count.
TRAIN_SEED = 0
TRAIN_THREADS = 1


@dataclass(frozen=True)
class Constraint:
    """A bound on the parameters or the forward FLOPs of one image at the run's resolution."""

    quantity: str
    bound: str
    limit: float

    def __str__(self) -> str:
        return f"{self.quantity}{self.bound}{self.limit:g}"

    def holds(self, value: float) -> bool:
        """NaN (a model that does not build) satisfies no bound."""
        return value <= self.limit if self.bound == "<=" else value >= self.limit


def parse_constraint(text: str) -> Constraint:
    """`params<=6e6`, `flops>=1e8`, ...; anything else is a BenchError saying how to write one."""
    match = CONSTRAINT_PATTERN.fullmatch(text)
    limit = float_or_none(match.group(3)) if match else None
    if limit is None or not math.isfinite(limit) or limit < 0:
        raise BenchError(f"--constraint {text!r}: write params<=N, params>=N, flops<=N or "
                         "flops>=N with N a non-negative number, e.g. params<=6e6")
    return Constraint(match.group(1), match.group(2), limit)


def float_or_none(text: str) -> float | None:
    """`text` as a number, or None when it is none."""
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class SearchConfig:
    """Every option of a search; saved in search.json. The evolution options are None with
    `random` and filled with EVOLUTION_DEFAULTS with `evolution`."""

    proxy: str
    space: str | None = None
    benchmark: str | None = None
    target: str | None = None
    strategy: str = "random"
    budget: int = 50
    constraints: tuple[str, ...] = ()
    seeds: int = 5
    seed: int = 0
    population: int | None = None
    parents: int | None = None
    generations: int | None = None
    mutation_prob: float | None = None
    train: bool = False
    train_data_dir: str | None = None
    batch_size: int = 32
    img_size: int | None = None
    inputs: str = "auto"
    data_dir: str | None = None
    device: str = "auto"
    kernel_dtype: str = "float64"
    cache: str | None = None
    out: str | None = None
    threads: int | None = None
    workers: int = 1
    executor: str = "local"
    address: str | None = None

    def __post_init__(self):
        if self.proxy == "all" or self.proxy.startswith(ENSEMBLE_PREFIX):
            raise BenchError(f"--proxy {self.proxy}: a search is driven by one registered proxy "
                             "(an ensemble ranks a whole set, not one candidate)")
        if self.strategy not in STRATEGIES:
            raise BenchError(f"--strategy must be one of {', '.join(STRATEGIES)}, "
                             f"not {self.strategy!r}")
        for name in ("budget", "seeds"):
            positive(name, getattr(self, name))
        object.__setattr__(self, "constraints",
                           tuple(str(parse_constraint(text)) for text in self.constraints))
        self.resolve_evolution_options()
        if not self.space and not self.benchmark:
            object.__setattr__(self, "benchmark", DEFAULT_BENCHMARK)
        if self.train and self.space != "micro":
            raise BenchError("--train trains the found architecture on Fashion-MNIST with the "
                             "embedded benchmark's recipe: it needs --space micro")
        self.run_config()  # the scoring options are checked by the runner's own rules

    def resolve_evolution_options(self) -> None:
        """Refuse the evolution options with `random`; fill in and check them with `evolution`."""
        given = [name for name in EVOLUTION_DEFAULTS if getattr(self, name) is not None]
        if self.strategy == "random":
            if given:
                raise BenchError(f"--{given[0].replace('_', '-')} is an option of "
                                 "--strategy evolution")
            return
        for name, default in EVOLUTION_DEFAULTS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        positive("population", self.population, minimum=2)
        positive("parents", self.parents)
        if self.parents > self.population:
            raise BenchError(f"--parents {self.parents} exceeds --population {self.population}")
        if self.generations is not None:
            positive("generations", self.generations)
        if not 0 <= self.mutation_prob <= 1:
            raise BenchError(f"--mutation-prob must lie in [0, 1], not {self.mutation_prob}")

    def run_config(self) -> RunConfig:
        """The scoring of every candidate: this proxy, and `params` for the baseline search on a
        benchmark, with the scoring seed fixed at --seed."""
        proxies = (self.proxy, "params") if self.benchmark else (self.proxy,)
        return RunConfig(proxies=proxies, space=self.space, benchmark=self.benchmark,
                         target=self.target, seed=self.seed, batch_size=self.batch_size,
                         img_size=self.img_size, inputs=self.inputs, data_dir=self.data_dir,
                         device=self.device, kernel_dtype=self.kernel_dtype, cache=self.cache,
                         threads=self.threads, workers=self.workers, executor=self.executor,
                         address=self.address)

    def strategy_seeds(self) -> list[int]:
        """The strategy's RNG seed of each search: seed, seed + 1, ..."""
        return [self.seed + i for i in range(self.seeds)]

    def to_dict(self) -> dict:
        """The options as search.json's `config` records them."""
        return {**dataclasses.asdict(self), "constraints": list(self.constraints)}

    def out_dir(self) -> Path:
        """--out, else results/searches/<time>-<hash of the options that change the result>."""
        if self.out:
            return Path(self.out)
        scoring = {key: value for key, value in self.to_dict().items()
                   if key not in EXECUTION_FIELDS}
        text = json.dumps({**scoring, "out": None, "cache": None}, sort_keys=True)
        return RESULTS_DIR / "searches" / (time.strftime("%Y%m%d-%H%M%S") + "-"
                                           + hashlib.sha256(text.encode()).hexdigest()[:8])


def positive(name: str, value: int, minimum: int = 1) -> None:
    """Raise unless the option `name` is an integer of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchError(f"--{name.replace('_', '-')} must be an integer of at least {minimum}, "
                         f"not {value}")


class SpaceDomain:
    """Candidates from a space's sampler; a child stands as it is when it is new and satisfies
    the constraints (checked before it is scored). `describe` completes "no architecture ..."."""

    def __init__(self, space: SearchSpace, fits: Callable[[Arch], bool], where: str):
        self.space, self.fits = space, fits
        self.describe = f"of {space.name} satisfies {where} in {DRAWS} samples"

    def draw(self, rng: random.Random, seen: set[str]) -> Arch | None:
        """A new sample that satisfies the constraints; None after DRAWS samples without one."""
        for _ in range(DRAWS):
            arch = self.space.validate(self.space.sample(rng))
            if arch_id(arch) not in seen and self.fits(arch):
                return arch
        return None

    def place(self, child: Arch, rng: random.Random, seen: set[str]) -> Arch | None:
        """The child itself, or None when it was seen or violates a constraint."""
        return child if arch_id(child) not in seen and self.fits(child) else None


class PoolDomain:
    """A benchmark's architectures that satisfy the constraints. A child of evolution is replaced
    by the nearest pool architecture not evaluated yet (itself when it is one): fewest differing
    choices, a per-layer list compared entry by entry (a layer one lacks is one difference), ties
    broken with the search's RNG."""

    def __init__(self, space: SearchSpace, pool: list[Arch], describe: str):
        self.space, self.pool, self.describe = space, pool, describe
        self.ids = [arch_id(arch) for arch in pool]
        self.genes = [genes(arch) for arch in pool]

    def draw(self, rng: random.Random, seen: set[str]) -> Arch | None:
        """A pool architecture not seen yet, uniformly; None when every one was."""
        unseen = [arch for arch, key in zip(self.pool, self.ids) if key not in seen]
        return rng.choice(unseen) if unseen else None

    def place(self, child: Arch, rng: random.Random, seen: set[str]) -> Arch | None:
        """The nearest pool architecture not seen yet; None when every one was."""
        child_genes = genes(child)
        distances = [(gene_distance(child_genes, other), index)
                     for index, (other, key) in enumerate(zip(self.genes, self.ids))
                     if key not in seen]
        if not distances:
            return None
        nearest = min(distance for distance, _ in distances)
        return self.pool[rng.choice([index for distance, index in distances
                                     if distance == nearest])]


Domain = SpaceDomain | PoolDomain


def genes(arch: Arch) -> dict:
    """The architecture's choices, one per scalar field and one per entry of a list field."""
    flat = {}
    for key, value in arch.items():
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            flat[(key, index)] = item
    return flat


def gene_distance(a: dict, b: dict) -> int:
    """How many choices differ; a choice only one of them has counts as one."""
    return sum(a.get(key) != b.get(key) for key in a.keys() | b.keys())


def draw_distinct(domain: Domain, rng: random.Random, n: int, seen: set[str]) -> list[Arch]:
    """Up to `n` new candidates drawn by the domain (fewer where it runs out), marked seen."""
    archs = []
    while len(archs) < n and (arch := domain.draw(rng, seen)) is not None:
        seen.add(arch_id(arch))
        archs.append(arch)
    return archs


def random_search(domain: Domain, score: Callable, config: SearchConfig,
                  rng: random.Random) -> list[dict]:
    """TF-TAS's protocol: the budget's candidates drawn uniformly under the constraints, all
    drawn before the first is scored (and scored together)."""
    return score(first_candidates(domain, rng, config.budget, set()))


def first_candidates(domain: Domain, rng: random.Random, n: int, seen: set[str]) -> list[Arch]:
    """The first draw of a search; none at all means the constraints exclude everything."""
    archs = draw_distinct(domain, rng, n, seen)
    if not archs:
        raise BenchError(f"no architecture {domain.describe}")
    return archs


def evolution_search(domain: Domain, score: Callable, config: SearchConfig,
                     rng: random.Random) -> list[dict]:
    """AutoFormer's evolutionary search: a random population, then generations whose parents are
    the best-scored candidates so far, until the budget (or --generations) is spent; each
    generation is scored together."""
    seen: set[str] = set()
    population = first_candidates(domain, rng, min(config.population, config.budget), seen)
    evaluated: list[dict] = []
    generation = 0
    while population:
        evaluated += score(population)
        generation += 1
        left = config.budget - len(evaluated)
        if left <= 0 or generation == config.generations:
            break
        parents = [c["arch"] for c in ranked(evaluated)[: config.parents]]
        population = offspring(domain, parents, min(config.population, left), rng, seen,
                               config.mutation_prob)
    return evaluated


STRATEGY_FUNCTIONS = {"random": random_search, "evolution": evolution_search}


def offspring(domain: Domain, parents: list[Arch], n: int, rng: random.Random, seen: set[str],
              mutation_prob: float) -> list[Arch]:
    """`n` new candidates: the first half crossovers of two parents, the rest mutations of one
    (AutoFormer's 25 + 25 of 50), each placed by the domain; a slot that no child fills after
    CHILD_TRIES proposals gets a random draw, as AutoFormer tops up its population."""
    children, space = [], domain.space
    for slot in range(n):
        child = None
        for _ in range(CHILD_TRIES):
            if slot < n // 2:
                proposal = space.crossover(rng.choice(parents), rng.choice(parents), rng)
            else:
                proposal = space.mutate(rng.choice(parents), rng, mutation_prob)
            child = domain.place(proposal, rng, seen)
            if child is not None:
                break
        child = child or domain.draw(rng, seen)
        if child is None:
            break
        seen.add(arch_id(child))
        children.append(child)
    return children


def ranked(candidates: list[dict]) -> list[dict]:
    """Best score first (a failed candidate last); equal scores keep the order of evaluation."""
    return sorted(candidates, key=lambda c: -math.inf if c["score"] is None else c["score"],
                  reverse=True)


@dataclass
class GroundTruth:
    """A benchmark's ground truth: per architecture, of all of them (percentiles) and the best of
    the constraint-satisfying pool (regret)."""

    by_id: dict[str, float]
    all_values: np.ndarray
    best_available: float

    def outcome(self, key: str) -> dict:
        """Ground truth, percentile (% of all the benchmark's architectures at or below it) and
        regret (best available minus found) of one architecture."""
        value = self.by_id[key]
        return {"ground_truth": value,
                "percentile": float(100 * np.mean(self.all_values <= value)),
                "regret": self.best_available - value}


NO_OUTCOME = {"ground_truth": None, "percentile": None, "regret": None}


class Scorer:
    """One proxy's scores of candidates through the prepared run, its cache and the executor
    (the candidates given together run side by side), as candidate records of search.json."""

    def __init__(self, prepared: PreparedRun, executor: Executor, truth: GroundTruth | None,
                 progress, task):
        self.prepared, self.executor, self.truth = prepared, executor, truth
        self.progress, self.task = progress, task
        self.errors: dict[str, str] = {}

    def __call__(self, archs: list[Arch]) -> list[dict]:
        plan = plan_scores(self.prepared, archs)
        self.progress.advance(self.task, len(archs) - len(plan.jobs))
        for _ in complete(self.prepared, self.executor, plan):
            self.progress.advance(self.task)
        return [self.candidate(arch, results[0]) for arch, results in zip(archs, plan.scores)]

    def candidate(self, arch: Arch, result) -> dict:
        key = arch_id(arch)
        if result.error:
            self.errors[key] = result.error
        return {"arch_id": key, "arch": arch, "score": result.score, "seconds": result.seconds,
                "ground_truth": self.truth.by_id[key] if self.truth else None}


def search(**options) -> dict:
    """Python entry point: `search(proxy="ntk", benchmark="micro-fmnist", budget=50)` returns
    search.json's content; with `out=DIR` it also writes it (checked writable first)."""
    config = SearchConfig(**options)
    if config.out:
        prepare_out_dir(config.out_dir())
    result = run_search(config)
    if config.out:
        write_search(result, config.out_dir())
    return result


def run_search(config: SearchConfig, console: Console | None = None) -> dict:
    """Every search of the configuration, its baselines on a benchmark, the cost and, with
    --train, the trained found architectures: search.json's content. Bad input (the options,
    constraints that exclude everything, missing training data) is refused before any score."""
    console = console or Console(quiet=True)
    run_config = config.run_config()
    prepared = prepare(run_config)
    try:
        domain, truth = search_domain(config, prepared)
        training = TrainingCheck.load(config.train_data_dir) if config.train else None
        with open_executor(run_config, prepared) as executor:
            started = time.perf_counter()
            searches, params_outcomes = run_strategies(config, prepared, executor, domain, truth,
                                                       console)
            execution = execution_info(run_config, executor, time.perf_counter() - started)
    finally:
        prepared.cache.close()
    info = {**run_info(run_config, prepared.setting, prepared.candidates,
                       prepared.batch.x.device), **execution}
    return {
        "kind": "search",
        "proxy": config.proxy, "strategy": config.strategy, "space": domain.space.name,
        "benchmark": prepared.candidates.extras.get("benchmark"),
        "target": prepared.candidates.target_name,
        "budget": config.budget, "constraints": list(config.constraints),
        "seeds": config.strategy_seeds(),
        "config": config.to_dict(),
        "setting": {**{key: info[key] for key in ("resolved", "versions", "device", "threads",
                                                  "execution")},
                    "constraints_at": f"{prepared.setting['img_size']} px, the run's resolution"},
        "searches": searches,
        "baselines": baselines(config, domain, truth, params_outcomes) if truth else None,
        "summary": aggregate([s["best"] for s in searches]),
        "best_available": truth.best_available if truth else None,
        "cost": search_cost(searches, info["device"], prepared.batch.x.device.type),
        "trained": training.train(domain.space, [s["best"]["arch"] for s in searches])
        if training else None,
    }


def search_domain(config: SearchConfig,
                  prepared: PreparedRun) -> tuple[Domain, GroundTruth | None]:
    """Where the search draws: the constraint-satisfying architectures of the benchmark (with
    its ground truth), or the space's sampler under the constraints (no ground truth)."""
    candidates, space = prepared.candidates, prepared.candidates.space
    # params first: a closed form, where FLOPs take a forward pass
    constraints = sorted((parse_constraint(text) for text in config.constraints),
                         key=lambda c: c.quantity != "params")

    def fits(arch: Arch) -> bool:
        return all(c.holds(model_size(prepared, c.quantity, arch)) for c in constraints)

    where = " and ".join(config.constraints) or "no constraint"
    if not config.benchmark:
        return SpaceDomain(space, fits, where), None
    pool = [arch for arch in candidates.archs if fits(arch)]
    describe = (f"of benchmark {candidates.extras['benchmark']} with {candidates.target_name} "
                f"satisfies {where}")
    if not pool:
        raise BenchError(f"no architecture {describe}")
    by_id = dict(zip((arch_id(a) for a in candidates.archs), candidates.targets))
    truth = GroundTruth(by_id, np.asarray(candidates.targets, dtype=float),
                        max(by_id[arch_id(a)] for a in pool))
    return PoolDomain(space, pool, describe), truth


def run_strategies(config: SearchConfig, prepared: PreparedRun, executor: Executor,
                   domain: Domain, truth: GroundTruth | None,
                   console: Console) -> tuple[list[dict], list[dict]]:
    """One search per strategy seed, and on a benchmark the same search driven by `params`
    (same strategy, constraints, budget and seed): the searches and the params outcomes."""
    strategy = STRATEGY_FUNCTIONS[config.strategy]
    runs = {proxy.name: dataclasses.replace(prepared, proxies=[proxy])
            for proxy in prepared.proxies}
    params_run = [runs["params"]] if truth else []
    searches, params_outcomes = [], []
    total = config.budget * config.seeds * (1 + len(params_run))
    with progress_bar("[bold]searching", console=console, transient=True) as progress:
        task = progress.add_task("candidates", total=total)
        score = Scorer(runs[config.proxy], executor, truth, progress, task)
        for seed in config.strategy_seeds():
            found = strategy(domain, score, config, random.Random(seed))
            searches.append({"seed": seed, "best": best_of(found, prepared, score.errors, truth),
                             "candidates": found})
            if params_run:
                params_score = Scorer(params_run[0], executor, truth, progress, task)
                pick = best_of(strategy(domain, params_score, config, random.Random(seed)),
                               prepared, params_score.errors, truth)
                params_outcomes.append({"seed": seed, "arch_id": pick["arch_id"],
                                        **truth.outcome(pick["arch_id"])})
    return searches, params_outcomes


def baselines(config: SearchConfig, domain: PoolDomain, truth: GroundTruth,
              params_outcomes: list[dict]) -> dict:
    """A random pick from the constraint-satisfying pool (its own RNG per seed, seeded with
    "random-pick:SEED") and the `params`-driven search, each aggregated over the seeds."""
    picks = [(seed, arch_id(random.Random(f"random-pick:{seed}").choice(domain.pool)))
             for seed in config.strategy_seeds()]
    random_outcomes = [{"seed": seed, "arch_id": key, **truth.outcome(key)} for seed, key in picks]
    return {"random": {**aggregate(random_outcomes), "per_seed": random_outcomes},
            "params": {**aggregate(params_outcomes), "per_seed": params_outcomes}}


def best_of(found: list[dict], prepared: PreparedRun, errors: dict[str, str],
            truth: GroundTruth | None) -> dict:
    """The best-scored candidate with its params, FLOPs (the run's resolution) and outcome."""
    top = ranked(found)[0]
    if top["score"] is None:
        raise BenchError(f"every candidate of the search failed to score, e.g. "
                         f"{next(iter(errors.values()), 'unknown error')}")
    arch = top["arch"]
    return {"arch": arch, "arch_id": top["arch_id"], "score": top["score"],
            **{size: int_or_none(model_size(prepared, size, arch)) for size in ("params", "flops")},
            **(truth.outcome(top["arch_id"]) if truth else NO_OUTCOME)}


def model_size(prepared: PreparedRun, quantity: str, arch: Arch) -> float:
    """Params or FLOPs at the run's resolution: params by the space's closed form (microseconds,
    so not cached), FLOPs by the runner's `count_size` (a forward pass on the meta device, kept
    in the score cache)."""
    if quantity == "params":
        return float(prepared.candidates.space.count_params(arch, prepared.setting["img_size"]))
    return count_size(prepared, quantity, arch)


def int_or_none(value: float) -> int | None:
    """A count as an int; None where it could not be counted (NaN)."""
    return None if math.isnan(value) else int(value)


def aggregate(outcomes: list[dict]) -> dict:
    """Mean and standard deviation (n - 1; null for one seed) of each outcome over the seeds;
    null without ground truth."""
    summary = {}
    for key in NO_OUTCOME:
        values = [o[key] for o in outcomes if o[key] is not None]
        summary[f"{key}_mean"] = float(np.mean(values)) if values else None
        summary[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return summary


def search_cost(searches: list[dict], device: str, kind: str) -> dict:
    """The scoring cost of the proxy's searches (baselines excluded): every candidate's stored
    seconds, whether computed now or served from the cache, so that a search costs the same
    on a warm cache; the ratios are one search's device-hours over the published GPU-hours."""
    seconds = float(sum(c["seconds"] for s in searches for c in s["candidates"]))
    hours = seconds / 3600
    per_search = hours / len(searches)
    return {
        "candidates_scored": sum(len(s["candidates"]) for s in searches),
        "seconds": seconds,
        "seconds_meaning": "sum of each candidate's stored scoring seconds, whether its score "
                           "was computed now or served from the cache",
        "device": device, "device_kind": kind, "device_hours": hours,
        "searches": len(searches), "device_hours_per_search": per_search,
        "published": {name: {"device_hours": published, "device_kind": "cuda",
                             "ratio": per_search / published}
                      for name, published in PUBLISHED_GPU_HOURS.items()},
        "note": "the published costs are GPU-hours; this search ran on a CPU"
        if kind == "cpu" else None,
    }


@dataclass
class TrainingCheck:
    """--train's inputs, loaded before any scoring: the embedded benchmark's recipe and
    accuracies, and the Fashion-MNIST training subset and test set (never downloaded)."""

    recipe: Recipe
    accuracies: dict[str, float]
    train_data: tuple
    test_data: tuple

    @classmethod
    def load(cls, data_dir: str | None) -> TrainingCheck:
        bench = load_benchmark(DEFAULT_BENCHMARK)
        recipe = dict(bench.provenance["recipe"])
        recipe = Recipe(**{**recipe, "betas": tuple(recipe["betas"])})
        target = bench.provenance["default_target"]
        accuracies = dict(zip(bench.table["arch_id"], bench.table[target].astype(float)))
        test = load_split("test", data_dir)
        return cls(recipe, accuracies, train_subset(load_split("train", data_dir), recipe),
                   (normalise(test.images), test.labels))

    def train(self, space: SearchSpace, archs: list[Arch]) -> dict:
        """Each distinct found architecture trained with the recipe (seed TRAIN_SEED, one thread
        as the benchmark was), its test accuracy placed among the benchmark's accuracies."""
        values = np.asarray(list(self.accuracies.values()))
        unique = {arch_id(arch): arch for arch in archs}
        threads = torch.get_num_threads()
        torch.set_num_threads(TRAIN_THREADS)
        try:
            trained = []
            for key, arch in unique.items():
                start = time.perf_counter()
                accuracy = train_and_evaluate(space, arch, TRAIN_SEED, self.train_data,
                                              self.test_data, self.recipe)
                trained.append({"arch_id": key, "arch": arch, "accuracy": accuracy,
                                "percentile": float(100 * np.mean(values <= accuracy)),
                                "benchmark_accuracy": self.accuracies.get(key),
                                "seconds": time.perf_counter() - start})
        finally:
            torch.set_num_threads(threads)
        return {"benchmark": DEFAULT_BENCHMARK, "recipe": dataclasses.asdict(self.recipe),
                "seed": TRAIN_SEED, "threads": TRAIN_THREADS, "architectures": trained}


def write_search(result: dict, out: Path | str) -> Path:
    """Write search.json into the search directory."""
    out = prepare_out_dir(out)
    (out / "search.json").write_text(json.dumps(result, indent=2) + "\n")
    return out
