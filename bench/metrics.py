"""Rank metrics of a proxy against ground truth (docs/metrics.md), all computed by one function."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from scipy import stats

# Above this many architectures `resampled_kendall_pairs` computes τ resample by resample: its n×n pair
# matrices (8 n² bytes each) and their products would cost more than scipy's τ.
PAIR_MATRIX_LIMIT = 2000
# What the partial Kendall τ holds fixed: model size, as the space counts it.
SIZE_MEASURES = ("params", "flops")
# |τ| this close to 1 is 1: τ-b of a monotone relation is 1 up to rounding of the square root.
DEGENERATE_TOLERANCE = 1e-12


def rank_metrics(scores, target, topk: float = 0.1, n_boot: int = 1000, seed: int = 0,
                 given: dict | None = None) -> dict:
    """Kendall tau-b with a 95% bootstrap interval, Spearman rho, Pearson r on values,
    precision at top-k, the proxy's top-1 pick relative to the best, and the counts behind them;
    with `given` ({"params": values, ...}, one value per architecture) also the partial τ given
    each (`partial_<name>`, `_lo`, `_hi`, see `partial_kendall`).

    Non-finite scores or targets are failures: counted in `failures`, excluded from the rest.
    """
    scores = np.asarray(scores, dtype=float)
    target = np.asarray(target, dtype=float)
    valid = np.isfinite(scores) & np.isfinite(target)
    s, t = scores[valid], target[valid]
    result = {"n": int(valid.sum()), "failures": int((~np.isfinite(scores)).sum()),
              "ties": count_tied(s)}
    nan = float("nan")
    partials = {f"partial_{name}{suffix}": nan for name in given or {} for suffix in ("", "_lo", "_hi")}
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return {**result, "kendall": nan, "kendall_lo": nan, "kendall_hi": nan, "spearman": nan,
                "pearson": nan, "topk_precision": nan, "top1_relative": nan, **partials}
    for name, values in (given or {}).items():
        estimate, lo, hi = partial_kendall(s, t, np.asarray(values, dtype=float)[valid], n_boot, seed)
        partials.update({f"partial_{name}": estimate, f"partial_{name}_lo": lo,
                         f"partial_{name}_hi": hi})
    lo, hi = bootstrap_interval(s, t, n_boot, seed)
    return {
        **result,
        "kendall": float(stats.kendalltau(s, t).statistic),
        "kendall_lo": lo,
        "kendall_hi": hi,
        "spearman": float(stats.spearmanr(s, t).statistic),
        "pearson": float(stats.pearsonr(s, t).statistic),
        "topk_precision": topk_precision(s, t, topk),
        "top1_relative": float(t[np.argmax(s)] / t.max()) if t.max() > 0 else float("nan"),
        **partials,
    }


def finite_kendall(x, y) -> float:
    """Kendall tau-b on the architectures where both values are finite; NaN with fewer than 3 or
    with one side constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    valid = np.isfinite(x) & np.isfinite(y)
    if valid.sum() < 3:
        return float("nan")
    return float(stats.kendalltau(x[valid], y[valid]).statistic)


def count_tied(values: np.ndarray) -> int:
    """How many values share their value with another (ties are reported, not hidden)."""
    _, counts = np.unique(values, return_counts=True)
    return int(counts[counts > 1].sum())


def topk_precision(scores: np.ndarray, target: np.ndarray, fraction: float) -> float:
    """Overlap of the top `fraction` by proxy and by ground truth, as a fraction of k."""
    k = max(1, math.ceil(fraction * len(scores)))
    top_by_score = set(np.argsort(-scores, kind="stable")[:k])
    top_by_target = set(np.argsort(-target, kind="stable")[:k])
    return len(top_by_score & top_by_target) / k


def bootstrap_interval(scores: np.ndarray, target: np.ndarray, n_boot: int,
                       seed: int) -> tuple[float, float]:
    """95% percentile interval of Kendall tau over architectures resampled with replacement."""
    return percentile_interval(resampled_kendall_pairs([scores, target], n_boot, seed)[0, 1])


@functools.lru_cache(maxsize=4)
def bootstrap_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each of n architectures is drawn in each of n_boot resamples (n draws with
    replacement each): a read-only (n_boot, n) array, drawn once per (n, n_boot, seed). The same
    seed gives the same resamples to every statistic, so the intervals of one run are paired."""
    picks = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    offsets = n * np.arange(n_boot)[:, None]
    counts = np.bincount((picks + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    counts = counts.astype(np.int32)
    counts.flags.writeable = False
    return counts


def resampled_kendall_pairs(variables: list, n_boot: int,
                            seed: int) -> dict[tuple[int, int], np.ndarray]:
    """Kendall tau-b of each pair (i, j), i < j, of `variables` on each of the resamples of
    `bootstrap_counts(n, n_boot, seed)` (NaN where one of the two is constant on it).

    A resample's τ-b counts pairs of drawn architectures; two draws of the same architecture are
    tied in both and count in neither the numerator nor the denominator. So with w the draw
    counts and S_x = sign(x_a − x_b), its numerator is wᵀ(S_x∘S_y)w and its denominator
    sqrt(wᵀ|S_x|w · wᵀ|S_y|w) (`resampled_pair_sum`): matrix products for all resamples at once
    instead of one O(n log n) τ per resample. Beyond PAIR_MATRIX_LIMIT architectures scipy's τ
    is computed on each resample instead (τ does not depend on the order of the draws).
    """
    variables = [np.ascontiguousarray(v, dtype=float) for v in variables]
    n = len(variables[0])
    pairs = list(itertools.combinations(range(len(variables)), 2))
    if n > PAIR_MATRIX_LIMIT:
        draws = [np.repeat(np.arange(n), row) for row in bootstrap_counts(n, n_boot, seed)]
        return {(i, j): np.array([stats.kendalltau(variables[i][d], variables[j][d]).statistic
                                  for d in draws], dtype=float) for i, j in pairs}
    values = [v.tobytes() for v in variables]
    untied = [resampled_pair_sum(n_boot, seed, v, v) for v in values]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {(i, j): resampled_pair_sum(n_boot, seed, values[i], values[j])
                / np.sqrt(untied[i] * untied[j]) for i, j in pairs}


@functools.lru_cache(maxsize=64)
def resampled_pair_sum(n_boot: int, seed: int, first: bytes, second: bytes) -> np.ndarray:
    """wᵀ(S_a∘S_b)w on each resample for the float64 values a and b given as bytes (a = b gives
    wᵀ|S_a|w, the pairs untied in a). Kept by value: the ground truth and the sizes are the same
    for every proxy of a run, and a proxy's own sums serve its τ and both partial τ. Float32 is
    exact: every product and partial sum is an integer of magnitude at most n² < 2²⁴."""
    a, b = np.frombuffer(first), np.frombuffer(second)
    weights = bootstrap_counts(len(a), n_boot, seed).astype(np.float32)
    signs = np.sign(a[:, None] - a[None, :]) * np.sign(b[:, None] - b[None, :])
    sums = ((weights @ signs.astype(np.float32)) * weights).sum(axis=1, dtype=np.float64)
    sums.flags.writeable = False
    return sums


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the finite values (NaN, NaN when there are none)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def partial_tau_from_taus(tau_xy, tau_xz, tau_yz):
    """Kendall's partial τ of x and y given z from the three τ-b (Kendall 1942):
    (τ_xy − τ_xz τ_yz) / sqrt((1 − τ_xz²)(1 − τ_yz²)), elementwise.

    Where |τ_xz| = 1 (x orders every pair as z does: a proxy that is a strictly monotone function
    of params) or |τ_yz| = 1, the numerator is exactly 0 and so is the denominator; the partial τ
    is defined as 0 there: nothing in the ranking goes beyond z. NaN where a τ is NaN.
    """
    tau_xy, tau_xz, tau_yz = (np.asarray(v, dtype=float) for v in (tau_xy, tau_xz, tau_yz))
    degenerate = (np.abs(tau_xz) >= 1 - DEGENERATE_TOLERANCE) | (np.abs(tau_yz) >= 1 - DEGENERATE_TOLERANCE)
    with np.errstate(invalid="ignore", divide="ignore"):
        partial = (tau_xy - tau_xz * tau_yz) / np.sqrt((1 - tau_xz**2) * (1 - tau_yz**2))
    finite = np.isfinite(tau_xy) & np.isfinite(tau_xz) & np.isfinite(tau_yz)
    return np.where(finite, np.where(degenerate, 0.0, partial), np.nan)


def partial_kendall(x, y, z, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Partial Kendall τ of x (a proxy) and y (the ground truth) given z (params or FLOPs): the
    part of the ranking that z does not explain, with a 95% bootstrap interval over the
    architectures (the resamples of `bootstrap_interval`). Architectures where any of the three
    is not finite are left out; NaN with fewer than 3 or a constant variable."""
    x, y, z = (np.asarray(v, dtype=float) for v in (x, y, z))
    valid = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z = x[valid], y[valid], z[valid]
    if len(x) < 3:
        return float("nan"), float("nan"), float("nan")
    taus = [stats.kendalltau(a, b).statistic for a, b in ((x, y), (x, z), (y, z))]
    estimate = float(partial_tau_from_taus(*taus))
    taus = resampled_kendall_pairs([x, y, z], n_boot, seed)
    resampled = partial_tau_from_taus(taus[0, 1], taus[0, 2], taus[1, 2])
    return (estimate, *percentile_interval(resampled))


def paired_difference(first, second, target, n_boot: int = 1000,
                      seed: int = 0) -> tuple[float, float, float]:
    """τ(first) − τ(second) with a 95% paired bootstrap interval: both proxies are scored on the
    same resampled architectures, so the interval says whether one ranks better than the other
    on this benchmark (it excludes 0) or not. Architectures where either proxy failed are left out."""
    first, second, target = (np.asarray(v, dtype=float) for v in (first, second, target))
    valid = np.isfinite(first) & np.isfinite(second) & np.isfinite(target)
    a, b, t = first[valid], second[valid], target[valid]
    if len(t) < 3:
        return float("nan"), float("nan"), float("nan")
    observed = float(stats.kendalltau(a, t).statistic - stats.kendalltau(b, t).statistic)
    taus = resampled_kendall_pairs([a, b, t], n_boot, seed)
    deltas = taus[0, 2] - taus[1, 2]
    return (observed, *percentile_interval(deltas))


def subsample_curve(scores, target, sizes, repeats: int = 200, seed: int = 0):
    """Kendall τ on random subsamples of n architectures (drawn without replacement, `repeats`
    per n): the median and the 2.5–97.5 % spread over subsamples, one row per n, so a reader sees
    how many architectures a ranking needs before it settles. Sizes above the number of valid
    (finite) pairs are left out; at the full size every subsample is the whole set."""
    import pandas as pd

    scores, target = np.asarray(scores, dtype=float), np.asarray(target, dtype=float)
    valid = np.isfinite(scores) & np.isfinite(target)
    s, t = scores[valid], target[valid]
    rng = np.random.default_rng(seed)
    rows = []
    for n in sorted({int(size) for size in sizes if 3 <= size <= len(s)}):
        taus = np.asarray([stats.kendalltau(s[pick], t[pick]).statistic
                           for pick in (rng.choice(len(s), n, replace=False)
                                        for _ in range(repeats))], dtype=float)
        taus = taus[np.isfinite(taus)]
        median, lo, hi = np.percentile(taus, [50, 2.5, 97.5]) if len(taus) else (math.nan,) * 3
        rows.append({"n": n, "kendall_median": float(median), "kendall_lo": float(lo),
                     "kendall_hi": float(hi)})
    return pd.DataFrame(rows, columns=["n", "kendall_median", "kendall_lo", "kendall_hi"])
