#!/bin/bash
# Issue 21 experiments: one run (nice 19, 1 thread) and its row in /work/notes/accuracy-results.md.
# usage: run1.sh NAME MODEL.swiftdsl SEED STEPS [extra mplc train flags...]   (from the worktree's root)
set -u
name=$1; model=$2; seed=$3; steps=$4; shift 4
out=runs/exp/$name
mkdir -p runs/exp
load0=$(cut -d' ' -f1-3 /proc/loadavg)
cmd="nice -n 19 .build/debug/mplc train $model --seed $seed --steps $steps --threads 1 --out $out --quiet $*"
echo "$(date -u +%H:%M:%S) start $name: $cmd" >> runs/exp/log.txt
$cmd > runs/exp/$name.stdout 2> runs/exp/$name.stderr
rc=$?
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$(date -u +%H:%M:%S) end $name rc=$rc" >> runs/exp/log.txt
python3 - "$name" "$out/summary.json" "$cmd" "$rc" "$load0" "$load1" <<'PY'
import json, sys
name, path, cmd, rc, l0, l1 = sys.argv[1:]
def f(x): return "—" if x is None else f"{100*x:.2f}"
try:
    s = json.load(open(path)); a = s["test_accuracy"]
    row = (f"| {name} | `{cmd}` | {s['steps']} | {s['seed']} | {f(a['student_before_finetune'])} | "
           f"{f(a['student_after_finetune'])} | {f(a['student_ema_after_finetune'])} | {f(a['teacher_after_finetune'])} | "
           f"{s['wall_seconds']:.0f} | {l0} → {l1} |")
except Exception as e:
    row = f"| {name} | `{cmd}` | failed rc={rc} ({e}) | | | | | | | {l0} → {l1} |"
with open("/work/notes/accuracy-results.md", "a") as fh: fh.write(row + "\n")
PY
