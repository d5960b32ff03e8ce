# The runner under MPI (docs/RUNNER.md, "Running under MPI"): sourced by run_tests.sh (it uses runner_objects, pass,
# fail, expect, $WORK, $RUN, $FAST, $RUNNER, $FAKE, $CFLAGS, $LIBS). The fake model built for 2 and 4 ranks (-DFAKE_RANKS) takes
# per-rank batches but its hand-written step sums nothing over the ranks, so these tests check what the runner does
# (rank counts, failures, who writes, sharded evaluation, the global batch), not the step's exactness, which
# MPLEndToEndTests checks with compiled models (MPITests.swift). Skipped, saying so, where Open MPI is not installed.
if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
    echo "SKIP MPI tests: mpicc or mpirun missing (Debian: openmpi-bin libopenmpi-dev; .ci/install-deps installs them)"
    return 0 2>/dev/null || exit 0
fi
MP="$WORK/mpi"
mkdir -p "$MP"
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# Every mpirun under a timeout: a rank left waiting for another in a collective would hang the suite. Under the
# sanitizers (SanitizerTests), LeakSanitizer is off for MPI processes: Open MPI leaves its own allocations
# (strdup'ed names in components it unloads) at MPI_Finalize; ASan and UBSan stay on, and the runner's leaks are
# checked by the one-process suite, which runs the same code.
NOLEAK="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi() { ASAN_OPTIONS=$NOLEAK timeout 120 "${MPIRUN[@]}" "$@"; }
MSHORT=(train --data "$FAST" --steps 30 --labels 100 --eval-every 15 --finetune-steps 4 --quiet)

mpi_build() { # mpi_build NAME OUTPUT FLAGS-AND-SOURCES...
    local name=$1 out=$2
    shift 2
    if o=$(mpicc $CFLAGS -DMPLC_MPI "$@" "$FAKE/model.c" -I"$RUNNER" -I"$FAKE" $LIBS -o "$out" 2>&1); then
        pass "build $name"
    else
        fail "build $name" "$o"
    fi
}
# Each set of defines changes model.h, which the runner's files read: its own objects (runner_objects shares the
# model-free ones).
RUNNER_CC=mpicc runner_objects "$MP/objects2" -DMPLC_MPI -DFAKE_RANKS=2 -I"$FAKE"
OBJ2=$(ls "$MP"/objects2/*.o | grep -v '/main\.o$')
RUNNER_CC=mpicc runner_objects "$MP/objects2-nan" -DMPLC_MPI -DFAKE_RANKS=2 -DFAKE_TEACHER_LR=1e30 -I"$FAKE"
RUNNER_CC=mpicc runner_objects "$MP/objects4" -DMPLC_MPI -DFAKE_RANKS=4 -I"$FAKE"
mpi_build "mplc-run for 2 ranks (mpicc -DMPLC_MPI -DFAKE_RANKS=2)" "$MP/run2" -DFAKE_RANKS=2 $OBJ2 "$MP/objects2/main.o"
mpi_build "mplc-run for 2 ranks with a diverging teacher" "$MP/run2-nan" -DFAKE_RANKS=2 -DFAKE_TEACHER_LR=1e30 \
    "$MP"/objects2-nan/*.o
mpi_build "test_mpi for 2 ranks" "$MP/test_mpi" -DFAKE_RANKS=2 "$HERE/test_mpi.c" $OBJ2
mpi_build "test_mpi for 4 ranks" "$MP/test_mpi4" -DFAKE_RANKS=4 "$HERE/test_mpi.c" \
    $(ls "$MP"/objects4/*.o | grep -v '/main\.o$')
# -fsyntax-only: the #error is the compiler's first pass; the code generation of every file took 50 s under ASan.
if o=$(cc $CFLAGS -fsyntax-only -DFAKE_RANKS=2 "$RUNNER"/*.c "$FAKE/model.c" -I"$FAKE" 2>&1); then
    fail "a model for 2 ranks built without -DMPLC_MPI: refused" "$o"
elif grep -q "compiled with --ranks > 1: build the runner with mpicc -DMPLC_MPI" <<<"$o"; then
    pass "a model for 2 ranks built without -DMPLC_MPI: a compile error that says how to build it"
else
    fail "a model for 2 ranks built without -DMPLC_MPI: the error does not say how" "$o"
fi

# ---------------------------------------------------------------- rank counts
expect "2-rank trainer in 3 processes: exit 2 from rank 0, no hang" 2 \
    "train: model fake_linear was compiled for 2 ranks .*mpirun -np 2.*this job has 3 processes" -- \
    mpi -np 3 "$MP/run2" "${MSHORT[@]}" --out "$MP/three"
expect "2-rank trainer without mpirun (one process): exit 2" 2 "compiled for 2 ranks.*this job has 1 process$" -- \
    env ASAN_OPTIONS="$NOLEAK" timeout 60 "$MP/run2" "${MSHORT[@]}" --out "$MP/one"
expect "replay of a 2-rank trainer in 4 processes: exit 2" 2 "replay: model fake_linear was compiled for 2 ranks" -- \
    mpi -np 4 "$MP/run2" replay --checkpoint x --batches x --steps 1 --out x --losses x
if [ ! -e "$MP/three" ] && [ ! -e "$MP/one" ]; then pass "a refused rank count creates no run directory"
else fail "a refused rank count created a run directory"; fi

# ---------------------------------------------------------------- a failing rank ends the job
# MPMD: rank 1 alone gets bad input; rank 0 gets good input and would wait for rank 1 in the first collective.
expect "rank 1 with a missing data directory: the job ends, exit 1, rank named" 1 \
    "error: rank 1 of 2: $MP/nodata: missing file train-images-idx3-ubyte" -- \
    mpi -np 1 "$MP/run2" "${MSHORT[@]}" --out "$MP/fail-a" : -np 1 "$MP/run2" "${MSHORT[@]}" --data "$MP/nodata" \
    --out "$MP/fail-b"
# Rank 1 diverges at step 3, while rank 0 is inside the run, waiting in the step's collectives.
expect "rank 1 diverging mid-run: the job ends, exit 3, no hang" 3 "error: rank 1 of 2: mpl step [0-9]+: output .* is (NaN|Inf)" -- \
    mpi -np 1 "$MP/run2" "${MSHORT[@]}" --steps 400 --out "$MP/nan-a" : -np 1 "$MP/run2-nan" "${MSHORT[@]}" \
    --steps 400 --out "$MP/nan-b"
if [ ! -e "$MP/nan-b" ] && [ ! -e "$MP/fail-b" ]; then pass "the failing rank (not rank 0) created no run directory"
else fail "rank 1 created a run directory"; fi

# ---------------------------------------------------------------- rank 0 alone writes
# MPMD again: each rank is told another --out; only rank 0's may exist.
if out=$(mpi -np 1 "$MP/run2" "${MSHORT[@]}" --out "$MP/w0" : -np 1 "$MP/run2" "${MSHORT[@]}" --out "$MP/w1" \
    2>"$MP/w.err"); then
    pass "2-rank run: exit 0"
else
    fail "2-rank run (exit $?)" "$(cat "$MP/w.err")"
fi
if [ -f "$MP/w0/checkpoint.safetensors" ] && [ -f "$MP/w0/metrics.jsonl" ] && [ -f "$MP/w0/summary.json" ] &&
    [ ! -e "$MP/w1" ]; then
    pass "rank 0 alone writes the run directory (checkpoint, metrics, summary); rank 1 creates nothing"
else
    fail "run directories of a 2-rank run" "$(ls -l "$MP/w0" "$MP/w1" 2>&1)"
fi
if [ "$(grep -c 'fake_linear mpl seed 0' <<<"$out")" = 1 ]; then pass "one result line on stdout (rank 0's)"
else fail "result lines of a 2-rank run" "$out"; fi
if [ "$(grep -c '"eval":"test"' "$MP/w0/metrics.jsonl")" = 3 ] && ! grep -q 'mplc-run: warning' <(sort "$MP/w.err" | uniq -d); then
    pass "metrics.jsonl has each evaluation once; no message twice on stderr"
else
    fail "metrics or stderr of a 2-rank run" "$(cat "$MP/w.err")"
fi

# ---------------------------------------------------------------- resume, --stop-at
if mpi -np 2 "$MP/run2" "${MSHORT[@]}" --out "$MP/stop" --stop-at 10 >/dev/null 2>"$MP/stop.err" &&
    grep -q "stopped after step 10" "$MP/stop.err" && grep -q '"step":10' "$MP/stop/metrics.jsonl" &&
    mpi -np 2 "$MP/run2" "${MSHORT[@]}" --out "$MP/stop" --resume >/dev/null 2>>"$MP/stop.err" &&
    grep -q '"phase":"done"' <(strings "$MP/stop/checkpoint.safetensors" | head -c 100000); then
    pass "--stop-at 10 under 2 ranks, then --resume from rank 0's checkpoint: the run completes"
else
    fail "--stop-at and --resume under 2 ranks" "$(cat "$MP/stop.err")"
fi

# ---------------------------------------------------------------- evaluation sharded over the ranks
C="$MP/w0/checkpoint.safetensors"
one=$(timeout 60 "$RUN" eval --checkpoint "$C" --data "$FAST" 2>&1)
for n in 2 3; do
    many=$(mpi -np "$n" "$MP/run2" eval --checkpoint "$C" --data "$FAST" 2>&1)
    if [ -n "$one" ] && [ "$one" = "$many" ]; then
        pass "eval in $n processes (chunks sharded, counts and confusion matrices summed) prints one process's line"
    else
        fail "eval in $n processes differs from one process" "$(printf '%s\n%s' "$one" "$many")"
    fi
done
expect "cache in 2 processes: exit 2 (one process only)" 2 "cache: this command runs as one process" -- \
    mpi -np 2 "$MP/run2" cache --checkpoint "$C" --out "$MP/c.npy" --data "$FAST"

# ---------------------------------------------------------------- the global batch
# test_mpi: each rank fills its step arena for a few steps; the ranks' rows, put together, must be the global batch:
# the labeled and unlabeled indices at positions t*B + g of the seeded orders (the one-process batch), and the same
# augmented pixels under 2 and under 4 ranks (one stream per global image).
if o2=$(mpi -np 2 "$MP/test_mpi" "$FAST" "$MP/batch2.bin" 2>&1) && o4=$(mpi -np 4 "$MP/test_mpi4" "$FAST" "$MP/batch4.bin" 2>&1); then
    pass "global batch test ran (2 and 4 ranks): $o2"
    if cmp -s "$MP/batch2.bin" "$MP/batch4.bin"; then pass "2 and 4 ranks draw the same global batch, pixel for pixel"
    else fail "the global batches of 2 and 4 ranks differ"; fi
else
    fail "global batch test" "$o2 $o4"
fi
