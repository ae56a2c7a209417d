"""What a run shows and writes: the rich table, config.json, scores.csv, correlations.csv,
agreement.csv (where the benchmark publishes scores of the same proxies), summary.md and a scatter
plot of each proxy against the ground truth."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.ensemble import ENSEMBLE_PREFIX
from spaces.errors import BenchError

if TYPE_CHECKING:  # the runner imports this module, never the other way round
    from bench.runner import RunResult

COLUMNS = [("proxy", "proxy"), ("n", "n"), ("kendall", "Kendall τ"), ("interval", "95% CI"),
           ("partial_params", "τ | params"), ("spearman", "Spearman ρ"), ("topk_precision", "top-10%"),
           ("seconds_per_arch", "median s/arch"), ("failures", "failures")]
PARTIAL_NOTE = ("τ | params: Kendall's partial τ with the ground truth given the parameter count, "
                "the part of the ranking that model size does not explain (0 for a proxy that "
                "orders architectures as params does); correlations.csv has it given FLOPs too, "
                "each with a 95% bootstrap interval.")


def headline(result: RunResult) -> str:
    """One line saying what was measured against what, on which inputs and device."""
    setting = result.info["resolved"]
    what = (f"against ground truth '{result.info['target']}' of benchmark "
            f"{result.info['benchmark'].get('benchmark')}" if result.info["target"]
            else "NO GROUND TRUTH: Kendall τ between proxies only")
    return (f"{result.info['n_architectures']} architectures of {setting['space']} {what}; "
            f"inputs: {setting['batch_size']} {setting['inputs']} images of {setting['img_size']} px, "
            f"seed {seed_text(setting)}, device {setting['device']}")


def seed_text(setting: dict) -> str:
    """The run seed, and the weight and input seeds where they differ from it."""
    seed = setting["seed"]
    apart = [f"{kind} {setting[key]}" for kind, key in (("weights", "weight_seed"),
                                                         ("inputs", "input_seed"))
             if setting.get(key, seed) != seed]
    return f"{seed} ({', '.join(apart)})" if apart else str(seed)


def table_columns(result: RunResult) -> list[tuple[str, str]]:
    """Column keys and labels: metrics against ground truth, or a Kendall matrix without one."""
    if result.info["target"]:
        return COLUMNS
    others = [(f"vs {name}", f"τ vs {name}") for name in proxy_names(result)]
    return [("proxy", "proxy"), ("n", "n"), *others, ("seconds_per_arch", "median s/arch"),
            ("failures", "failures")]


def proxy_names(result: RunResult) -> list[str]:
    return list(dict.fromkeys(result.scores["proxy"]))


def table_rows(result: RunResult) -> list[dict]:
    """Formatted cells of the correlation table, one dict per proxy."""
    scores = result.scores.groupby("proxy", sort=False)
    rows = {name: {"proxy": name, "n": str(int(np.isfinite(group["score"]).sum())),
                   "seconds_per_arch": fmt(group["seconds"].median(), 3),
                   "failures": str(int(group["score"].isna().sum()))}
            for name, group in scores}
    for record in result.correlations.to_dict("records"):
        row = rows[record["proxy"]]
        row[f"vs {record['target']}"] = fmt(record["kendall"])
        row.update({
            "n": str(record["n"]) if result.info["target"] else row["n"],
            "kendall": fmt(record["kendall"]),
            "interval": f"[{fmt(record['kendall_lo'])}, {fmt(record['kendall_hi'])}]",
            "partial_params": fmt(record.get("partial_params")),  # NaN in runs written before it
            "spearman": fmt(record["spearman"]), "topk_precision": fmt(record["topk_precision"])})
    ceiling = result.info["benchmark"].get("noise_ceiling_kendall")
    if ceiling is not None:
        rows["ceiling"] = {"proxy": "noise ceiling (seed vs seed)", "kendall": fmt(ceiling)}
    return [{key: row.get(key, "") for key, _ in table_columns(result)} for row in rows.values()]


def fmt(value, digits: int = 3) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def print_run_table(result: RunResult, console: Console) -> None:
    """The correlation table, each proxy's failures and the agreement table, on the console."""
    table = Table(title=headline(result), title_justify="left",
                  caption=PARTIAL_NOTE if result.info["target"] else None, caption_justify="left")
    columns = table_columns(result)
    for key, label in columns:
        table.add_column(label, justify="left" if key == "proxy" else "right")
    for row in table_rows(result):
        table.add_row(*(row[key] for key, _ in columns))
    console.print(table)
    console.print(seconds_line(result), highlight=False)
    failures = result.scores[result.scores["error"].notna()]
    for (proxy, error), group in failures.groupby(["proxy", "error"]):
        console.print(f"[yellow]{proxy} failed on {len(group)} architectures: {error}")
    if has_agreement(result):
        console.print(rich_table(AGREEMENT_TITLE, AGREEMENT_LABELS, agreement_rows(result),
                                 text_columns=2))


def seconds_line(result: RunResult) -> str:
    """The run's total seconds beside the table's medians: every score's stored seconds (a cached
    score at what it took when computed) and the wall clock of this run's scoring."""
    wall = result.info.get("execution", {}).get("scoring_wall_seconds")
    scores = result.scores[~result.scores["proxy"].str.startswith(ENSEMBLE_PREFIX)]
    text = (f"median s/arch: the median over architectures of each score's seconds; in total "
            f"{scores['seconds'].sum():.1f} s over {len(scores)} scores (cached ones at what they "
            "took when computed, ensembles not counted twice)")
    return text + (f"; this run's scoring took {wall:.1f} s wall clock" if wall is not None else "")


def rich_table(title: str, labels, rows, text_columns: int = 1, overflow: str = "ellipsis") -> Table:
    """A rich table whose first `text_columns` columns are text (left) and the rest numbers;
    overflow "fold" wraps long cells instead of cutting them."""
    table = Table(title=title, title_justify="left")
    for index, label in enumerate(labels):
        table.add_column(label, justify="left" if index < text_columns else "right",
                         overflow=overflow)
    for row in rows:
        table.add_row(*row)
    return table


AGREEMENT_TITLE = "Agreement with the benchmark's published scores of the same proxies"
AGREEMENT_LABELS = ("proxy", "published", "n", "Kendall τ", "95% CI", "Spearman ρ")


def has_agreement(result: RunResult) -> bool:
    return result.agreement is not None and not result.agreement.empty


def agreement_rows(result: RunResult) -> list[tuple[str, ...]]:
    return [(r["proxy"], r["reference"], str(r["n"]), fmt(r["kendall"]),
             f"[{fmt(r['kendall_lo'])}, {fmt(r['kendall_hi'])}]", fmt(r["spearman"]))
            for r in result.agreement.to_dict("records")]


def markdown_table(labels, rows) -> str:
    """A markdown table; a `|` inside a cell (as in "τ | params") is escaped, not a column."""
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(labels), "|" + "---|" * len(labels), *map(line, rows)])


def summary_markdown(result: RunResult, name: str) -> str:
    """summary.md: the printed tables in markdown."""
    columns = table_columns(result)
    rows = [[row[key] for key, _ in columns] for row in table_rows(result)]
    text = (f"# Run {name}\n\n{headline(result)}\n\n"
            f"{markdown_table([label for _, label in columns], rows)}\n")
    if result.info["target"]:
        text += f"\n{PARTIAL_NOTE}\n"
    if has_agreement(result):
        text += (f"\n## {AGREEMENT_TITLE}\n\n"
                 f"{markdown_table(AGREEMENT_LABELS, agreement_rows(result))}\n")
    return text


def prepare_out_dir(out: Path | str) -> Path:
    """Create the run directory and check that files can be written in it, before any scoring."""
    out = Path(out)
    probe = out / f".write-test-{uuid.uuid4().hex}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise BenchError(f"cannot write the run directory {out}: {err.strerror or err}") from None
    return out


def write_run(result: RunResult, out: Path | str) -> Path:
    """Write the run directory: everything needed to repeat the run and read its results."""
    out = prepare_out_dir(out)
    result.out_dir = out
    (out / "config.json").write_text(json.dumps(
        {"config": result.config.to_dict(), **result.info}, indent=2, sort_keys=True) + "\n")
    result.scores.to_csv(out / "scores.csv", index=False)
    result.correlations.to_csv(out / "correlations.csv", index=False)
    if has_agreement(result):
        result.agreement.to_csv(out / "agreement.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(result, out.name))
    if result.info["target"]:
        from bench.figures import write_scatter  # matplotlib is loaded only to draw

        write_scatter(result.scores, result.correlations, result.info["target"], out / "scatter.png")
    return out

