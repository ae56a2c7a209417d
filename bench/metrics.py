"""Rank metrics of a proxy against ground truth (REFERENCE §6), all computed by one function."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def rank_metrics(scores, target, topk: float = 0.1, n_boot: int = 1000, seed: int = 0) -> dict:
    """Kendall tau-b with a 95% bootstrap interval, Spearman rho, Pearson r on values,
    precision at top-k, the proxy's top-1 pick relative to the best, and the counts behind them.

    Non-finite scores or targets are failures: counted in `failures`, excluded from the rest.
    """
    scores = np.asarray(scores, dtype=float)
    target = np.asarray(target, dtype=float)
    valid = np.isfinite(scores) & np.isfinite(target)
    s, t = scores[valid], target[valid]
    result = {"n": int(valid.sum()), "failures": int((~np.isfinite(scores)).sum()),
              "ties": count_tied(s)}
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        nan = float("nan")
        return {**result, "kendall": nan, "kendall_lo": nan, "kendall_hi": nan, "spearman": nan,
                "pearson": nan, "topk_precision": nan, "top1_relative": nan}
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
    }


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
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(scores), len(scores))
        tau = stats.kendalltau(scores[pick], target[pick]).statistic
        if np.isfinite(tau):
            taus.append(tau)
    if not taus:
        return float("nan"), float("nan")
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return float(lo), float(hi)


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

    def difference(pick):
        return stats.kendalltau(a[pick], t[pick]).statistic - stats.kendalltau(b[pick], t[pick]).statistic

    observed = float(difference(np.arange(len(t))))
    rng = np.random.default_rng(seed)
    deltas = [d for d in (difference(rng.integers(0, len(t), len(t))) for _ in range(n_boot))
              if np.isfinite(d)]
    if not deltas:
        return observed, float("nan"), float("nan")
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return observed, float(lo), float(hi)
