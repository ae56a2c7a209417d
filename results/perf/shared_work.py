"""What sharing work between proxies saves: the full suite's seconds per architecture on
autoprox-t at 64 px (batch 32, pink noise, one thread), with each proxy computing everything
itself and with the proxies of one architecture sharing their work (proxies.base.shared_work),
interleaved architecture by architecture in one process. Also checks that both give the same
scores, bit for bit.

Usage: OMP_NUM_THREADS=1 .venv/bin/python results/perf/shared_work.py [N_ARCHS]   (~1 min each)
Writes results/perf/shared_work.csv and prints the summary.
"""

import sys
import time
from pathlib import Path

import pandas as pd
import torch

from bench.inputs import make_batch
from bench.runner import architecture_seed
from proxies.base import all_proxy_names, get_proxy, shared_work
from spaces.base import get_space

OUT = Path(__file__).parent / "shared_work.csv"


def suite(model, batch, seed: int) -> dict[str, tuple[float, float]]:
    """(score, seconds) of every proxy on the model, each seeded as the runner seeds it."""
    results = {}
    for name in all_proxy_names():
        proxy = get_proxy(name)
        torch.manual_seed(seed)
        start = time.perf_counter()
        results[name] = (proxy(model, batch), time.perf_counter() - start)
    return results


def main(n: int) -> None:
    torch.set_num_threads(1)
    space = get_space("autoprox-t", num_classes=100)
    batch = make_batch("pink", 32, 64, 3, 100, 0)
    rows = []
    for arch in space.sample_many(n, 0):
        seed = architecture_seed(0, arch)
        torch.manual_seed(seed)
        model = space.build(arch, img_size=64)
        alone = suite(model, batch, seed)
        with shared_work():
            together = suite(model, batch, seed)
        for name in alone:
            rows.append({"arch": str(arch), "proxy": name, "seconds_alone": alone[name][1],
                         "seconds_shared": together[name][1],
                         "same_score": alone[name][0] == together[name][0]})
    table = pd.DataFrame(rows)
    table.to_csv(OUT, index=False)
    per_arch = table.groupby("arch")[["seconds_alone", "seconds_shared"]].sum()
    print(f"{n} architectures of autoprox-t at 64 px, batch 32, one thread")
    print(f"suite seconds per architecture, median: alone {per_arch['seconds_alone'].median():.2f}, "
          f"shared {per_arch['seconds_shared'].median():.2f} "
          f"(ratio {(per_arch['seconds_shared'] / per_arch['seconds_alone']).median():.2f})")
    print(f"every score identical: {bool(table['same_score'].all())}")
    print(table.groupby("proxy")[["seconds_alone", "seconds_shared"]].median().round(3).to_string())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
