#!/usr/bin/env bash
# The resolution study: how Kendall τ of params, synflow (both ViT readings), snip, dss, ntk and
# vintk with CIFAR-100 accuracy of Auto-Prox's 100 AutoFormer-T networks moves with the input
# resolution (32, 64, 112, 224 px) and the input kind (1/f pink noise vs gaussian).
# Seed 0, batch 32, the reference cache (results/reference/cache.sqlite: the 64 px pink runs are
# shared with the reference runs). Resumable; stages go from cheap to dear so that every finished
# stage adds whole columns. `run.sh table` writes table.md and resolution.png/pdf from the runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=${BENCH:-.venv/bin/bench}
OUT=results/resolution
CHEAP=${CHEAP:-params,synflow,synflow_ln,snip,dss}
SIZES="32 64 112 224"

run() {  # run PROXIES SIZE INPUTS
    "$BENCH" run --benchmark autoprox-autoformer --target c100_base_acc --proxies "$1" \
        --img-size "$2" --inputs "$3" --seed 0 --batch-size 32 \
        --cache results/reference/cache.sqlite --out "$OUT/$2px-$3"
}

compute() {  # per input kind: the cheap proxies (seconds), then ntk (32 s at 224 px), then vintk (45 s)
    local size inputs
    for inputs in pink gaussian; do
        for size in $SIZES; do run "$CHEAP" "$size" "$inputs"; done
        for size in $SIZES; do run "$CHEAP,ntk" "$size" "$inputs"; done
        for size in $SIZES; do run "$CHEAP,ntk,vintk" "$size" "$inputs"; done
    done
}

table() {
    "$BENCH" compare "$OUT"/*px-* --proxies "params,synflow,synflow_ln,snip,dss,ntk,vintk" \
        --markdown "$OUT/table.md"
    .venv/bin/python "$OUT/plot.py" "$OUT"
}

case "${1:-all}" in
    compute) compute ;;
    table) table ;;
    all) compute; table ;;
    *) echo "usage: $0 [compute|table|all]" >&2; exit 2 ;;
esac
