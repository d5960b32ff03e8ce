#!/bin/bash
# Issue 21: the paper-form ablation grid, teacher objective (supervised, randaugment, uda) x feedback (off, dot),
# Fashion-MNIST 1,000 labels, Examples/fashion_cnn.swiftdsl, seeds 0-4, two runs at a time, 1 thread each, nice 19.
# usage (from the worktree's root, after `swift build --product mplc`):
#   Examples/experiments/ablation.sh STEPS [OUT_DIR [mplc train flags...]]   (OUT_DIR default runs/ablation)
# A repeat of one column: MODEL (default Examples/fashion_cnn.swiftdsl), OBJECTIVES (default "supervised randaugment
# uda"), FEEDBACKS (default "off dot") and SEEDS (default "0 1 2 3 4") from the environment, e.g.
#   MODEL=Examples/fashion_wrn.swiftdsl OBJECTIVES=uda Examples/experiments/ablation.sh 1500 runs/wrn --eval-every 1500
#   OBJECTIVES=uda Examples/experiments/ablation.sh 1500 runs/labels100 --labels 100 --eval-every 1500
# Jobs go seed by seed, the off and dot runs of one (objective, seed) next to each other, so that a grid cut short
# still has complete pairs. Every command is logged in OUT_DIR/log.txt with its start and end time (UTC) and
# /proc/loadavg; each run keeps its folder (summary.json, metrics.jsonl, checkpoint) as OUT_DIR/<obj>-<fb>-s<seed>.
# Examples/experiments/ablation_table.py OUT_DIR prints the table, also while the grid runs.
# FEEDBACKS may name soft: its runs use SOFT_TRAINER (the mplc-run that `mplc train --feedback soft` built), paired
# with the off runs of TRAINER. A run cut short (its folder without summary.json) continues with --resume when the
# grid is started again, or starts again with --overwrite if it had written no checkpoint yet.
set -u
steps=$1
out=${2:-runs/ablation}
shift $(($# < 2 ? $# : 2))
model=${MODEL:-Examples/fashion_cnn.swiftdsl}
extra="$*" # e.g. --eval-every STEPS: the evaluations of 10,000 test images are a large part of a short run
mkdir -p "$out"
one() { # one OBJECTIVE FEEDBACK SEED
    local name="$1-$2-s$3"
    # TRAINER (optional): the mplc-run that `mplc train` built for the model (it prints its path), run directly to
    # save the debug mplc's compile of the model before every run (about a minute on a loaded machine).
    local cmd="nice -n 19 .build/debug/mplc train $model --seed $3 --steps $steps --threads 1"
    local trainer=${TRAINER:-}
    [ "$2" = soft ] && trainer=${SOFT_TRAINER:-}
    [ -n "$trainer" ] && cmd="nice -n 19 $trainer train --model-file $model --seed $3 --steps $steps --threads 1"
    cmd+=" --teacher-objective $1 --feedback $2 --out $out/$name --quiet $extra"
    if [ -e "$out/$name/summary.json" ]; then echo "$(date -u +%FT%TZ) skip $name (done)" >>"$out/log.txt"; return; fi
    if [ -e "$out/$name/checkpoint.safetensors" ]; then
        cmd+=" --resume"
    elif [ -e "$out/$name" ]; then # cut short before its first checkpoint: nothing to resume, so it starts again
        cmd+=" --overwrite"
    fi
    echo "$(date -u +%FT%TZ) start $name load $(cut -d' ' -f1-3 /proc/loadavg): $cmd" >>"$out/log.txt"
    # Appended, not truncated: a second attempt at a run that another grid is running (its run directory's lock
    # refuses it at once) must not clear that run's output.
    $cmd >>"$out/$name.stdout" 2>>"$out/$name.stderr"
    local rc=$? # before any other command (a $(date) would reset it)
    echo "$(date -u +%FT%TZ) end $name rc=$rc load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/log.txt"
}
export -f one
export steps out extra model TRAINER SOFT_TRAINER
echo "$(date -u +%FT%TZ) grid start: steps $steps, commit $(git rev-parse HEAD), trainer ${TRAINER:-mplc train}, soft trainer ${SOFT_TRAINER:-mplc train}, model $model, objectives ${OBJECTIVES:-all}, feedbacks ${FEEDBACKS:-off dot}, seeds ${SEEDS:-0-4}, flags $extra" >>"$out/log.txt"
for seed in ${SEEDS:-0 1 2 3 4}; do
    for objective in ${OBJECTIVES:-supervised randaugment uda}; do
        for feedback in ${FEEDBACKS:-off dot}; do echo "$objective $feedback $seed"; done
    done
done | xargs -P 2 -L 1 bash -c 'one "$@"' _
echo "$(date -u +%FT%TZ) grid end" >>"$out/log.txt"
