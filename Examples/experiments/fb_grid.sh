#!/bin/bash
# Issue 21, feedback variants at the model file's budget (1,500 steps + 300 finetuning, fashion_cnn, 1 thread, nice 19),
# two runs at a time, seed by seed so that a grid cut short still has complete pairs. Each run: fb_run.sh.
# usage (from the worktree's root): TRAINER=... Examples/experiments/fb_grid.sh OUT_DIR "SEEDS" [VARIANTS...]
# VARIANTS (default all): uda dot w20 base norm
set -u
out=$1; seeds=$2; shift 2
variants=${*:-uda dot w20 base norm}
flags() {
    case $1 in
    uda) echo "--mode uda" ;;                         # the UDA-only teacher (feedback off)
    dot) echo "" ;;                                   # the paper's rule (the model file's dot product)
    w20) echo "--feedback-weight 20" ;;               # feedback part ~ the UDA part's norm mid-run
    base) echo "--feedback-baseline 0.99" ;;          # the official code's moving-average baseline
    norm) echo "--feedback-normalise 0.99" ;;        # the coefficient in units of its usual size (W 1)
    esac
}
mkdir -p "$out"
echo "$(date -u +%FT%TZ) grid start: seeds $seeds, variants $variants, commit $(git rev-parse HEAD), trainer $TRAINER ($(sha256sum "$TRAINER" | cut -c1-16))" >>"$out/log.txt"
for seed in $seeds; do
    # no trailing blank: xargs -L would join the next line to it
    for v in $variants; do echo "$v-s$seed $seed $(flags "$v")" | sed 's/ *$//'; done
done | xargs -P 2 -L 1 bash -c 'Examples/experiments/fb_run.sh "$0" "$1" "$2" --eval-every 1500 ${@:3}' "$out"
echo "$(date -u +%FT%TZ) grid end" >>"$out/log.txt"
