#!/usr/bin/env bash
# Regenerates the checked-in reference runs. Resumable: every score goes into
# results/reference/cache.sqlite as it is computed, so rerunning skips what is done.
# Settings (fixed, not tuned): seed 0; batch 32; ViTs at 64 px (autoprox-t/pit-t are 224 px
# networks: 64 px keeps the CPU cost affordable, 16 patches + class token), NB201 at its native
# 32 px; inputs: 1/f (pink) noise, since the benchmarks' own images are not shipped.
# Needs the public files imported once (or `bench data fetch` on a machine with network):
#   bench data import ../shared/data/autoprox/gt_autoformer.pth
#   bench data import ../shared/data/autoprox/gt_autoformer_2.pth
#   bench data import ../shared/data/autoprox/gt_pit.pth
#   bench data import ../shared/data/nb201/naslib_zc_nasbench201.json
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=${BENCH:-.venv/bin/bench}
OUT=results/reference
COMMON=(--seed 0 --batch-size 32 --inputs pink --cache "$OUT/cache.sqlite")
PROXIES="all,ensemble:ntk+dss+params"

run() {  # run NAME BENCHMARK TARGET [options...]
    local name=$1 benchmark=$2 target=$3; shift 3
    "$BENCH" run --benchmark "$benchmark" --target "$target" --proxies "$PROXIES" "${COMMON[@]}" \
        --out "$OUT/$name" "$@"
}

# First the headline proxies on the three main ground truths (each later run reuses their scores
# from the cache and rewrites the same directory with every proxy).
# On NB201 the NTK takes TE-NAS's per-sample path (BatchNorm in train mode couples the samples),
# so ViNTK there waits for the full pass.
PROXIES="ntk,ntk_trace,vintk,params,flops,synflow"
run autoprox-t-c100_base    autoprox-autoformer c100_base_acc --img-size 64
PROXIES="ntk,ntk_trace,params,flops,synflow"
run nb201-cifar10           nb201-naslib        cifar10_val_acc --n 200
PROXIES="ntk,ntk_trace,vintk,params,flops,synflow"
run pit-t-c100_base         autoprox-pit        c100_base_acc --img-size 64

PROXIES="all,ensemble:ntk+dss+params"
run autoprox-t-c100_base    autoprox-autoformer c100_base_acc --img-size 64
run nb201-cifar10           nb201-naslib        cifar10_val_acc --n 200
run pit-t-c100_base         autoprox-pit        c100_base_acc --img-size 64
run autoprox-t-c100_kd      autoprox-autoformer c100_kd_acc --img-size 64
run autoprox-t-flower_base  autoprox-autoformer flower_base_acc --img-size 64
run autoprox-t-chaoyang_base autoprox-autoformer chaoyang_base_acc --img-size 64
run autoprox-t-imagenet_super autoprox-autoformer imagenet_super_acc --img-size 64
run pit-t-c100_kd           autoprox-pit        c100_kd_acc --img-size 64
run pit-t-flower_base       autoprox-pit        flower_base_acc --img-size 64
run pit-t-chaoyang_base     autoprox-pit        chaoyang_base_acc --img-size 64
