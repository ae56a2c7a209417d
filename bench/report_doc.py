"""`bench report`: run, search and stability directories -> report.md with its figures (PNG and
PDF, bench/figures.py), each with a caption saying what was measured and how."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import figures
from bench.compare import cells, compare_runs, describe_run, load_run
from bench.metrics import subsample_curve
from bench.report import headline, markdown_table, prepare_out_dir, proxy_names, summary_markdown
from bench.runner import CORRELATION_COLUMNS, RunConfig, RunResult
from bench.stability import STABILITY_COLUMNS
from spaces.errors import BenchError

# The proxies of the cross-run figures and the subsample curves unless --proxies says otherwise
# (those the runs have; all of a run's proxies where it has none of them).
DEFAULT_PROXIES = ("params", "flops", "synflow", "snip", "dss", "zico", "ntk", "vintk")
FALLBACK_PROXIES = 8
SUBSAMPLE_SIZES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SUBSAMPLE_REPEATS = 200
PARTIAL_COLUMNS = ("partial_params", "partial_params_lo", "partial_params_hi")


@dataclass
class RunDir:
    """A run directory (config.json + scores.csv + correlations.csv) read back as a RunResult."""

    path: Path
    result: RunResult

    @property
    def group(self) -> str:
        """The benchmark it measured against, or its space where it has no ground truth."""
        info = self.result.info
        return (info["benchmark"].get("benchmark") if info.get("target")
                else f"{info['resolved']['space']} (no ground truth)")


@dataclass
class SearchDir:
    """A search directory: its search.json."""

    path: Path
    search: dict


@dataclass
class StabilityDir:
    """A stability directory: stability.csv's rows and stability.json (empty where absent)."""

    path: Path
    rows: pd.DataFrame
    meta: dict


def read_directory(path: Path | str) -> RunDir | SearchDir | StabilityDir:
    """Recognise a directory by its files and read it, or a one-line BenchError."""
    path = Path(path)
    try:
        if all((path / name).is_file() for name in ("config.json", "scores.csv", "correlations.csv")):
            return read_run(path)
        if (path / "search.json").is_file():
            return read_search(path)
        if (path / "stability.csv").is_file() or (path / "stability.json").is_file():
            return read_stability(path)
    except (json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, KeyError,
            UnicodeDecodeError) as err:
        raise BenchError(f"cannot read {path}: {type(err).__name__}: {err}") from None
    raise BenchError(f"{path} is not a run, search or stability directory (it needs config.json, "
                     "scores.csv and correlations.csv; or search.json; or stability.csv)")


def read_run(path: Path) -> RunDir:
    """A run directory as a RunResult; a column added to correlations.csv since the run was
    written (such as the partial τ) reads as NaN."""
    saved, correlations = load_run(path)
    correlations = correlations.reindex(
        columns=[*CORRELATION_COLUMNS, *(c for c in correlations if c not in CORRELATION_COLUMNS)])
    info = {key: value for key, value in saved.items() if key != "config"}
    agreement = path / "agreement.csv"
    result = RunResult(RunConfig.from_file(path / "config.json"), pd.read_csv(path / "scores.csv"),
                       correlations, info, pd.read_csv(agreement) if agreement.is_file() else None,
                       out_dir=path)
    return RunDir(path, result)


def read_search(path: Path) -> SearchDir:
    search = json.loads((path / "search.json").read_text())
    if not isinstance(search, dict) or search.get("kind") != "search" or "searches" not in search:
        raise BenchError(f"{path / 'search.json'} is not a search result (no kind 'search' and "
                         "'searches', as `bench search` writes them)")
    return SearchDir(path, search)


def read_stability(path: Path) -> StabilityDir:
    meta = (json.loads((path / "stability.json").read_text())
            if (path / "stability.json").is_file() else {})
    rows = (pd.read_csv(path / "stability.csv") if (path / "stability.csv").is_file()
            else pd.DataFrame(meta.get("rows", [])))
    missing = [column for column in STABILITY_COLUMNS if column not in rows.columns]
    if missing:
        raise BenchError(f"{path} has no stability column {missing[0]!r} (as `bench stability` "
                         "writes them)")
    return StabilityDir(path, rows, meta)


class ReportDoc:
    """report.md being assembled: markdown blocks and numbered figures saved under figures/."""

    def __init__(self, out: Path):
        self.out = out
        self.blocks: list[str] = []
        self.figure_files: list[Path] = []
        (out / "figures").mkdir(exist_ok=True)

    def add(self, text: str) -> None:
        self.blocks.append(text.strip("\n"))

    def figure(self, fig, name: str, caption: str) -> None:
        number = len(self.figure_files) // 2 + 1
        self.figure_files += figures.save(fig, self.out / "figures" / name)
        self.add(f"![Figure {number}](figures/{name}.png)\n\n*Figure {number}.* {caption} "
                 f"([PDF](figures/{name}.pdf))")

    def write(self) -> Path:
        path = self.out / "report.md"
        path.write_text("\n\n".join(self.blocks) + "\n")
        return path


def build_report(paths, out: Path | str, proxies: list[str] | None = None, detail=(),
                 repeats: int = SUBSAMPLE_REPEATS) -> Path:
    """Read every directory (all checked before anything is drawn), then write out/report.md and
    out/figures/. `proxies` are the main proxies (DEFAULT_PROXIES where None); `detail` the run
    directories drawn in full (the first run of each benchmark where empty)."""
    if not paths:
        raise BenchError("give at least one run, search or stability directory")
    sources = [read_directory(path) for path in paths]
    runs = [s for s in sources if isinstance(s, RunDir)]
    main = main_proxies(runs, proxies)
    shown = detailed_runs(runs, detail)
    doc = ReportDoc(prepare_out_dir(out))
    doc.add(introduction(sources))
    if any(run.result.info.get("target") for run in runs):
        cross_run_section(doc, runs, main)
    for run in shown:
        run_section(doc, run, main, repeats)
    for source in sources:
        if isinstance(source, SearchDir):
            search_section(doc, source)
        elif isinstance(source, StabilityDir):
            stability_section(doc, source)
    others = [run for run in runs if run not in shown]
    if others:
        doc.add("## Other runs\n\nThe correlation tables of the runs drawn in no figure above.")
        for run in others:
            doc.add(demote(summary_markdown(run.result, run.path.name), levels=2))
    return doc.write()


def main_proxies(runs: list[RunDir], proxies: list[str] | None) -> list[str]:
    """The proxies of the cross-run figures: those asked for (each in some run), else the default
    ones the runs have, else the first proxies of the runs."""
    available = list(dict.fromkeys(p for run in runs for p in proxy_names(run.result)))
    if proxies:
        missing = [p for p in proxies if p not in available]
        if missing and runs:
            raise BenchError(f"proxy {missing[0]!r} is in none of the runs; they have "
                             f"{', '.join(sorted(available))}")
        return list(proxies)
    return [p for p in DEFAULT_PROXIES if p in available] or available[:FALLBACK_PROXIES]


def detailed_runs(runs: list[RunDir], detail) -> list[RunDir]:
    """The runs drawn in full: those named (each must be among the given ones), else the first
    run of each benchmark (of each space, for runs without ground truth)."""
    if detail:
        by_path = {run.path.resolve(): run for run in runs}
        missing = [d for d in detail if Path(d).resolve() not in by_path]
        if missing:
            raise BenchError(f"--detail {missing[0]} is not one of the run directories given")
        return [by_path[Path(d).resolve()] for d in dict.fromkeys(detail)]
    first: dict[str, RunDir] = {}
    for run in runs:
        first.setdefault(run.group, run)
    return list(first.values())


def introduction(sources) -> str:
    lines = ["# Report", "", "Made by `bench report` from:", ""]
    for source in sources:
        if isinstance(source, RunDir):
            lines.append(f"- run `{source.path}`: {describe_run(source.result.info)}")
        elif isinstance(source, SearchDir):
            lines.append(f"- search `{source.path}`: {search_title(source.search)}")
        else:
            lines.append(f"- stability study `{source.path}`: {len(source.rows)} rows")
    lines += ["", "Kendall τ intervals are 95 % percentile intervals over 1000 bootstrap resamples "
              "of each run's architectures (seeded by the run's seed)."]
    return "\n".join(lines)


def demote(markdown: str, levels: int = 1) -> str:
    """The same markdown with every heading `levels` deeper, to nest it in the report."""
    return "\n".join("#" * levels + line if line.startswith("#") else line
                     for line in markdown.splitlines())


def unique_name(doc: ReportDoc, stem: str) -> str:
    """A figure file name made of safe characters (it goes into a markdown link) and not used yet
    in this report (run directories may share a name)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem)
    taken = {path.stem for path in doc.figure_files}
    name, index = stem, 2
    while name in taken:
        name, index = f"{stem}-{index}", index + 1
    return name


def cross_run_section(doc: ReportDoc, runs: list[RunDir], main: list[str]) -> None:
    """The forest plot and the table of the main proxies over every run with ground truth."""
    with_truth = [run for run in runs if run.result.info.get("target")]
    groups = list(dict.fromkeys(run.group for run in with_truth))
    ordered = sorted(with_truth, key=lambda run: groups.index(run.group))
    present = [p for p in main if any(p in proxy_names(run.result) for run in ordered)]
    if not present:
        return
    table = compare_runs([run.path for run in ordered], present)
    doc.add("## Kendall τ across runs")
    doc.figure(figures.forest_figure(table, present, [run.group for run in ordered]),
               unique_name(doc, "forest"),
               f"Kendall τ of {', '.join(present)} with each run's ground truth, with its 95 % "
               "bootstrap interval: one panel per proxy, one row per run (its benchmark, target "
               "column, architectures, inputs and resolution), one colour per benchmark; a cross "
               "marks the noise ceiling (τ between two training seeds) where the benchmark has "
               "one. "
               f"{runs_setting(ordered)}.")
    labels, body = cells(table, present)
    doc.add(markdown_table(labels, body))


def runs_setting(runs: list[RunDir]) -> str:
    """What the row labels of a cross-run figure leave out: each benchmark's space, and the
    batch, seed and device of the runs (each value once)."""
    spaces = ", ".join(dict.fromkeys(f"{run.group} on {run.result.info['resolved']['space']}"
                                     for run in runs))
    shared = "; ".join(
        f"{label} {' / '.join(dict.fromkeys(str(run.result.info['resolved'][key]) for run in runs))}"
        for key, label in (("batch_size", "batch"), ("seed", "seed"), ("device", "device")))
    return f"Spaces: {spaces}; {shared}"


def run_section(doc: ReportDoc, run: RunDir, main: list[str], repeats: int) -> None:
    """One run in full: its tables and every figure its files allow."""
    result, name = run.result, run.path.name
    target, setting = result.info.get("target"), headline(result)
    doc.add(demote(summary_markdown(result, name)))
    if target:
        doc.figure(figures.scatter_figure(result.scores, result.correlations, target),
                   unique_name(doc, f"scatter-{name}"),
                   f"Each proxy's score (x) against the ground truth {target} (y), one panel per "
                   "proxy, titled with Kendall τ and its 95 % bootstrap interval. A positive score "
                   f"whose max/min exceeds {figures.LOG_SPAN} is on a log axis; one whose middle "
                   "80 % lies in under a third of its range or whose median lies in the outer "
                   "15 % of it (a few extreme values, of any sign) is on a rank axis, and so is "
                   f"the ground truth by the same rule. Run {name}: {setting}.")
    doc.figure(figures.heatmap_figure(rank_correlations(result), f"{name}: Kendall τ between "
                                      "rankings"), unique_name(doc, f"heatmap-{name}"),
               "Kendall τ between the rankings of every two proxies"
               + (f" and of the ground truth {target} (first row)" if target else "")
               + ", over the architectures where both have a score (grey: a constant score). "
               f"Run {name}: {setting}.")
    if not target:
        return
    doc.figure(figures.frontier_figure(result.correlations), unique_name(doc, f"frontier-{name}"),
               f"Cost against quality: Kendall τ with {target} (95 % bootstrap interval) against "
               "the median wall-clock seconds to score one architecture (log axis; shared work "
               "such as one NTK kernel is counted in the first proxy that needs it), measured on "
               f"{result.info.get('device')} with {result.info.get('threads')} thread(s); the red "
               f"line joins the proxies no cheaper one beats. Run {name}: {setting}.")
    if has_partial(result.correlations):
        doc.figure(figures.partial_figure(result.correlations), unique_name(doc, f"partial-{name}"),
                   f"Kendall's partial τ of each proxy with {target} given params (y) against its "
                   "raw τ (x), both with 95 % bootstrap intervals. On the dashed diagonal "
                   "holding params fixed takes nothing away; near y = 0 nothing of the ranking is "
                   f"left once params is known. Run {name}: {setting}.")
    else:
        doc.add(f"(No partial τ figure: {run.path / 'correlations.csv'} has no partial τ columns; "
                f"`bench run --config {run.path / 'config.json'}` rewrites it from the cached "
                "scores.)")
    proxies = [p for p in main if p in proxy_names(result)] or proxy_names(result)[:FALLBACK_PROXIES]
    curves = {p: curve for p, curve in subsample_curves(result, proxies, repeats).items()
              if len(curve)}
    if not curves:  # fewer than 3 architectures with a score and a ground truth
        return
    full = int(max(curve["n"].max() for curve in curves.values()))
    doc.figure(figures.subsample_figure(curves), unique_name(doc, f"subsample-{name}"),
               f"How many architectures a conclusion needs: Kendall τ with {target} on random "
               f"subsamples of n of the run's {full} architectures ({repeats} subsamples per n, "
               f"drawn without replacement, seed {result.info['resolved']['seed']}): median "
               "(line) and 2.5–97.5 % spread over subsamples (band); at the full n every "
               f"subsample is the whole run. Run {name}: {setting}.")


def rank_correlations(result: RunResult) -> pd.DataFrame:
    """Kendall τ between the proxies' scores (and the ground truth first, where there is one)."""
    wide = result.scores.pivot(index="arch_id", columns="proxy", values="score")
    wide = wide[proxy_names(result)]
    target = result.info.get("target")
    if target:
        truth = result.scores.drop_duplicates("arch_id").set_index("arch_id")["target"]
        wide.insert(0, target, truth.loc[wide.index])
    matrix = wide.corr(method="kendall")
    for column in wide:  # a constant score has no ranking, not even with itself
        if wide[column].nunique() < 2:
            matrix.loc[column, column] = math.nan
    return matrix


def has_partial(correlations: pd.DataFrame) -> bool:
    return (all(column in correlations for column in PARTIAL_COLUMNS)
            and correlations["partial_params"].notna().any())


def subsample_sizes(n: int) -> list[int]:
    """10, 20, 50, 100, … below n, and n itself."""
    return [size for size in SUBSAMPLE_SIZES if size < n] + [n]


def subsample_curves(result: RunResult, proxies: list[str], repeats: int) -> dict[str, pd.DataFrame]:
    """Each proxy's `subsample_curve` on the run's architectures, seeded by the run's seed."""
    seed = result.info["resolved"]["seed"]
    curves = {}
    for proxy in proxies:
        part = result.scores[result.scores["proxy"] == proxy]
        valid = int((part["score"].notna() & part["target"].notna()).sum())
        curves[proxy] = subsample_curve(part["score"], part["target"], subsample_sizes(valid),
                                        repeats, seed)
    return curves


def search_title(search: dict) -> str:
    where = (f"benchmark {search.get('benchmark')} ({search.get('target')})"
             if search.get("benchmark") else f"space {search.get('space')}")
    return (f"{search.get('proxy')} guiding a {search.get('strategy')} search on {where}, budget "
            f"{search.get('budget')}, {len(search.get('searches', []))} seeds")


def mean_std(summary: dict | None, key: str, digits: int = 2) -> str:
    """'mean ± std' of `key` in a search summary, '—' where unknown."""
    mean = (summary or {}).get(f"{key}_mean")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    std = summary.get(f"{key}_std")
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"


def search_section(doc: ReportDoc, source: SearchDir) -> None:
    """A search: what it found against the random and params baselines, its cost, each seed's
    architecture, and the found architectures against the benchmark's distribution."""
    search, name = source.search, source.path.name
    constraints = ", ".join(search.get("constraints") or []) or "none"
    how = (f"{search_title(search)}; constraints: {constraints}; seeds "
           f"{search.get('seeds')}")
    doc.add(f"## Search {name}\n\n{how}.")
    picks = [(f"{search.get('proxy')} ({search.get('strategy')})", search.get("summary")),
             *((f"{key} baseline", value) for key, value in (search.get("baselines") or {}).items())]
    doc.add(markdown_table(("pick", "ground truth", "percentile", "regret"),
                           [(label, mean_std(summary, "ground_truth"),
                             mean_std(summary, "percentile", 1), mean_std(summary, "regret"))
                            for label, summary in picks]))
    cost = search.get("cost") or {}
    if cost:
        published = "; ".join(f"{what}: {number(value.get('device_hours'), 'g')} device-hours "
                              f"(ratio {number(value.get('ratio'), '.2g')})"
                              for what, value in (cost.get("published") or {}).items())
        doc.add(f"Cost: {cost.get('candidates_scored')} candidates scored in "
                f"{number(cost.get('seconds'), '.3g')} s on {cost.get('device')} "
                f"({cost.get('device_kind')}), {number(cost.get('device_hours'), '.3g')} "
                f"device-hours" + (f"; published training-based search: {published}" if published
                                   else "") + ".")
    doc.add(markdown_table(("seed", "arch_id", "score", "params", "flops", "ground truth",
                            "percentile"),
                           [(str(s.get("seed")), s["best"].get("arch_id", ""),
                             number(s["best"].get("score"), ".4g"),
                             number(s["best"].get("params"), ".0f"),
                             number(s["best"].get("flops"), ".0f"),
                             number(s["best"].get("ground_truth"), ".3f"),
                             number(s["best"].get("percentile"), ".1f"))
                            for s in search["searches"]]))
    if not (search.get("benchmark") and search.get("target")):
        return
    try:
        from spaces.benchmarks import load_benchmark

        accuracy = load_benchmark(search["benchmark"]).table[search["target"]]
    except (BenchError, KeyError) as err:
        doc.add(f"(No figure of the benchmark's distribution: {err}.)")
        return
    doc.figure(figures.search_figure(accuracy, search), unique_name(doc, f"search-{name}"),
               f"The found architectures against the distribution of {search['target']} over all "
               f"{accuracy.notna().sum()} architectures of {search['benchmark']} (histogram): a "
               "triangle per seed for what the search found, the mean ± std of a random pick and "
               "of the params pick under the same constraints and budget (bands), and the best "
               f"architecture the constraints allow (dashed). {how}.")


def number(value, spec: str) -> str:
    """A value in the format `spec`, '—' where it is unknown."""
    return "—" if value is None else format(value, spec)


def stability_section(doc: ReportDoc, source: StabilityDir) -> None:
    """A stability study: its table and its noise floor beside accuracy τ."""
    rows, name, meta = source.rows, source.path.name, source.meta
    config = meta.get("config") or {}
    seeds = meta.get("seeds") or {}
    how = ", ".join(f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}"
                    for key, value in sorted(config.items())
                    if value not in (None, "", [], False) and key not in ("out", "cache"))
    seed_text = ("seeds: " + "; ".join(f"{key} {value}" for key, value in seeds.items())
                 if seeds else "")
    doc.add(f"## Stability {name}\n\n" + "; ".join(t for t in (how, seed_text) if t) + ".")
    doc.add(markdown_table(list(rows.columns), [[cell(value) for value in row]
                                     for row in rows.itertuples(index=False)]))
    doc.figure(figures.stability_figure(rows), unique_name(doc, f"stability-{name}"),
               "Each proxy's noise floor next to its accuracy: Kendall τ between its rankings of "
               "the same architectures under other weight seeds and under other input batches "
               "(mean over pairs, min–max line), and its τ with the ground truth of the base seeds "
               f"(diamond). {'; '.join(t for t in (how, seed_text) if t)}.")


def cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
