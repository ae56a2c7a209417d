"""Rank-aggregation ensembles of proxies: score = Σ log(rank / N) over the members (AZ-NAS style).

Ranks run from 1 (worst) to N (best) within one run, so the best architecture by every member
scores 0 and each member contributes equally whatever its scale. An architecture on which any
member failed gets no ensemble score (a failure naming the members that failed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spaces.errors import BenchError

ENSEMBLE_PREFIX = "ensemble:"


def parse_ensemble(name: str) -> list[str]:
    """`ensemble:ntk+dss+params` -> ["ntk", "dss", "params"]."""
    members = [member.strip() for member in name[len(ENSEMBLE_PREFIX):].split("+")]
    if len(members) < 2 or not all(members):
        raise BenchError(f"{name!r}: an ensemble names two or more proxies, as ensemble:ntk+params")
    return members


def rank_aggregate(wide: pd.DataFrame) -> pd.Series:
    """Σ over columns of log(rank / N); NaN where any column is NaN."""
    complete = wide.notna().all(axis=1)
    ranks = wide[complete].rank(method="average")
    total = np.log(ranks / len(ranks)).sum(axis=1)
    return total.reindex(wide.index)


def ensemble_scores(scores: pd.DataFrame, members: list[str]) -> pd.DataFrame:
    """Long-format rows of the ensemble of `members`, computed from their rows in `scores`."""
    name = ENSEMBLE_PREFIX + "+".join(members)
    member_rows = scores[scores["proxy"].isin(members)]
    wide = member_rows.pivot(index="arch_index", columns="proxy", values="score")[members]
    combined = rank_aggregate(wide)
    firsts = member_rows.drop_duplicates("arch_index").set_index("arch_index")
    seconds = member_rows.groupby("arch_index")["seconds"].sum()
    failed = member_rows[member_rows["score"].isna()].groupby("arch_index")["proxy"].apply(
        lambda names: "member failed: " + ", ".join(names))
    out = firsts.drop(columns=["proxy", "score", "seconds", "error"]).copy()
    out["proxy"] = name
    out["score"] = combined
    out["seconds"] = seconds
    out["error"] = failed.reindex(out.index)
    return out.reset_index()
