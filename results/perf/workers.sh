#!/usr/bin/env bash
# Throughput of `bench run` with one and two local workers, side by side in one command:
# autoprox-t at 64 px, ntk, vintk and synflow (batch 32, pink noise), the same N sampled
# architectures in every setting, each on a fresh throwaway cache so that every score is computed.
#
#   results/perf/workers.sh [N]        (default N=10)
#
# Settings: 1 worker with the default threads (all cores), 1 worker with 1 thread, 2 workers with
# the default threads (cores / 2 each). Prints a markdown table (architectures per minute over
# the scoring's wall clock, from config.json, and over the whole command, start-up included), the
# load average before and after, and whether each setting's scores equal those of 1 worker at 1
# thread bit for bit; writes the table to results/perf/workers.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10}
BENCH=${BENCH:-.venv/bin/bench}
PYTHON=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_before=$(uptime)
for setting in "1:" "1:1" "2:"; do
    workers=${setting%%:*} threads=${setting#*:}
    name="w${workers}t${threads:-default}"
    start=$(date +%s.%N)
    "$BENCH" run --space autoprox-t --img-size 64 --proxies ntk,vintk,synflow --n "$N" --seed 0 \
        --batch-size 32 --inputs pink --device cpu --workers "$workers" ${threads:+--threads "$threads"} \
        --cache "$tmp/$name.sqlite" --out "$tmp/$name" > "$tmp/$name.log"
    echo "$start $(date +%s.%N)" > "$tmp/$name.wall"
done
load_after=$(uptime)
"$PYTHON" - "$tmp" "$N" "$load_before" "$load_after" <<'EOF' | tee results/perf/workers.md
import json, sys
from pathlib import Path

import pandas as pd

tmp, n, before, after = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
compared = ["arch_id", "proxy", "score", "error", "note"]
def scores(name):
    return pd.read_csv(tmp / name / "scores.csv", dtype=str, keep_default_na=False)[compared]
reference = scores("w1t1")
print(f"autoprox-t, 64 px, ntk,vintk,synflow, batch 32, {n} architectures, fresh cache each\n")
print("| workers | threads each | scoring s | archs/min (scoring) | command s | archs/min (command) "
      "| scores = 1 worker, 1 thread |")
print("|---|---|---|---|---|---|---|")
for name in ("w1tdefault", "w1t1", "w2tdefault"):
    info = json.loads((tmp / name / "config.json").read_text())
    scoring = info["execution"]["scoring_wall_seconds"]
    start, end = map(float, (tmp / f"{name}.wall").read_text().split())
    same = "bit for bit" if scores(name).equals(reference) else "no (round-off)"
    print(f"| {info['execution']['parallel_jobs']} | {info['threads']} | {scoring:.1f} | "
          f"{60 * n / scoring:.2f} | {end - start:.1f} | {60 * n / (end - start):.2f} | {same} |")
print(f"\nload before: {before.strip()}\nload after:  {after.strip()}")
EOF
