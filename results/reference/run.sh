#!/usr/bin/env bash
# Regenerates the checked-in reference runs: `run.sh` does everything; `run.sh vit`, `nb201`,
# `nb201-variants` (four ViNTK variants on NB201, not in the checked-in runs: 10 h of one core),
# `native` (the ViT headline columns at 224 px), `searches` and `stability` one group each, so
# two cores can run groups side by side; and
# `run.sh headline` the tables of headline.md, autoprox-columns.md, partial-*.md (and of the
# README) and the report (report/report.md) from the runs.
# Resumable: every score goes into results/reference/cache.sqlite as it is computed, so
# rerunning skips what is done.
# Settings (fixed, not tuned): seed 0; batch 32; Auto-Prox's ViTs at 64 px (autoprox-t/pit-t are 224 px
# networks: 64 px keeps the CPU cost affordable, 16 patches + class token), NB201 at its native
# 32 px; inputs: 1/f (pink) noise, since the benchmarks' own images are not shipped (the
# embedded micro-fmnist: its shipped real images at 28 px).
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
ALL="all,ensemble:ntk+dss+params"
HEADLINE="ntk,ntk_trace,vintk,params,flops,synflow"
# Every proxy but the ViNTK family (~25 s per architecture and variant on NB201's per-sample path,
# ~45 s on AutoFormer-T at 224 px): what `nb201` computes first and `native` at 224 px.
NO_VINTK="dss,fisher,flops,grad_norm,grasp,jacob_cov,l2_norm,meco,meco_tokens,naswot,ntk,ntk_trace"
NO_VINTK+=",params,plain,snip,synflow,synflow_ln,zico,ensemble:ntk+dss+params"
# `native`'s proxies: ntk_trace left out too (the resolution study cached the 224 px ntk without it:
# another kernel, 32 s each).
NATIVE=${NO_VINTK/,ntk_trace/}
# `nb201`'s last stage: every proxy but four ViNTK variants (the variant ablation is measured on
# the ViT columns, where ViNTK's claim lies; `run.sh nb201-variants` adds them).
NB201_ALL="$ALL,-vintk_hp,-vintk_s4,-vintk_s0.5,-vintk_s2"
NB201=(nb201-cifar10 nb201-naslib cifar10_val_acc --n 200)  # the NB201 run: a seeded 200

run() {  # run PROXIES NAME BENCHMARK TARGET [options...]
    local proxies=$1 name=$2 benchmark=$3 target=$4; shift 4
    "$BENCH" run --benchmark "$benchmark" --target "$target" --proxies "$proxies" "${COMMON[@]}" \
        --out "$OUT/$name" "$@"
}

vit() {  # Auto-Prox's AutoFormer-T and PiT sets, every accuracy column; the main ones first
    run "$HEADLINE" autoprox-t-c100_base autoprox-autoformer c100_base_acc --img-size 64
    run "$HEADLINE" pit-t-c100_base      autoprox-pit        c100_base_acc --img-size 64
    run "$ALL" autoprox-t-c100_base autoprox-autoformer c100_base_acc --img-size 64
    run "$ALL" pit-t-c100_base      autoprox-pit        c100_base_acc --img-size 64
    # The embedded benchmark, on its shipped real Fashion-MNIST images at its native 28 px.
    "$BENCH" run --benchmark micro-fmnist --proxies "$ALL" --seed 0 --batch-size 32 --inputs real \
        --cache "$OUT/cache.sqlite" --out "$OUT/micro-fmnist"
    # Issue 3's check that every proxy runs without failure: 20 sampled autoprox-t, no ground truth.
    "$BENCH" run --space autoprox-t --n 20 --img-size 64 --proxies all "${COMMON[@]}" \
        --out "$OUT/autoprox-t-sampled20-all-proxies"
    # The other columns; each data set's class count gives the models another head, so scores
    # are computed once per data set (a *_kd column reuses its *_base column's scores).
    local column
    for column in c100_kd flower_base flower_kd chaoyang_base chaoyang_kd imagenet_super; do
        run "$ALL" "autoprox-t-$column" autoprox-autoformer "${column}_acc" --img-size 64
    done
    for column in c100_kd flower_base flower_kd chaoyang_base chaoyang_kd; do
        run "$ALL" "pit-t-$column" autoprox-pit "${column}_acc" --img-size 64
    done
    for column in c100_kd flower_kd chaoyang_kd imagenet_super; do
        run "$ALL" "autoprox-t-2-$column" autoprox-autoformer-2 "${column}_acc" --img-size 64
    done
}

nb201() {  # NB201 CIFAR-10, a seeded 200. The NTK takes TE-NAS's per-sample path there
    # (BatchNorm in train mode couples the samples): ~6 s per kernel, so the stages go from
    # cheap to dear and each writes the table of everything computed so far.
    run "ntk,ntk_trace,params,flops,synflow" "${NB201[@]}"
    run "$NO_VINTK" "${NB201[@]}"
    run "$NO_VINTK,vintk" "${NB201[@]}"  # ~46 s per architecture on one core
    run "$NO_VINTK,vintk,vintk_mean" "${NB201[@]}"  # ~28 s more (Θ(X) and Θ(H(X)) apart)
    run "$NB201_ALL" "${NB201[@]}"  # so that a proxy registered later is not left out
}

nb201_variants() {  # the four ViNTK variants `nb201` leaves out: ~46 s per architecture and
    # variant on one core (10 h for the four; minutes on a GPU)
    run "$ALL" "${NB201[@]}"
}

native() {  # the headline's ViT columns at the networks' native 224 px, every proxy but the ViNTK
    # family (~35 s per architecture on one core, grasp's Hessian-vector product 20 s of it) and
    # ntk_trace (see NATIVE)
    run "$NATIVE" autoprox-t-c100_base-224px autoprox-autoformer c100_base_acc --img-size 224
    run "$NATIVE" pit-t-c100_base-224px      autoprox-pit        c100_base_acc --img-size 224
}

searches() {  # issue 12's search summary: ntk, vintk and params, budget 50, 10 seeds, both strategies
    local proxy strategy
    for proxy in ntk vintk params; do
        for strategy in random evolution; do
            "$BENCH" search --proxy "$proxy" --benchmark micro-fmnist --strategy "$strategy" \
                --budget 50 --seeds 10 --seed 0 --batch-size 32 --inputs real \
                --cache "$OUT/cache.sqlite" --out "$OUT/search-micro-$proxy-$strategy"
            "$BENCH" search --proxy "$proxy" --benchmark autoprox-autoformer --target c100_base_acc \
                --strategy "$strategy" --budget 50 --seeds 10 --img-size 64 "${COMMON[@]}" \
                --out "$OUT/search-autoprox-t-$proxy-$strategy"
        done
    done
}

stability() {  # each proxy's own noise floor: 3 weight seeds and 3 input batches, 30 architectures
    "$BENCH" stability --proxies params,synflow,synflow_ln,snip,dss,ntk,vintk --benchmark micro-fmnist \
        --n 30 --repeats 3 --seed 0 --batch-size 32 --inputs real --cache "$OUT/cache.sqlite" \
        --out "$OUT/stability-micro"
}

headline() {  # the README's headline table, from the runs' correlations
    "$BENCH" compare "$OUT"/nb201-cifar10 "$OUT"/autoprox-t-c100_base "$OUT"/pit-t-c100_base \
        "$OUT"/micro-fmnist --proxies ntk,vintk,params,flops \
        --difference vintk-ntk --difference ntk-params --difference vintk-params \
        --markdown "$OUT/headline.md"
    # The same columns at 64 and 224 px (`run.sh native`; a 224 px run not computed yet is left out).
    local run native=()
    for run in autoprox-t-c100_base{,-224px} pit-t-c100_base{,-224px}; do
        if [ -d "$OUT/$run" ]; then native+=("$OUT/$run"); fi
    done
    "$BENCH" compare "${native[@]}" --proxies "$NATIVE" \
        --markdown "$OUT/headline-224px.md"
    "$BENCH" compare "$OUT"/autoprox-t-* "$OUT"/pit-t-* --proxies ntk,vintk,params,synflow,synflow_ln,zico,dss \
        --markdown "$OUT/autoprox-columns.md"
    # What model size does not explain: partial τ given params (and given FLOPs) on every run
    # written by this code (a run still waiting for `run.sh vit` to recompute it is named).
    local measure runs=()
    for run in "$OUT"/nb201-cifar10 "$OUT"/micro-fmnist "$OUT"/autoprox-t-* "$OUT"/pit-t-*; do
        if head -1 "$run/correlations.csv" | grep -q partial_params; then
            runs+=("$run")
        else
            echo "partial τ: $run not yet recomputed by this code, left out" >&2
        fi
    done
    for measure in params flops; do
        "$BENCH" compare "${runs[@]}" --proxies ntk,vintk,synflow,synflow_ln,dss,snip,zico,flops,params \
            --partial "$measure" --markdown "$OUT/partial-$measure.md"
    done
    "$BENCH" report "$OUT"/* --out "$OUT/report" --detail "$OUT"/nb201-cifar10 \
        --detail "$OUT"/micro-fmnist --detail "$OUT"/autoprox-t-c100_base --detail "$OUT"/pit-t-c100_base
}

case "${1:-all}" in
    vit) vit ;;
    nb201) nb201 ;;
    nb201-variants) nb201_variants ;;
    native) native ;;
    searches) searches ;;
    stability) stability ;;
    headline) headline ;;
    all) vit; nb201; nb201_variants; native; searches; stability; headline ;;
    *) echo "usage: $0 [vit|nb201|nb201-variants|native|searches|stability|headline|all]" >&2; exit 2 ;;
esac
