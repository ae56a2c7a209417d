"""The resolution study's figure: Kendall τ [95% CI] of each proxy against the input resolution,
pink (1/f) noise solid and gaussian noise dashed, from the run directories that run.sh wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

PROXIES = ["params", "synflow", "synflow_ln", "snip", "dss", "ntk", "vintk"]


def study_table(folder: Path) -> pd.DataFrame:
    """One row per (run, proxy): resolution, input kind, τ and its interval."""
    rows = []
    for run in sorted(folder.glob("*px-*")):
        resolved = json.loads((run / "config.json").read_text())["resolved"]
        table = pd.read_csv(run / "correlations.csv")
        for row in table[table["proxy"].isin(PROXIES)].itertuples():
            rows.append({"img_size": resolved["img_size"], "inputs": resolved["inputs"],
                         "proxy": row.proxy, "kendall": row.kendall, "lo": row.kendall_lo,
                         "hi": row.kendall_hi})
    return pd.DataFrame(rows).sort_values(["proxy", "inputs", "img_size"])


def plot(table: pd.DataFrame, path: Path) -> None:
    """τ against resolution, one colour per proxy; a proxy missing at a size is not drawn there."""
    fig = Figure(figsize=(8, 5.2), layout="constrained")
    ax = fig.subplots()
    for index, (colour, proxy) in enumerate(zip(matplotlib.colormaps["tab10"].colors, PROXIES)):
        for inputs, style in (("pink", "-"), ("gaussian", "--")):
            # A small horizontal offset per proxy and input kind keeps the intervals apart.
            shift = 2 ** (0.025 * (2 * index + (inputs == "gaussian") - len(PROXIES)))
            part = table[(table["proxy"] == proxy) & (table["inputs"] == inputs)]
            if part.empty:
                continue
            ax.errorbar(part["img_size"] * shift, part["kendall"],
                        yerr=[part["kendall"] - part["lo"], part["hi"] - part["kendall"]],
                        color=colour, ls=style, marker="o", ms=4, capsize=2, lw=1.2,
                        label=f"{proxy} ({inputs})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(table["img_size"].unique()),
                  [str(size) for size in sorted(table["img_size"].unique())])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("input resolution (px)")
    ax.set_ylabel("Kendall τ with CIFAR-100 accuracy")
    ax.set_title("Auto-Prox AutoFormer-T (100 networks, c100_base): τ against resolution")
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.savefig(path.with_suffix(".png"), dpi=130)
    fig.savefig(path.with_suffix(".pdf"))


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    table = study_table(folder)
    plot(table, folder / "resolution")
    print(f"wrote {folder / 'resolution.png'} and .pdf")
