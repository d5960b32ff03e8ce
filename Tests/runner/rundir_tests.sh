# The run directory, checked writes and signals (docs/RUNNER.md, "Run directory" and "Signals"): sourced by
# run_tests.sh (it uses pass, fail, expect, json_number, $WORK, $RUN, $T, $FAST).
RD="$WORK/rundir"
mkdir -p "$RD"
SHORT=(train --data "$FAST" --steps 21 --finetune-steps 0 --labels 100 --eval-every 1000 --quiet) # one evaluation

wait_until() { # wait_until SECONDS COMMAND...: polls until COMMAND succeeds; returns 1 after SECONDS
    local end=$((SECONDS + $1))
    shift
    until "$@" 2>/dev/null; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.05
    done
}
has_line() { grep -q -- "$2" "$1"; } # has_line FILE PATTERN
finished() { local s; s=$(ps -o stat= -p "$1"); [ -z "$s" ] || [[ $s == Z* ]]; } # finished PID (gone or a zombie)
# wait_bg PID: waits at most 60 s for a background run (then kills it, exit 137), returns its exit code
wait_bg() {
    wait_until 60 finished "$1" || kill -9 "$1" 2>/dev/null
    wait "$1"
}

# ---------------------------------------------------------------- lock
"$RUN" train --data "$FAST" --steps 100000 --labels 100 --eval-every 1000 --checkpoint-every 100000 --out "$RD/busy" \
    --quiet >/dev/null 2>"$RD/busy.err" &
BUSY=$!
if wait_until 30 has_line "$RD/busy/metrics.jsonl" '"eval"'; then
    expect "a second run on a directory in use: exit 1 at once, naming the other run's pid" 1 \
        "busy is used by another run \(pid $BUSY\)" -- "$RUN" "${SHORT[@]}" --out "$RD/busy"
    expect "--resume of a directory in use: exit 1" 1 "busy is used by another run \(pid $BUSY\)" -- \
        "$RUN" train --data "$FAST" --resume --out "$RD/busy" --quiet

    # ------------------------------------------------------------ signals: finish the step, save, exit 143
    # --checkpoint-every 100000: no periodic checkpoint, so whatever is on disk was written for the signal.
    kill -TERM "$BUSY"
    wait_bg "$BUSY"
    rc=$?
    msg=$(cat "$RD/busy.err")
    n=$(sed -n 's/.*interrupted by SIGTERM after step \([0-9]*\); checkpoint in .*busy\/checkpoint.safetensors; continue with the same command and --resume$/\1/p' <<<"$msg")
    saved=$("$T" st-meta "$RD/busy/checkpoint.safetensors" step 2>/dev/null)
    if [ "$rc" -eq 143 ] && [ -n "$n" ] && [ "$saved" = "$n" ]; then
        pass "SIGTERM: exit 143, one line naming the step ($n) and the checkpoint, which holds that step"
    else
        fail "SIGTERM: exit $rc (want 143), checkpoint step '${saved}'" "$msg"
    fi
    # The resumed run is the uninterrupted run, bit for bit.
    if [ -n "$n" ]; then
        BFLAGS=(train --data "$FAST" --steps 100000 --labels 100 --eval-every 1000 --checkpoint-every 100000 --quiet)
        "$RUN" train --data "$FAST" --resume --out "$RD/busy" --stop-at $((n + 37)) --quiet >/dev/null 2>&1
        "$RUN" "${BFLAGS[@]}" --out "$RD/straight" --stop-at $((n + 37)) >/dev/null 2>&1
        if cmp -s "$RD/busy/checkpoint.safetensors" "$RD/straight/checkpoint.safetensors" &&
            same_metrics "$RD/busy/metrics.jsonl" "$RD/straight/metrics.jsonl"; then
            pass "SIGTERM at step $n, resumed to step $((n + 37)): checkpoint and metrics.jsonl identical to a run without the signal (cmp)"
        else fail "SIGTERM and resume: differs from the run without the signal"; fi
    fi
else
    fail "lock: the long run did not start" "$(cat "$RD/busy.err")"
    kill -9 "$BUSY"
fi

# SIGINT during finetuning: exit 130, a finetuning checkpoint. A script's background jobs ignore SIGINT, and the
# runner leaves an inherited SIG_IGN alone, so env --default-signal gives the run the default disposition.
env --default-signal=INT "$RUN" train --data "$FAST" --steps 21 --eval-every 21 --finetune-steps 100000 \
    --checkpoint-every 100000 --labels 100 --out "$RD/ft" --quiet >/dev/null 2>"$RD/ft.err" &
PID=$!
if wait_until 30 has_line "$RD/ft/metrics.jsonl" '"eval"'; then
    sleep 0.3
    kill -INT "$PID"
    wait_bg "$PID"
    rc=$?
    phase=$("$T" st-meta "$RD/ft/checkpoint.safetensors" phase 2>/dev/null)
    if [ "$rc" -eq 130 ] && [ "$phase" = finetune ] && grep -q "interrupted by SIGINT after step" "$RD/ft.err"; then
        pass "SIGINT during finetuning: exit 130, a finetuning checkpoint (step $("$T" st-meta "$RD/ft/checkpoint.safetensors" step))"
    else fail "SIGINT during finetuning: exit $rc (want 130), checkpoint phase '$phase'" "$(cat "$RD/ft.err")"; fi
else
    fail "SIGINT: the run did not start" "$(cat "$RD/ft.err")"
    kill -9 "$PID"
fi

# Two runs started together on one --out: one trains, the other stops at once (before, they raced and trained
# over each other). The second normally finds the directory locked; should the first be done by then, it finds
# the first's run there instead.
"$RUN" "${SHORT[@]}" --steps 2000 --out "$RD/race" >/dev/null 2>"$RD/race1.err" &
RACE=$!
"$RUN" "${SHORT[@]}" --steps 2000 --out "$RD/race" >/dev/null 2>"$RD/race2.err"
rc2=$?
wait_bg "$RACE"
rc1=$?
if [ $((rc1 + rc2)) -eq 1 ] && grep -qE "race (is used by another run \(pid [0-9]+\)|holds another run)" "$RD/race1.err" "$RD/race2.err"; then
    pass "two runs on one --out at once: one exit 0, the other exit 1 ($(cat "$RD/race1.err" "$RD/race2.err" | grep -o 'is used by another run\|holds another run'))"
else fail "two runs on one --out: exits $rc1 and $rc2" "$(cat "$RD/race1.err" "$RD/race2.err")"; fi

# ---------------------------------------------------------------- another run in the directory
F="$RD/finished"
"$RUN" "${SHORT[@]}" --steps 30 --out "$F" >/dev/null 2>&1
mkdir -p "$RD/before"
cp "$F"/* "$RD/before/"
expect "a new run in a finished run's directory: exit 1, names the run's files and the way out" 1 \
    "finished holds another run \(checkpoint.safetensors, metrics.jsonl, summary.json, options.json\); continue it with --resume, replace it with --overwrite, or give another --out" -- \
    "$RUN" "${SHORT[@]}" --out "$F"
if cmp -s "$F/checkpoint.safetensors" "$RD/before/checkpoint.safetensors" && cmp -s "$F/metrics.jsonl" "$RD/before/metrics.jsonl" &&
    cmp -s "$F/summary.json" "$RD/before/summary.json"; then pass "the finished run's checkpoint, metrics and summary are untouched"
else fail "the refused run changed the finished run's files"; fi
# --overwrite: the old run's files go first, so none of them sits beside the new run (stopped early here).
expect "--overwrite replaces it" 0 "stopped after step 5" -- "$RUN" "${SHORT[@]}" --out "$F" --overwrite --stop-at 5
if [ ! -e "$F/summary.json" ] && [ "$("$T" st-meta "$F/checkpoint.safetensors" steps)" = 21 ] &&
    [ "$(grep -c . "$F/metrics.jsonl")" -lt "$(grep -c . "$RD/before/metrics.jsonl")" ]; then
    pass "--overwrite: the new run's checkpoint and metrics, no old summary.json"
else fail "--overwrite left the old run's files" "$(ls -la "$F")"; fi
expect "--resume with --overwrite: usage error" 2 "give one" -- "$RUN" "${SHORT[@]}" --out "$F" --overwrite --resume
# A run killed before its first checkpoint leaves metrics.jsonl: that is a run too, which only --overwrite replaces.
mkdir -p "$RD/early" && : >"$RD/early/metrics.jsonl"
expect "a directory with metrics.jsonl and no checkpoint: exit 1, --resume not offered" 1 \
    "early holds another run \(metrics.jsonl, no checkpoint\); replace it with --overwrite, or give another --out" -- \
    "$RUN" "${SHORT[@]}" --out "$RD/early"

# Without --out: the default name, then -2, -3, ... (two plain runs must both work, also when started together).
mkdir -p "$RD/cwd"
(cd "$RD/cwd" && "$RUN" "${SHORT[@]}" >/dev/null 2>&1)
expect "a second run without --out: goes to the default name with -2 and says so" 0 \
    "runs/fake_linear-mpl-seed0 is taken by another run; this run goes to runs/fake_linear-mpl-seed0-2" -- \
    sh -c "cd '$RD/cwd' && '$RUN' train --data '$FAST' --steps 21 --finetune-steps 0 --labels 100 --eval-every 1000"
(cd "$RD/cwd" && { "$RUN" "${SHORT[@]}" --steps 300 >/dev/null 2>&1 & "$RUN" "${SHORT[@]}" --steps 300 >/dev/null 2>&1; wait; })
if [ -f "$RD/cwd/runs/fake_linear-mpl-seed0/summary.json" ] && [ -f "$RD/cwd/runs/fake_linear-mpl-seed0-2/summary.json" ] &&
    [ -f "$RD/cwd/runs/fake_linear-mpl-seed0-3/summary.json" ] && [ -f "$RD/cwd/runs/fake_linear-mpl-seed0-4/summary.json" ]; then
    pass "two runs without --out started together: each in its own directory (-3, -4)"
else fail "runs without --out" "$(ls -R "$RD/cwd/runs")"; fi
expect "--resume without --out continues the default directory itself" 0 "already finished" -- \
    sh -c "cd '$RD/cwd' && '$RUN' train --data '$FAST' --resume"

# ---------------------------------------------------------------- symlinks and unwritable directories
echo "precious" >"$RD/victim"
mkdir -p "$RD/planted"
ln -s "$RD/victim" "$RD/planted/checkpoint.safetensors.tmp"
ln -s "$RD/victim" "$RD/planted/summary.json.tmp"
if "$RUN" "${SHORT[@]}" --out "$RD/planted" >/dev/null 2>"$RD/planted.err" && [ "$(cat "$RD/victim")" = precious ] &&
    [ -f "$RD/planted/checkpoint.safetensors" ] && [ ! -L "$RD/planted/checkpoint.safetensors" ] &&
    [ -f "$RD/planted/summary.json" ] && [ ! -L "$RD/planted/summary.json" ]; then
    pass "symlinks planted at checkpoint.safetensors.tmp and summary.json.tmp: removed, never written through"
else fail "planted symlinks: the victim holds '$(head -c 40 "$RD/victim")'" "$(cat "$RD/planted.err"; ls -la "$RD/planted")"; fi
# metrics.jsonl is never written through a symlink either (the reproduction: a link to /dev/full, exit 0 before).
"$RUN" "${SHORT[@]}" --out "$RD/full" --stop-at 10 >/dev/null 2>&1
ln -sf /dev/full "$RD/full/metrics.jsonl"
expect "resume with metrics.jsonl a symlink to /dev/full: exit 1" 1 \
    "full/metrics.jsonl: cannot open for writing: it is a symbolic link" -- \
    "$RUN" train --data "$FAST" --resume --out "$RD/full" --quiet
# Nor through a hard link: a second name planted for metrics.jsonl (another file's contents) stays untouched.
"$RUN" "${SHORT[@]}" --out "$RD/linked" --stop-at 10 >/dev/null 2>&1
cp "$RD/linked/metrics.jsonl" "$RD/linked-victim" && ln -f "$RD/linked-victim" "$RD/linked/metrics.jsonl"
echo "precious" >>"$RD/linked-victim"
expect "resume with metrics.jsonl hard-linked to another file: exit 1" 1 \
    "linked/metrics.jsonl: has 2 names \(hard links\); a run writes only a file of its own" -- \
    "$RUN" train --data "$FAST" --resume --out "$RD/linked" --quiet
if [ "$(tail -n 1 "$RD/linked-victim")" = precious ]; then pass "the hard-linked file is not truncated or appended to"
else fail "the hard-linked file was written" "$(tail -n 3 "$RD/linked-victim")"; fi

# A directory that cannot be written is found before the first step, not at the first checkpoint. As root,
# permissions are enforced by dropping the capabilities that bypass them.
unprivileged() { if [ "$(id -u)" = 0 ]; then setpriv --bounding-set=-dac_override,-dac_read_search "$@"; else "$@"; fi; }
"$RUN" "${SHORT[@]}" --steps 60 --checkpoint-every 1000 --out "$RD/ro" --stop-at 5 >/dev/null 2>&1
cp "$RD/ro/metrics.jsonl" "$RD/ro.metrics"
chmod a-w "$RD/ro"
expect "resume in a directory that is not writable: exit 1 before the first step" 1 \
    "ro: the run directory is not writable: Permission denied" -- \
    unprivileged "$RUN" train --data "$FAST" --resume --out "$RD/ro" --quiet
chmod u+w "$RD/ro"
if cmp -s "$RD/ro/metrics.jsonl" "$RD/ro.metrics"; then pass "nothing was trained or logged in the unwritable directory"
else fail "the run trained in an unwritable directory" "$(diff "$RD/ro.metrics" "$RD/ro/metrics.jsonl" | head -5)"; fi

# ---------------------------------------------------------------- every write is checked
# A file size limit (RLIMIT_FSIZE, 2 KiB; SIGXFSZ ignored so that the write fails with EFBIG) fails writes the way
# a full disk does, and reaches the write path (metrics.jsonl as a symlink to /dev/full is now refused at open).
# Before, a metrics line that could not be written was lost and the run went on to its checkpoint.
limited() { bash -c 'trap "" XFSZ; ulimit -f 2; exec "$@"' limited "$@"; }
expect "metrics.jsonl cannot be written (file size limit): exit 1 at once, naming the file" 1 \
    "limited/metrics.jsonl: write failed: File too large; stopping the run" -- \
    limited "$RUN" train --data "$FAST" --steps 200 --eval-every 100 --checkpoint-every 200 --labels 100 --out "$RD/limited" --quiet
"$RUN" train --data "$FAST" --steps 200 --labels 100 --eval-every 50 --checkpoint-every 50 --out "$RD/kept" --stop-at 100 --quiet >/dev/null 2>&1
cp "$RD/kept/checkpoint.safetensors" "$RD/kept.safetensors"
expect "a resumed run whose metrics cannot be written: exit 1, naming the file and the last checkpoint" 1 \
    "kept/metrics.jsonl: write failed: File too large; stopping the run \(the last checkpoint, if any, stays in .*kept/checkpoint.safetensors\)" -- \
    limited "$RUN" train --data "$FAST" --resume --out "$RD/kept" --quiet
if cmp -s "$RD/kept/checkpoint.safetensors" "$RD/kept.safetensors"; then pass "the last good checkpoint stays"
else fail "the checkpoint changed after a failed write"; fi
expect "eval with its standard output on a full device: exit 1" 1 "standard output: write failed: No space left on device" -- \
    sh -c '"$1" eval --checkpoint "$2" --data "$3" >/dev/full' eval "$RUN" "$RD/kept.safetensors" "$FAST"
