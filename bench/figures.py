"""Every figure of a run directory and of `bench report`, drawn with matplotlib's object interface
(no pyplot, no global backend: PNG through Agg, PDF through matplotlib's PDF writer) so the same
data always gives the same files. Each function takes prepared tables and returns the Figure;
`save` writes it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy import stats

# A positive score whose max/min exceeds this spans orders of magnitude: it goes on a log axis.
LOG_SPAN = 100
# A score is squeezed by a few extreme values when its middle 80 % lies in less than SQUEEZED of
# its range, or its median in the outer EDGE of the range: it goes on a rank axis (Kendall τ
# depends only on ranks anyway).
SQUEEZED = 1 / 3
EDGE = 0.15
DPI = 120
# Panels per row of the forest plot (one per proxy).
FOREST_COLUMNS = 8
# Files carry no creation date, so a figure rebuilt from the same data is the same file.
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}}
SCALE_LABELS = {"linear": "score", "log": "score (log axis)", "rank": "rank of score (1 = lowest)"}


def save(fig: Figure, stem: Path | str, formats=("png", "pdf")) -> list[Path]:
    """Write the figure as stem.png and stem.pdf; returns the paths."""
    paths = [Path(f"{stem}.{fmt}") for fmt in formats]
    for path, fmt in zip(paths, formats):
        fig.savefig(path, format=fmt, dpi=DPI, metadata=METADATA[fmt])
    return paths


def axis_scale(values) -> str:
    """'log' for a positive score spanning orders of magnitude (max/min > LOG_SPAN), 'rank' for one
    squeezed against an edge by a few extreme values (any sign), else 'linear'."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.ptp(v) == 0:
        return "linear"
    if v.min() > 0 and v.max() / v.min() > LOG_SPAN:
        return "log"
    lo, median, hi = np.percentile(v, [10, 50, 90])
    where = (median - v.min()) / np.ptp(v)
    squeezed = hi - lo < SQUEEZED * np.ptp(v) or not EDGE <= where <= 1 - EDGE
    return "rank" if squeezed else "linear"


def tau_text(record: dict, column: str = "kendall") -> str:
    """'τ 0.512 [0.43, 0.59]' from a correlations row, or 'τ n/a' where it is NaN."""
    value = record.get(column, math.nan)
    if value is None or not np.isfinite(value):
        return "τ n/a"
    return f"τ {value:.3f} [{record[column + '_lo']:.2f}, {record[column + '_hi']:.2f}]"


def scatter_figure(scores: pd.DataFrame, correlations: pd.DataFrame, target_name: str) -> Figure:
    """One panel per proxy: its score against the ground truth, τ and its interval in the title,
    each axis linear, log or rank as `axis_scale` says (the ground truth's once for all panels)."""
    proxies = list(dict.fromkeys(scores["proxy"]))
    target_scale = axis_scale(scores["target"])
    by_proxy = correlations.set_index("proxy").to_dict("index")
    cols = min(6, len(proxies))
    rows = math.ceil(len(proxies) / cols)
    fig = Figure(figsize=(2.4 * cols, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, proxy in zip(axes.flat, proxies):
        part = scores[(scores["proxy"] == proxy) & np.isfinite(scores["score"])]
        scale = axis_scale(part["score"])
        x = stats.rankdata(part["score"]) if scale == "rank" else part["score"]
        y = stats.rankdata(part["target"]) if target_scale == "rank" else part["target"]
        ax.scatter(x, y, s=7, alpha=0.6, linewidths=0)
        if scale == "log":
            ax.set_xscale("log")
        ax.set_title(f"{proxy}\n{tau_text(by_proxy.get(proxy, {}))}", fontsize=8)
        ax.set_xlabel(SCALE_LABELS[scale], fontsize=7)
        ax.tick_params(labelsize=6)
    if target_scale == "log":
        axes[0, 0].set_yscale("log")
    for ax in axes[:, 0]:
        ax.set_ylabel(SCALE_LABELS[target_scale].replace("score", target_name), fontsize=7)
    for ax in list(axes.flat)[len(proxies):]:
        ax.axis("off")
    return fig


def write_scatter(scores: pd.DataFrame, correlations: pd.DataFrame, target_name: str,
                  path: Path | str) -> None:
    """The run directory's scatter.png."""
    scatter_figure(scores, correlations, target_name).savefig(
        path, format="png", dpi=DPI, metadata=METADATA["png"])


def forest_figure(table: pd.DataFrame, proxies: list[str], groups: list[str]) -> Figure:
    """Kendall τ and its interval on each run (one row each, coloured by its group, the benchmark),
    one panel per proxy, so a proxy reads down its column and a run across its row; `table` is
    `bench.compare.compare_runs`'s, `groups` gives each row's group. A cross marks the noise
    ceiling where the benchmark has one."""
    cols = min(FOREST_COLUMNS, len(proxies))
    rows = math.ceil(len(proxies) / cols)
    names = list(dict.fromkeys(groups))
    # Rows top to bottom, a gap between groups.
    y = np.array([index + 0.6 * names.index(group) for index, group in enumerate(groups)])
    colours = dict(zip(names, palette(len(names))))
    fig = Figure(figsize=(3.2 + 1.45 * cols, rows * (0.8 + 0.24 * len(groups)) + 0.4),
                 layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    ceiling = table["noise_ceiling"].to_numpy(dtype=float)
    for ax, proxy in zip(axes.flat, proxies):
        value = table[proxy].to_numpy(dtype=float)
        arms = interval_arms(value, table[f"{proxy}_lo"], table[f"{proxy}_hi"])
        for group in names:
            pick = np.array([g == group for g in groups])
            ax.errorbar(value[pick], y[pick], xerr=arms[:, pick], fmt="o", ms=3.5, lw=1.2,
                        color=colours[group], label=group)
        if np.isfinite(ceiling).any():
            ax.scatter(ceiling, y, marker="x", color="black", s=25, zorder=3, label="noise ceiling")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(proxy, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(proxies):]:
        ax.axis("off")
    axes[0, 0].set_yticks(y, list(table["run"]), fontsize=7)
    axes[0, 0].set_ylim(y.max() + 0.6, y.min() - 0.6)
    axes[0, 0].set_xlim(-1, 1)
    axes[0, 0].set_xticks([-0.5, 0, 0.5], ["−0.5", "0", "0.5"])
    fig.supxlabel("Kendall τ with the ground truth (95 % bootstrap interval)", fontsize=8)
    found = dict(zip(*reversed(axes[0, 0].get_legend_handles_labels())))
    labels = [label for label in [*names, "noise ceiling"] if label in found]
    handles = [found[label] for label in labels]
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), fontsize=7)
    return fig


def interval_arms(value, lo, hi) -> np.ndarray:
    """Error-bar arms (below, above) of an interval [lo, hi] around value; 0 where unknown."""
    value, lo, hi = (np.asarray(v, dtype=float) for v in (value, lo, hi))
    return np.nan_to_num(np.clip(np.vstack([value - lo, hi - value]), 0, None))


def palette(count: int) -> list:
    """Distinct colours for `count` series (tab10, then tab20 for more)."""
    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def heatmap_figure(matrix: pd.DataFrame, title: str) -> Figure:
    """A square matrix of Kendall τ between rankings, coloured from −1 to 1, each cell written."""
    size = len(matrix)
    fig = Figure(figsize=(2.5 + 0.38 * size, 1.8 + 0.34 * size), layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), vmin=-1, vmax=1,
                      cmap=colormaps["RdBu_r"].with_extremes(bad="lightgrey"))
    ax.set_xticks(range(size), matrix.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(size), matrix.index, fontsize=7)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, "—" if np.isnan(value) else f"{value:.2f}".replace("0.", "."),
                ha="center", va="center", fontsize=5.5,
                color="white" if abs(np.nan_to_num(value)) > 0.6 else "black")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.6, label="Kendall τ")
    return fig


def frontier_figure(correlations: pd.DataFrame) -> Figure:
    """τ with its interval against median seconds per architecture (log x); the step line joins
    the proxies that no cheaper proxy beats."""
    data = correlations.dropna(subset=["kendall"]).sort_values(["seconds_per_arch", "kendall"],
                                                              ascending=[True, False])
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    seconds = data["seconds_per_arch"].clip(lower=1e-6).to_numpy()
    ax.errorbar(seconds, data["kendall"],
                yerr=interval_arms(data["kendall"], data["kendall_lo"], data["kendall_hi"]),
                fmt="o", ms=4, lw=0.8, color="tab:blue", ecolor="lightsteelblue")
    best = np.maximum.accumulate(data["kendall"].to_numpy())
    on_front = data["kendall"].to_numpy() >= best
    ax.step(seconds[on_front], data["kendall"].to_numpy()[on_front], where="post",
            color="tab:red", lw=1, label="frontier: no cheaper proxy ranks better")
    ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("median seconds per architecture (log axis)", fontsize=8)
    ax.set_ylabel("Kendall τ with the ground truth (95 % interval)", fontsize=8)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    label_points(ax, seconds, data["kendall"].to_numpy(), list(data["proxy"]))
    return fig


def partial_figure(correlations: pd.DataFrame, given: str = "params") -> Figure:
    """Partial τ given `given` (y, with its interval) against raw τ (x), with the diagonal: holding
    `given` fixed takes nothing from a proxy on it; one near y = 0 ranks by size alone."""
    column = f"partial_{given}"
    data = correlations.dropna(subset=["kendall", column])
    fig = Figure(figsize=(8, 7.5), layout="constrained")
    ax = fig.subplots()
    ax.errorbar(data["kendall"], data[column],
                xerr=interval_arms(data["kendall"], data["kendall_lo"], data["kendall_hi"]),
                yerr=interval_arms(data[column], data[f"{column}_lo"], data[f"{column}_hi"]),
                fmt="o", ms=4, lw=0.8, color="tab:blue", ecolor="lightsteelblue")
    ax.plot([-1, 1], [-1, 1], color="grey", lw=0.8, ls="--", label="partial τ = τ")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    # One range on both axes (so the diagonal is at 45°) around the points, their intervals and 0.
    values = data[["kendall_lo", "kendall_hi", f"{column}_lo", f"{column}_hi"]].to_numpy(dtype=float)
    values = np.append(values[np.isfinite(values)], 0.0)
    span = (max(-1.0, values.min() - 0.05), min(1.0, values.max() + 0.05))
    ax.set_xlim(*span)
    ax.set_ylim(*span)
    ax.set_aspect("equal")
    ax.set_xlabel("Kendall τ with the ground truth", fontsize=8)
    ax.set_ylabel(f"partial Kendall τ given {given}", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    label_points(ax, data["kendall"].to_numpy(), data[column].to_numpy(), list(data["proxy"]))
    return fig


def label_points(ax, x, y, labels, fontsize: float = 6) -> None:
    """Name each point beside it. Each label goes to the first of a ring of spots around its point
    (right, left, above, below, the diagonals, then the same farther out with a leader line) that
    overlaps no label placed before, no point and no edge of the axes; where none is free, to the
    least crowded spot. Call it last: it reads the figure's final layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    FigureCanvasAgg(fig).draw()  # lays the figure out, so display positions are final
    renderer, scale = fig.canvas.get_renderer(), fig.dpi / 72
    frame = ax.bbox
    points = ax.transData.transform(np.column_stack([x, y]))
    blocked = [(px - 3, py - 3, px + 3, py + 3) for px, py in points]
    for (xi, yi), (px, py), label in zip(zip(x, y), points, labels):
        probe = ax.text(0, 0, label, fontsize=fontsize)
        w, h = probe.get_window_extent(renderer).size
        probe.remove()
        spots = [(dx, dy) for gap in (4 * scale, 14 * scale, 26 * scale)
                 for dx, dy in ((gap, -h / 2), (-gap - w, -h / 2), (-w / 2, gap),
                                (-w / 2, -gap - h), (gap, gap), (gap, -gap - h), (-gap - w, gap),
                                (-gap - w, -gap - h))]

        def crowding(spot):
            box = (px + spot[0], py + spot[1], px + spot[0] + w, py + spot[1] + h)
            inside = overlap(box, (frame.x0, frame.y0, frame.x1, frame.y1))
            return w * h - inside + sum(overlap(box, other) for other in blocked)

        crowded = [crowding(spot) for spot in spots]
        free = [k for k, area in enumerate(crowded) if area < 1]  # under a square pixel: rounding
        index = free[0] if free else int(np.argmin(crowded))
        dx, dy = spots[index]
        blocked.append((px + dx, py + dy, px + dx + w, py + dy + h))
        ax.annotate(label, (xi, yi), xytext=(dx / scale, dy / scale), textcoords="offset points",
                    fontsize=fontsize, ha="left", va="bottom",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"} if index >= 8
                    else None)


def overlap(a, b) -> float:
    """Area shared by two boxes (x0, y0, x1, y1)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def subsample_figure(curves: dict[str, pd.DataFrame]) -> Figure:
    """One panel per proxy: median τ over random subsamples of n architectures (line) and its
    2.5–97.5 % spread (band), n on a log axis; the other proxies' medians in grey behind it, so
    each panel shows where the proxy's ranking separates from the others'."""
    cols = min(4, len(curves))
    rows = math.ceil(len(curves) / cols)
    fig = Figure(figsize=(1.2 + 2.6 * cols, 0.6 + 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    sizes = sorted({int(n) for curve in curves.values() for n in curve["n"]})
    for ax, (proxy, curve), colour in zip(axes.flat, curves.items(), palette(len(curves))):
        for other, background in curves.items():
            if other != proxy:
                ax.plot(background["n"], background["kendall_median"], color="grey", lw=0.6,
                        alpha=0.5)
        ax.fill_between(curve["n"], curve["kendall_lo"], curve["kendall_hi"], color=colour,
                        alpha=0.25, lw=0)
        ax.plot(curve["n"], curve["kendall_median"], "o-", ms=3, color=colour)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(proxy, fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for index, ax in enumerate(axes.flat):
        if index >= len(curves):
            ax.axis("off")
        elif index + cols >= len(curves):  # nothing below it: it shows the n axis
            ax.xaxis.set_tick_params(labelbottom=True)
    # A size within 15 % of a larger one (199 valid scores beside 200) gets no label of its own.
    ticks = [n for n in sizes if not any(n < m <= 1.15 * n for m in sizes)]
    ax = axes[0, 0]
    ax.set_xscale("log")
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.minorticks_off()
    fig.supxlabel("architectures in the subsample (log axis)", fontsize=8)
    fig.supylabel("Kendall τ with the ground truth", fontsize=8)
    return fig


def search_figure(accuracy: pd.Series, search: dict) -> Figure:
    """The benchmark's ground-truth distribution (histogram) with what each seed's search found
    (triangles), the mean ± std of the random and params baselines (bands) and the best available."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(accuracy.dropna(), bins=40, color="lightgrey", edgecolor="grey", lw=0.5,
            label=f"all {accuracy.notna().sum()} architectures")
    found = [s["best"].get("ground_truth") for s in search["searches"]]
    found = [value for value in found if value is not None]
    top = ax.get_ylim()[1]
    # Seeds that found the same architecture are stacked, so every seed shows.
    heights = [top * (1.02 + 0.05 * found[:i].count(value)) for i, value in enumerate(found)]
    ax.scatter(found, heights, marker="v", color="tab:red", s=40, zorder=3,
               label=f"{search['proxy']} ({search['strategy']}): one per seed (stacked)")
    for (name, baseline), colour in zip((search.get("baselines") or {}).items(),
                                        ("tab:blue", "tab:green")):
        mean, std = baseline.get("ground_truth_mean"), baseline.get("ground_truth_std")
        if mean is None:
            continue
        ax.axvline(mean, color=colour, lw=1.2, label=f"{name} baseline mean ± std")
        ax.axvspan(mean - (std or 0), mean + (std or 0), color=colour, alpha=0.15)
    if search.get("best_available") is not None:
        ax.axvline(search["best_available"], color="black", ls="--", lw=1,
                   label="best available under the constraints")
    ax.set_ylim(0, top * 1.08)
    ax.set_xlabel(search.get("target") or "ground truth", fontsize=8)
    ax.set_ylabel("architectures", fontsize=8)
    fig.legend(fontsize=7, loc="outside upper center", ncols=3)
    return fig


def stability_figure(rows: pd.DataFrame) -> Figure:
    """Per proxy: τ between its own rankings under other weight seeds and other input batches
    (mean, min–max line) next to its τ with the ground truth."""
    proxies = list(dict.fromkeys(rows["proxy"]))
    fig = Figure(figsize=(7.5, 1.4 + 0.4 * len(proxies)), layout="constrained")
    ax = fig.subplots()
    styles = {"weights": ("tab:blue", -0.2, "weight seeds"),
              "inputs": ("tab:orange", 0.0, "input batches")}
    for kind, (colour, offset, what) in styles.items():
        part = rows[rows["kind"] == kind].set_index("proxy").reindex(proxies)
        if part["kendall_mean"].notna().any():
            ax.errorbar(part["kendall_mean"], np.arange(len(proxies)) + offset,
                        xerr=interval_arms(part["kendall_mean"], part["kendall_min"],
                                           part["kendall_max"]),
                        fmt="o", ms=4, lw=1, color=colour,
                        label=f"τ between {what} (mean, min–max)")
    accuracy = rows.groupby("proxy", sort=False)["accuracy_kendall"].first().reindex(proxies)
    if accuracy.notna().any():
        ax.scatter(accuracy, np.arange(len(proxies)) + 0.2, marker="D", color="tab:red", s=22,
                   label="τ with the ground truth", zorder=3)
    ax.set_yticks(range(len(proxies)), proxies, fontsize=7)
    ax.set_ylim(len(proxies) - 0.5, -0.5)
    ax.set_xlim(-1.05, 1.05)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("Kendall τ", fontsize=8)
    fig.legend(fontsize=7, loc="outside upper center", ncols=3)
    ax.grid(axis="x", alpha=0.3)
    return fig
