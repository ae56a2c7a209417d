#!/usr/bin/env bash
# The GPU check (results/perf/README.md, "GPU check"): what the proxies cost on one device and
# whether the device's scores can be trusted. Written for one GPU in under 10 minutes:
#   1. tests/bench/test_cuda.py (the CUDA-only code paths; they skip without a GPU);
#   2. `bench perf` (training step, ntk, vintk; GPU time by CUDA events and peak GPU memory on
#      CUDA) at autoprox-t 224 px / batch 64 and autoformer-b 224 px / batch 32;
#   3. every proxy on 5 autoformer-t architectures: the same score twice on the device
#      (bit-identical?), and CPU against the device on the same weights, built once on the CPU
#      and copied (Kendall τ and relative difference per proxy; gpu_check.py);
#   4. a 2,000-candidate random search with ntk on autoformer-t (224 px, batch 32), its
#      throughput extrapolated to 8,000 candidates in device-hours;
#   5. summary.json, summary.md and the figure gpu_check.png/pdf.
# Everything goes to results/perf/gpu-check-<device>/; the search's scores go to a fresh cache
# in a temporary folder, so that the throughput is the computation's, never the cache's.
#
# Usage: results/perf/gpu_check.sh [--device cuda|cpu] [--quick]
# --quick is the reduced setting for a CPU (or a quick look at a GPU): perf at 64 px with batch
# 16 (autoprox-t) and 8 (autoformer-b), one repeat; the numerics at 32 px, batch 8; the search
# 20 candidates at 32 px, batch 8. On a CPU torch runs one thread unless OMP_NUM_THREADS says
# otherwise (as the CPU perf tables in results/perf/README.md; on a shared machine a second
# thread stalls). The environment variables BENCH and PYTHON name the bench command and the
# Python (default: the checkout's .venv). The whole output is also kept in gpu_check.log.
set -euo pipefail
cd "$(dirname "$0")/../.."

DEVICE=cuda
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:-}; shift 2 ;;
        --device=*) DEVICE=${1#--device=}; shift ;;
        --quick) QUICK=1; shift ;;
        *) echo "usage: $0 [--device cuda|cpu] [--quick]" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in
    cuda | cpu) ;;
    *) echo "error: --device must be cuda or cpu, not '$DEVICE'" >&2; exit 2 ;;
esac

BENCH=${BENCH:-.venv/bin/bench}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=results/perf/gpu-check-$DEVICE
# Deterministic cuBLAS needs a fixed workspace, set before the process's first cuBLAS call.
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
# Tables in the log as wide as they need (rich reads COLUMNS when the output is no terminal).
export COLUMNS=${COLUMNS:-160}
SEARCH_THREADS=()
if [ "$DEVICE" = cpu ]; then
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    SEARCH_THREADS=(--threads "$OMP_NUM_THREADS")
fi

if [ "$QUICK" = 1 ]; then
    PERF_SIZE=64 PROX_BATCH=16 FORMER_BATCH=8 REPEATS=1
    NUMERICS_SIZE=32 NUMERICS_BATCH=8
    SEARCH_SIZE=32 SEARCH_BATCH=8 BUDGET=20
else
    PERF_SIZE=224 PROX_BATCH=64 FORMER_BATCH=32 REPEATS=3
    NUMERICS_SIZE=64 NUMERICS_BATCH=16
    SEARCH_SIZE=224 SEARCH_BATCH=32 BUDGET=2000
fi

if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "error: torch sees no CUDA device; run with --device cpu" >&2
    exit 2
fi

rm -rf "$OUT"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
CACHE_DIR=$(mktemp -d)
trap 'rm -rf "$CACHE_DIR"' EXIT
started=$(date +%s)
stage() { echo "[$(( $(date +%s) - started )) s] $*"; }
{
    echo "device $DEVICE, quick $QUICK, started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'threads', torch.get_num_threads())"
    if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true; fi
} > "$OUT/environment.txt"

stage "1/5 tests/bench/test_cuda.py"
# A failing test is recorded in test_cuda.log and the check goes on: the numbers below say more.
"$PYTHON" -m pytest -q tests/bench/test_cuda.py -rs 2>&1 | tee "$OUT/test_cuda.log" \
    || echo "tests/bench/test_cuda.py FAILED (see $OUT/test_cuda.log)" | tee -a "$OUT/test_cuda.log"

stage "2/5 bench perf"
perf() {  # perf SPACE BATCH
    "$BENCH" perf --space "$1" --img-size "$PERF_SIZE" --batch-size "$2" --device "$DEVICE" \
        --seed 0 --proxies ntk,vintk --repeats "$REPEATS" --naive-repeats 0 \
        --out "$OUT/perf-$1-${PERF_SIZE}px-b$2"
}
perf autoprox-t "$PROX_BATCH"
perf autoformer-b "$FORMER_BATCH"

stage "3/5 same score twice; CPU against $DEVICE on the same weights"
"$PYTHON" results/perf/gpu_check.py numerics --device "$DEVICE" --space autoformer-t \
    --img-size "$NUMERICS_SIZE" --batch-size "$NUMERICS_BATCH" --n 5 --out "$OUT"

stage "4/5 random search, $BUDGET candidates"
search_start=$(date +%s.%N)
"$BENCH" search --proxy ntk --space autoformer-t --strategy random --budget "$BUDGET" --seeds 1 \
    --img-size "$SEARCH_SIZE" --batch-size "$SEARCH_BATCH" --device "$DEVICE" \
    ${SEARCH_THREADS[@]+"${SEARCH_THREADS[@]}"} --cache "$CACHE_DIR/cache.sqlite" --out "$OUT/search"
search_seconds=$(awk -v start="$search_start" -v end="$(date +%s.%N)" 'BEGIN { print end - start }')

stage "5/5 summary"
"$PYTHON" results/perf/gpu_check.py summary --device "$DEVICE" --out "$OUT" \
    --search-seconds "$search_seconds"
stage "done: $OUT/summary.md"
cat "$OUT/summary.md"
