"""Seed-to-seed agreement of proxies on NB201: Kendall τ between the scores of the same 100
architectures (a seeded sample of the reference run's 200) under two weight initialisations, on the
same pink-noise batch. A proxy whose ranking changes with the initialisation cannot agree with a
published ranking made from other weights (README: agreement with NASLib).

Usage: .venv/bin/python results/reference/seed_agreement.py [PROXY ...]   (~1 min per proxy)
"""

import json
import random
import sys
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import kendalltau

from bench.inputs import make_batch
from bench.runner import architecture_seed
from proxies.base import get_proxy
from spaces.base import get_space


def scores_under_seed(names: list[str], archs: list[dict], seed: int) -> dict[str, list[float]]:
    space, batch = get_space("nb201", num_classes=10), make_batch("pink", 32, 32, 3, 10, 0, None)
    scores = {name: [] for name in names}
    for arch in archs:
        torch.manual_seed(architecture_seed(seed, arch))
        model = space.build(arch)
        for name in names:
            torch.manual_seed(seed)
            try:
                scores[name].append(get_proxy(name)(model, batch))
            except Exception:  # an undefined score (a cell with no path) is left out
                scores[name].append(float("nan"))
    return scores


def main(names: list[str]) -> None:
    run = Path(__file__).parent / "nb201-cifar10" / "scores.csv"
    texts = sorted(set(pd.read_csv(run)["arch"]))
    archs = [json.loads(text) for text in random.Random(0).sample(texts, 100)]
    first, second = scores_under_seed(names, archs, 0), scores_under_seed(names, archs, 1)
    print("| proxy | τ(seed 0, seed 1) |\n|---|---|")
    for name in names:
        tau = kendalltau(first[name], second[name], nan_policy="omit").statistic
        print(f"| {name} | {tau:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["plain", "grasp", "fisher", "snip", "l2_norm"])
