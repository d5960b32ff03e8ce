#!/bin/bash
# Issue 21, feedback variants: one run of Examples/fashion_cnn.swiftdsl's trainer (1 thread, nice 19), logged with
# start/end UTC time, exit code and /proc/loadavg in OUT_DIR/log.txt.
# usage (from the worktree's root): TRAINER=.build-mplc/<model>-<key>/mplc-run Examples/experiments/fb_run.sh \
#     OUT_DIR NAME SEED [mplc-run train flags...]   (MODEL_FILE: the model file, default Examples/fashion_cnn.swiftdsl)
set -u
out=$1; name=$2; seed=$3; shift 3
model=${MODEL_FILE:-Examples/fashion_cnn.swiftdsl}
mkdir -p "$out"
# A run folder that exists is done or running (another driver's): left alone.
if [ -e "$out/$name" ]; then echo "$(date -u +%FT%TZ) skip $name (exists)" >>"$out/log.txt"; exit 0; fi
cmd="nice -n 19 $TRAINER train --model-file $model --seed $seed --threads 1 --out $out/$name --quiet $*"
echo "$(date -u +%FT%TZ) start $name load $(cut -d' ' -f1-3 /proc/loadavg): $cmd" >>"$out/log.txt"
$cmd >"$out/$name.stdout" 2>"$out/$name.stderr"
rc=$?
echo "$(date -u +%FT%TZ) end $name rc=$rc load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/log.txt"
