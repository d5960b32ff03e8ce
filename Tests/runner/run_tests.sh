#!/usr/bin/env bash
# Builds mplc-run with the fake model (Tests/runner/fake_model) and runs the runner's tests:
# unit tests (test_runner.c), then end-to-end tests of the binary. Exits non-zero on any failure.
#   Tests/runner/run_tests.sh   (KEEP=1 keeps the work directory; EXTRA_CFLAGS="-fsanitize=address,undefined" adds flags)
#   CI runs it once, under AddressSanitizer and UndefinedBehaviorSanitizer (SanitizerTests): a run without them
#   would check nothing more, but for two kinds of check that a sanitized build cannot make, which use binaries
#   built with PLAIN_CFLAGS there (RUN_PLAIN, and reduced_tests.sh's): an address-space cap (small_vm; ASan's
#   shadow memory needs terabytes of address space) and the Reduced MPL training runs (slow under ASan).
#   PART=1 runs this file's own tests, PART=2 the suites it sources at the end (run directories, RGB, Reduced MPL,
#   MPI); both build first. The Swift tests run the two parts side by side, which halves the suite's wall time.
# Needs: cc, OpenBLAS, zlib, and Fashion-MNIST in $MPLC_TEST_DATA (default /usr/share/datasets/fashion-mnist).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNNER="$ROOT/Templates/runner"
FAKE="$HERE/fake_model"
DATA=${MPLC_TEST_DATA:-/usr/share/datasets/fashion-mnist}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mplc-runner-tests.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
PLAIN_CFLAGS="-std=c11 -O3 -Wall -Wextra -Werror"
CFLAGS="$PLAIN_CFLAGS ${EXTRA_CFLAGS:-}"
SANITIZED=0
[[ "${EXTRA_CFLAGS:-}" == *sanitize* ]] && SANITIZED=1
LIBS="-lopenblas -lz -lm"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     | /' <<<"$2"; return 0; }

# expect NAME CODE PATTERN -- command...: the command exits with CODE and its stderr+stdout match PATTERN.
expect() {
    local name=$1 code=$2 pattern=$3
    shift 4
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$name (exit $rc, expected $code)" "$out"; return 1; fi
    if ! grep -qE -- "$pattern" <<<"$out"; then fail "$name (output does not match /$pattern/)" "$out"; return 1; fi
    pass "$name"
}

# small_vm COMMAND...: runs it with its address space capped at 1 GB, so that a file read whole, or a data set
# allocated whole, fails differently from a refusal. The command is a plain build ($RUN_PLAIN): a sanitized one
# cannot start under the cap.
small_vm() { (ulimit -v 1000000 && exec "$@"); }

# same_metrics A B: two metrics.jsonl files hold the same lines but for each line's wall-clock "time" (its last key).
same_metrics() { cmp -s <(sed -E 's/,"time":"[^"]*"\}$/}/' "$1") <(sed -E 's/,"time":"[^"]*"\}$/}/' "$2"); }

json_number() { # json_number FILE KEY: the first number after "KEY":
    sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1
}

PART=${PART:-all}
case "$PART" in 1 | 2 | all) ;; *) echo "PART must be 1, 2 or all, not '$PART'"; exit 2 ;; esac

# ---------------------------------------------------------------- build
cd "$WORK" || exit 1
build() { # build NAME EXTRA-FLAGS...
    local name=$1
    shift
    if out=$(cc $CFLAGS "$@" $LIBS 2>&1); then pass "build $name"; else fail "build $name" "$out"; echo "cannot continue"; exit 1; fi
}
# The runner's files that read no model header (cc -MM finds none of the fake model's), as RunnerBuild finds them
# to share them between models. image.c (stb_image) is the slowest: 15 s under the sanitizers of SanitizerTests.
MODEL_FREE=""
for src in "$RUNNER"/*.c; do
    if ! deps=$(cc -MM -I"$FAKE" "$src" 2>&1); then fail "cc -MM $src" "$deps"; echo "cannot continue"; exit 1; fi
    grep -q "$FAKE" <<<"$deps" || MODEL_FREE+=" $(basename "$src" .c) "
done
compile_object() { # compile_object SOURCE OBJECT FLAGS...
    local src=$1 object=$2 out
    shift 2
    if ! out=$(${RUNNER_CC:-cc} $CFLAGS "$@" -c "$src" -o "$object" 2>&1); then
        fail "build the runner's $(basename "$src") into $(dirname "$object")" "$out"
        echo "cannot continue"
        exit 1
    fi
}
# runner_objects DIR FLAGS...: the runner's objects for one model and one set of defines in DIR/*.o, which its
# binaries then link (mplc-run with main.o, a test program without it). The files that read the model's header are
# compiled into DIR; the model-free ones are compiled once per compiler ($RUNNER_CC, cc unless set; mpi_tests.sh:
# mpicc), $CFLAGS and the FLAGS that are not the model's (-I folders, the fake model's -DFAKE_ defines), and linked
# into DIR. Before, every binary compiled the whole runner again, the largest part of this suite's CPU time.
runner_objects() {
    local dir=$1 src name flag
    shift
    local free_flags=()
    for flag in "$@"; do case $flag in -I* | -DFAKE_*) ;; *) free_flags+=("$flag") ;; esac; done
    local shared
    shared="$WORK/objects-model-free-$(cksum <<<"${RUNNER_CC:-cc} $CFLAGS ${free_flags[*]}" | cut -d' ' -f1)"
    mkdir -p "$dir" "$shared"
    for src in "$RUNNER"/*.c; do
        name=$(basename "$src" .c)
        if [[ "$MODEL_FREE" == *" $name "* ]]; then
            [ -e "$shared/$name.o" ] || compile_object "$src" "$shared/$name.o" "${free_flags[@]}"
            ln -sf "$shared/$name.o" "$dir/$name.o"
        else
            compile_object "$src" "$dir/$name.o" "$@"
        fi
    done
}
runner_objects "$WORK/objects" -I"$FAKE"
OBJ=$(ls "$WORK"/objects/*.o | grep -v '/main\.o$')
build "mplc-run (runner/*.c + fake model.c, as the compiler will)" $OBJ "$WORK/objects/main.o" "$FAKE/model.c" -I"$FAKE" \
    -o mplc-run
build "test_runner" "$HERE/test_runner.c" $OBJ "$FAKE/model.c" -I"$RUNNER" -I"$FAKE" -o test_runner
if [ "$PART" != 2 ]; then # the other defines change model.h, which the runner's files read: their own objects
    runner_objects "$WORK/objects-nan" -I"$FAKE" -DFAKE_TEACHER_LR=1e30
    build "mplc-run with a diverging teacher (-DFAKE_TEACHER_LR=1e30)" "$WORK"/objects-nan/*.o "$FAKE/model.c" \
        -I"$FAKE" -DFAKE_TEACHER_LR=1e30 -o mplc-run-nan
    REHASH='-DFAKE_MODEL_HASH="fa4e000000000000000000000000000000000000000000000000000000000099"'
    runner_objects "$WORK/objects-rehash" -I"$FAKE" "$REHASH"
    build "mplc-run compiled again from the same recipe (-DFAKE_MODEL_HASH)" "$WORK"/objects-rehash/*.o \
        "$FAKE/model.c" -I"$FAKE" "$REHASH" -o mplc-run-rehash
fi
RUN="$WORK/mplc-run"
T="$WORK/test_runner"
RUN_PLAIN=$RUN
if [ "$SANITIZED" = 1 ] && [ "$PART" != 2 ]; then
    CFLAGS=$PLAIN_CFLAGS build "mplc-run without the sanitizers, for the address-space cap" "$RUNNER"/*.c "$FAKE/model.c" \
        -I"$FAKE" -o mplc-run-plain
    RUN_PLAIN="$WORK/mplc-run-plain"
fi


# ---------------------------------------------------------------- Fashion-MNIST
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
    fail "Fashion-MNIST not found in $DATA (set MPLC_TEST_DATA)"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
# The main run reads the (gzip) files in $DATA; later runs read an uncompressed copy, which loads faster.
FAST="$WORK/fashion-mnist"
mkdir -p "$FAST"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f "$DATA/$f.gz" ]; then gzip -dc "$DATA/$f.gz" >"$FAST/$f"; else cp "$DATA/$f" "$FAST/$f"; fi
done

if [ "$PART" != 2 ]; then

# ---------------------------------------------------------------- structure (issue 16)
# No two runner files call each other, directly or round a loop: file A depends on file B when A's object
# uses a symbol B's defines. tsort(1) fails on a loop and names its files.
call_graph() { # over the runner's objects built above
    for o in objects/*.o; do nm --defined-only -g "$o" | awk -v f="$(basename "$o" .o)" '{print $3, f}'; done | sort >defined
    for o in objects/*.o; do nm -u "$o" | awk -v f="$(basename "$o" .o)" '{print $2, f}'; done | sort >used
    join defined used | awk '$2 != $3 {print $3, $2}' | sort -u
}
if edges=$(call_graph) && loops=$(tsort <<<"$edges" 2>&1 >/dev/null) && [ -z "$loops" ]; then
    pass "no circular calls between runner files ($(wc -l <<<"$edges") file dependencies)"
else
    fail "runner files call each other in a loop" "$loops"
fi

# ---------------------------------------------------------------- unit tests
if out=$("$T" unit "$WORK/unit" 2>&1); then pass "unit tests ($(tail -n 1 <<<"$out"))"; else fail "unit tests" "$out"; fi
build "test_pool (the generated library's thread pool)" "$HERE/test_pool.c" -I"$ROOT/Templates/runtime" -I"$HERE" -o test_pool
# A lost wake-up would hang: the timeout turns that into a failure.
if out=$(timeout 300 "$WORK/test_pool" 2>&1); then pass "thread pool ($(tail -n 1 <<<"$out"))"; else fail "thread pool (exit $?)" "$out"; fi
# Winograd convolutions: the plain loops, then the AVX2 tiles (-march=native) that the generated models use here.
for arch in "" -march=native "-march=native -DMPLC_WINOGRAD_BLOCK_BYTES=1"; do
    build "test_winograd ${arch:-(plain loops)}" "$HERE/test_winograd.c" -I"$ROOT/Templates/runtime" -I"$HERE" $arch -o test_winograd
    if out=$("$WORK/test_winograd" 2>&1); then pass "Winograd ${arch:-plain} ($(tail -n 1 <<<"$out"))"; else fail "Winograd ${arch:-plain}" "$out"; fi
done

# ---------------------------------------------------------------- command line
expect "--help prints usage, exit 0" 0 "usage:" -- "$RUN" --help
expect "train --help" 0 "mplc-run train" -- "$RUN" train --help
expect "no arguments: usage, exit 2" 2 "usage:" -- "$RUN"
expect "unknown command: exit 2" 2 "unknown command 'frobnicate'" -- "$RUN" frobnicate
expect "unknown flag: exit 2" 2 "unknown flag '--lables'" -- "$RUN" train --lables 100
expect "bad integer: exit 2" 2 "--steps needs a positive integer, got '12x'" -- "$RUN" train --steps 12x
expect "negative seed: exit 2" 2 "--seed needs a non-negative integer" -- "$RUN" train --seed -1
expect "bad mode: exit 2" 2 "--mode must be mpl, supervised or uda" -- "$RUN" train --mode fixmatch
expect "missing value: exit 2" 2 "--out needs a value" -- "$RUN" train --out
expect "replay without its flags: exit 2" 2 "replay needs --checkpoint" -- "$RUN" replay --steps 3
expect "eval without --checkpoint: exit 2" 2 "eval needs --checkpoint" -- "$RUN" eval

# ---------------------------------------------------------------- bad data
for kind in idx-badmagic idx-badlabel idx-truncated idx-wrongsize idx-countmismatch; do
    "$T" gen-data "$WORK/data-$kind" "$kind"
done
expect "wrong IDX magic: exit 1, names the file" 1 "data-idx-badmagic/train-images-idx3-ubyte.gz: wrong magic number" -- \
    "$RUN" train --data "$WORK/data-idx-badmagic" --labels 20 --out "$WORK/bad" --quiet
expect "label out of range: exit 1" 1 "train-labels-idx1-ubyte: label 10 of example 200 is outside \[0, 10\)" -- \
    "$RUN" train --data "$WORK/data-idx-badlabel" --labels 20 --out "$WORK/bad" --quiet
expect "truncated images: exit 1" 1 "train-images-idx3-ubyte.gz: truncated" -- \
    "$RUN" train --data "$WORK/data-idx-truncated" --labels 20 --out "$WORK/bad" --quiet
expect "wrong image size for the model: exit 1" 1 "images are 27x27 with 1 channel, model fake_linear expects 28x28" -- \
    "$RUN" train --data "$WORK/data-idx-wrongsize" --labels 20 --out "$WORK/bad" --quiet
expect "image and label counts differ: exit 1" 1 "399 labels but .* has 400 images" -- \
    "$RUN" train --data "$WORK/data-idx-countmismatch" --labels 20 --out "$WORK/bad" --quiet
# A 762 KB gzip whose header claims a million images (784 MB of zeros follow, a valid stream): refused from the
# header against MPLC_MEMORY_LIMIT, with the sizes, before the body is read or anything allocated for it.
"$T" gen-data "$WORK/data-idx-bomb" idx-bomb
expect "gzip bomb: the header's size counts against the memory limit before the body is read" 1 \
    "data-idx-bomb/train-images-idx3-ubyte.gz: the 1000000x28x28 images of the IDX header need 784000000 bytes; with the [0-9]+ bytes already planned .* more than the 400000000 bytes of MPLC_MEMORY_LIMIT; not read" -- \
    small_vm env MPLC_MEMORY_LIMIT=400000000 "$RUN_PLAIN" train --data "$WORK/data-idx-bomb" --labels 20 --out "$WORK/bad" --quiet
expect "missing data directory: exit 1" 1 "missing file train-images-idx3-ubyte" -- \
    "$RUN" train --data "$WORK/nowhere" --out "$WORK/bad" --quiet
expect "--labels not divisible by the classes: exit 1" 1 "--labels 105 must be a positive multiple of the 10 classes" -- \
    "$RUN" train --data "$DATA" --labels 105 --out "$WORK/bad" --quiet
expect "--labels larger than the training set: exit 1" 1 "--labels 70000 is larger than the 60000 training examples" -- \
    "$RUN" train --data "$DATA" --labels 70000 --out "$WORK/bad" --quiet
if [ -e "$WORK/bad" ]; then fail "bad input left a run directory behind"; else pass "bad input creates no run directory"; fi

# ---------------------------------------------------------------- training on Fashion-MNIST
if out=$("$RUN" train --data "$DATA" --steps 200 --labels 100 --out "$WORK/mpl" 2>"$WORK/mpl.err"); then
    acc=$(json_number "$WORK/mpl/summary.json" student_after_finetune)
    before=$(json_number "$WORK/mpl/summary.json" student_before_finetune)
    teacher=$(json_number "$WORK/mpl/summary.json" teacher_after_finetune)
    rate=$(grep -o '[0-9.]* steps/s' "$WORK/mpl.err" | tail -n 1)
    if awk -v a="$acc" 'BEGIN { exit !(a > 0.5) }'; then
        pass "mpl: 200 steps, 100 labels: student $acc (before finetuning $before), teacher $teacher; $rate"
    else
        fail "mpl: student accuracy $acc is not above 0.5" "$(cat "$WORK/mpl/summary.json")"
    fi
    n_eval=$(grep -c '"eval"' "$WORK/mpl/metrics.jsonl")
    n_log=$(grep -c '"mean_over_steps"' "$WORK/mpl/metrics.jsonl")
    if [ "$n_eval" -eq 11 ] && [ "$n_log" -eq 45 ]; then pass "metrics.jsonl: $n_eval evaluations, $n_log log lines (every 5% of each phase)"
    else fail "metrics.jsonl: $n_eval evaluations (want 11), $n_log log lines (want 20 + 25)"; fi
    n_progress=$(grep -c '^\[mpl\]' "$WORK/mpl.err")
    if [ "$n_progress" -eq 20 ]; then pass "progress: one line per 5% when stderr is not a terminal"
    else fail "progress: $n_progress [mpl] lines on stderr (want 20)" "$(cat "$WORK/mpl.err")"; fi
    if grep -q '"arena_bytes": {"state": 125600' "$WORK/mpl/summary.json" && grep -q '"MPLC_FEEDBACK": "dot-product"' \
        "$WORK/mpl/summary.json" && grep -q "student" <<<"$out"; then pass "summary.json has arena sizes and the compiled recipe; result on stdout"
    else fail "summary.json/stdout content" "$out"; fi
    phase=$("$T" st-meta "$WORK/mpl/checkpoint.safetensors" phase)
    if [ "$phase" = done ]; then pass "final checkpoint (phase done)"; else fail "final checkpoint phase is '$phase'"; fi
else
    fail "mpl training run" "$(cat "$WORK/mpl.err")"
fi
expect "eval command on the trained checkpoint" 0 '"acc_student":0\.[5-9]' -- \
    "$RUN" eval --checkpoint "$WORK/mpl/checkpoint.safetensors" --data "$FAST"
for mode in uda supervised; do
    if "$RUN" train --data "$FAST" --mode $mode --steps 100 --finetune-steps 20 --labels 100 --out "$WORK/$mode" --quiet \
        >/dev/null 2>"$WORK/$mode.err"; then
        acc=$(json_number "$WORK/$mode/summary.json" student_after_finetune)
        if awk -v a="$acc" 'BEGIN { exit !(a > 0.4) }'; then pass "$mode: 100 steps: student $acc"
        else fail "$mode: student accuracy $acc"; fi
    else
        fail "$mode training run" "$(cat "$WORK/$mode.err")"
    fi
done

# ---------------------------------------------------------------- teacher objective and feedback (docs/RUNNER.md)
TF=(train --data "$FAST" --steps 40 --finetune-steps 0 --labels 100 --quiet)
for v in "uda --mode uda" "off --feedback off" "dot --feedback dot" "sup --teacher-objective supervised --feedback off" \
    "ra --teacher-objective randaugment --feedback off"; do
    set -- $v
    name=$1
    shift
    "$RUN" "${TF[@]}" "$@" --out "$WORK/tf-$name" >/dev/null 2>"$WORK/tf-$name.err" || fail "teacher: run $*" "$(cat "$WORK/tf-$name.err")"
done
if "$T" st-equal "$WORK/tf-uda/checkpoint.safetensors" "$WORK/tf-off/checkpoint.safetensors"; then
    pass "--feedback off trains exactly as --mode uda (the teacher's update is the UDA-only teacher's)"
else fail "--feedback off differs from --mode uda"; fi
if ! "$T" st-equal "$WORK/tf-dot/checkpoint.safetensors" "$WORK/tf-off/checkpoint.safetensors" 2>/dev/null &&
    ! "$T" st-equal "$WORK/tf-sup/checkpoint.safetensors" "$WORK/tf-off/checkpoint.safetensors" 2>/dev/null &&
    ! "$T" st-equal "$WORK/tf-ra/checkpoint.safetensors" "$WORK/tf-sup/checkpoint.safetensors" 2>/dev/null; then
    pass "the dot feedback, the supervised objective and randaugment each change the trained weights"
else fail "a teacher objective or feedback changed nothing"; fi
if ! grep '"mean_over_steps"' "$WORK/tf-sup/metrics.jsonl" | grep -qv '"uda_weight":0[,}]' &&
    grep '"mean_over_steps"' "$WORK/tf-off/metrics.jsonl" | grep -qv '"uda_weight":0[,}]'; then
    pass "--teacher-objective supervised: UDA weight 0 in every step (uda: not)"
else fail "--teacher-objective supervised: a step with a UDA weight" "$(head -3 "$WORK/tf-sup/metrics.jsonl")"; fi
if grep -q '"teacher_objective": "randaugment",' "$WORK/tf-ra/summary.json" && grep -q '"feedback": "off",' "$WORK/tf-ra/summary.json" &&
    grep -q '"feedback": "dot-product",' "$WORK/tf-dot/summary.json" && [ "$("$T" st-meta "$WORK/tf-ra/checkpoint.safetensors" teacher_objective)" = randaugment ]; then
    pass "summary.json and the checkpoint record the teacher objective and feedback"
else fail "teacher objective/feedback not recorded" "$(head -12 "$WORK/tf-ra/summary.json")"; fi
expect "--feedback loss-difference on a dot-product step: refused, says how to compile it" 2 \
    'step computes dot-product feedback .*mplc train --feedback loss-difference' -- "$RUN" "${TF[@]}" --feedback loss-difference --out "$WORK/tf-x"
expect "--feedback soft on a hard-label step: refused" 2 'step computes dot-product feedback' -- \
    "$RUN" "${TF[@]}" --feedback soft --out "$WORK/tf-x"
# --pseudo-labels and --pseudo-labels-from are compiled into the step; the trainer records them (mplc train passes
# them on), so a value it was not compiled with is refused rather than recorded and not trained.
expect "--pseudo-labels-from weak-view on a strong-view step: refused, says how to compile it" 2 \
    'compiled with --pseudo-labels-from strong-view .*mplc train --pseudo-labels-from weak-view' -- \
    "$RUN" "${TF[@]}" --pseudo-labels-from weak-view --out "$WORK/tf-x"
expect "--pseudo-labels soft:2 on a hard-label step: refused" 2 \
    'compiled with hard-argmax pseudo labels.*mplc train --pseudo-labels soft:2' -- \
    "$RUN" "${TF[@]}" --pseudo-labels soft:2 --out "$WORK/tf-x"
if "$RUN" "${TF[@]}" --pseudo-labels hard-argmax --pseudo-labels-from strong-view --out "$WORK/tf-same" --stop-at 5 \
    >"$WORK/tf-same.out" 2>&1 && grep -q '"pseudo_labels_from": "strong-view"' "$WORK/tf-same/options.json"; then
    pass "--pseudo-labels and --pseudo-labels-from as compiled: accepted and recorded in options.json"
else fail "--pseudo-labels hard-argmax --pseudo-labels-from strong-view" "$(cat "$WORK/tf-same.out")"; fi
expect "--mode uda with --feedback dot: refused" 2 '--mode uda is --teacher-objective uda --feedback off' -- \
    "$RUN" "${TF[@]}" --mode uda --feedback dot --out "$WORK/tf-x"
expect "--mode supervised with --teacher-objective: refused" 2 'trains the student alone' -- \
    "$RUN" "${TF[@]}" --mode supervised --teacher-objective uda --out "$WORK/tf-x"
expect "--teacher-objective bogus: refused" 2 "must be supervised, randaugment or uda, got 'bogus'" -- \
    "$RUN" "${TF[@]}" --teacher-objective bogus --out "$WORK/tf-x"
"$RUN" "${TF[@]}" --teacher-objective randaugment --feedback off --out "$WORK/tf-rs" --stop-at 20 >/dev/null 2>&1
expect "--resume adopts the checkpoint's teacher objective; a different one is refused" 1 \
    'written with --teacher-objective randaugment, but this command says --teacher-objective uda' -- \
    "$RUN" train --data "$FAST" --quiet --resume --out "$WORK/tf-rs" --teacher-objective uda
if "$RUN" train --data "$FAST" --quiet --resume --out "$WORK/tf-rs" >/dev/null 2>&1 &&
    "$T" st-equal "$WORK/tf-ra/checkpoint.safetensors" "$WORK/tf-rs/checkpoint.safetensors"; then
    pass "--resume without the flags continues a randaugment run exactly"
else fail "randaugment run resumed differs"; fi

# ---------------------------------------------------------------- feedback variants (docs/RUNNER.md, "Feedback variants")
# The fake model's step computes f*(h - b)*CE like the generated one (its student learns from step 20 on).
"$RUN" "${TF[@]}" --feedback-weight 1 --out "$WORK/fv-w1" >/dev/null 2>"$WORK/fv-w1.err" || fail "variants: --feedback-weight 1" "$(cat "$WORK/fv-w1.err")"
if "$T" st-equal "$WORK/tf-dot/checkpoint.safetensors" "$WORK/fv-w1/checkpoint.safetensors" &&
    same_metrics "$WORK/tf-dot/metrics.jsonl" "$WORK/fv-w1/metrics.jsonl" && ! grep -q feedback_variant "$WORK/tf-dot/summary.json" &&
    [ "$("$T" st-meta "$WORK/tf-dot/checkpoint.safetensors" feedback_variant)" = "1,0,0" ]; then
    pass "--feedback-weight 1 is the paper's rule: the same weights and metrics as the default run"
else fail "--feedback-weight 1 differs from the default run"; fi
for v in "w3 --feedback-weight 3" "base --feedback-baseline 0.9" "norm --feedback-normalise 0.9"; do
    set -- $v
    name=$1
    shift
    "$RUN" "${TF[@]}" "$@" --out "$WORK/fv-$name" >/dev/null 2>"$WORK/fv-$name.err" || fail "variants: run $*" "$(cat "$WORK/fv-$name.err")"
done
if ! "$T" st-equal "$WORK/fv-w3/checkpoint.safetensors" "$WORK/tf-dot/checkpoint.safetensors" 2>/dev/null &&
    ! "$T" st-equal "$WORK/fv-base/checkpoint.safetensors" "$WORK/tf-dot/checkpoint.safetensors" 2>/dev/null &&
    ! "$T" st-equal "$WORK/fv-norm/checkpoint.safetensors" "$WORK/tf-dot/checkpoint.safetensors" 2>/dev/null; then
    pass "the feedback weight, the baseline and the normaliser each change the trained weights"
else fail "a feedback variant changed nothing"; fi
# The weight is the step's feedback_scale in every learning step; the baseline follows h (0 before the student learns).
if grep '"mean_over_steps"' "$WORK/fv-w3/metrics.jsonl" | grep '"phase":"mpl"' | grep -qv '"feedback_scale":3,' ||
    ! grep -q '"feedback_variant": {"weight": 3, "baseline_decay": 0, "normalise_decay": 0' "$WORK/fv-w3/summary.json"; then
    fail "--feedback-weight 3: not the step's feedback_scale or not in summary.json" "$(grep feedback "$WORK/fv-w3/summary.json")"
elif [ "$(grep '"phase":"mpl"' "$WORK/fv-base/metrics.jsonl" | grep -c '"feedback_baseline":0,')" -lt 1 ] ||
    ! grep '"phase":"mpl"' "$WORK/fv-base/metrics.jsonl" | grep '"mean_over_steps"' | tail -1 | grep -q '"feedback_scale":0\.\(9\|89999\)[0-9]*,"feedback_baseline":-\?[0-9.e-]*[1-9]'; then
    fail "--feedback-baseline 0.9: the step's inputs are not logged as documented" "$(grep '"phase":"mpl"' "$WORK/fv-base/metrics.jsonl" | tail -2)"
else pass "metrics.jsonl and summary.json show the variants' step inputs (scale W·D, a moving baseline)"; fi
expect "--feedback-weight 0: refused" 2 "needs a finite number W > 0" -- "$RUN" "${TF[@]}" --feedback-weight 0 --out "$WORK/fv-x"
expect "--feedback-weight nan: refused" 2 "needs a finite number W > 0" -- "$RUN" "${TF[@]}" --feedback-weight nan --out "$WORK/fv-x"
expect "--feedback-baseline 1: refused" 2 "needs the decay D of a moving average, 0 < D < 1" -- \
    "$RUN" "${TF[@]}" --feedback-baseline 1 --out "$WORK/fv-x"
expect "--feedback-normalise -0.5: refused" 2 "needs the decay D of a moving average" -- \
    "$RUN" "${TF[@]}" --feedback-normalise -0.5 --out "$WORK/fv-x"
expect "--feedback-weight with --mode uda: refused" 2 "changes the teacher's feedback, which is off here \(--mode uda\)" -- \
    "$RUN" "${TF[@]}" --mode uda --feedback-weight 2 --out "$WORK/fv-x"
expect "--feedback-baseline with --feedback off: refused" 2 "which is off here \(--feedback off\)" -- \
    "$RUN" "${TF[@]}" --feedback off --feedback-baseline 0.9 --out "$WORK/fv-x"
expect "--feedback-wait as long as the run: refused" 2 "the teacher would never get feedback" -- \
    "$RUN" "${TF[@]}" --feedback-wait 40 --out "$WORK/fv-x"
expect "--feedback-wait with --feedback off: refused" 2 "which is off here \(--feedback off\)" -- \
    "$RUN" "${TF[@]}" --feedback off --feedback-wait 30 --out "$WORK/fv-x"
[ -e "$WORK/fv-x" ] && fail "a refused feedback variant left a run directory"
# The teacher's wait: feedback_scale 0 in the steps before N, the weight from step N on (a log line shows its last
# step's input: the line of step 30 its step index 29). Waiting only as long as the student (h is 0 there) changes
# nothing; waiting longer changes the trained weights.
for w in 20 30; do
    "$RUN" "${TF[@]}" --feedback-weight 3 --feedback-wait $w --out "$WORK/fv-wait$w" >/dev/null 2>"$WORK/fv-wait$w.err" ||
        fail "variants: --feedback-wait $w" "$(cat "$WORK/fv-wait$w.err")"
done
wrong=$(grep '"phase":"mpl"' "$WORK/fv-wait30/metrics.jsonl" | grep '"mean_over_steps"' |
    sed -n 's/.*"step":\([0-9]*\),.*"feedback_scale":\([^,]*\),.*/\1 \2/p' |
    awk '($1 <= 30 && $2 != 0) || ($1 > 30 && $2 != 3) { print } END { if (NR < 15) print "only " NR " lines" }')
if [ -n "$wrong" ] || ! grep -q '"wait": 30,' "$WORK/fv-wait30/summary.json" ||
    ! grep -q '"feedback_wait": 30' "$WORK/fv-wait30/options.json"; then
    fail "--feedback-wait 30: feedback_scale is not 0 before step 30 and 3 after, or the run does not record the wait" "$wrong"
elif ! "$T" st-equal "$WORK/fv-wait20/checkpoint.safetensors" "$WORK/fv-w3/checkpoint.safetensors" ||
    "$T" st-equal "$WORK/fv-wait30/checkpoint.safetensors" "$WORK/fv-w3/checkpoint.safetensors" 2>/dev/null; then
    fail "--feedback-wait: waiting as long as the student changed the weights, or waiting longer did not"
else pass "--feedback-wait N: no feedback before step N, the weight after it; recorded in summary.json and options.json"; fi
# Resume with the baseline and the normaliser: bit-exact, and a different value is refused.
FV=(train --data "$FAST" --steps 40 --finetune-steps 5 --labels 100 --quiet --checkpoint-every 3 --feedback-baseline 0.9 --feedback-normalise 0.8 --feedback-weight 2 --feedback-wait 28)
"$RUN" "${FV[@]}" --out "$WORK/fv-full" >/dev/null 2>&1 || fail "variants: uninterrupted run"
"$RUN" "${FV[@]}" --out "$WORK/fv-rs" --stop-at 31 >/dev/null 2>&1
expect "--resume of a baseline run with another --feedback-baseline: refused" 1 \
    'started with --feedback-baseline 0.9.*, but this command says --feedback-baseline 0.5' -- \
    "$RUN" train --data "$FAST" --quiet --resume --out "$WORK/fv-rs" --feedback-baseline 0.5
expect "--resume of a run with another --feedback-wait: refused" 1 'started with --feedback-wait 28.*--feedback-wait 10' -- \
    "$RUN" train --data "$FAST" --quiet --resume --out "$WORK/fv-rs" --feedback-wait 10
if "$RUN" train --data "$FAST" --quiet --resume --out "$WORK/fv-rs" >/dev/null 2>&1 &&
    cmp -s "$WORK/fv-full/checkpoint.safetensors" "$WORK/fv-rs/checkpoint.safetensors" &&
    same_metrics "$WORK/fv-full/metrics.jsonl" "$WORK/fv-rs/metrics.jsonl"; then
    pass "--resume with --feedback-baseline, --feedback-normalise and --feedback-wait is bit-exact (the averages are in the checkpoint)"
else fail "a run with feedback variants resumed differs"; fi
# The averages' metadata is read strictly: trailing text after the third field is refused, like a missing field.
"$RUN" "${FV[@]}" --out "$WORK/fv-avg" --stop-at 31 >/dev/null 2>&1
good=$("$T" st-meta "$WORK/fv-avg/checkpoint.safetensors" feedback_averages)
for bad in "${good}x" "${good%,*}"; do
    "$T" st-set "$WORK/fv-avg/checkpoint.safetensors" feedback_averages "$bad"
    expect "--resume refuses feedback_averages '$bad'" 1 'metadata "feedback_averages" is missing or malformed' -- \
        "$RUN" train --data "$FAST" --quiet --resume --out "$WORK/fv-avg"
done

# ---------------------------------------------------------------- resume is bit-exact
FLAGS=(train --data "$FAST" --steps 60 --finetune-steps 20 --labels 100 --eval-every 15 --checkpoint-every 7 --quiet)
"$RUN" "${FLAGS[@]}" --out "$WORK/full" >/dev/null 2>&1 || fail "resume: uninterrupted run"
resume_case() { # resume_case NAME STOP-AT
    local dir="$WORK/$1"
    "$RUN" "${FLAGS[@]}" --out "$dir" --stop-at "$2" >/dev/null 2>"$dir.err" || { fail "resume $1: first part" "$(cat "$dir.err")"; return; }
    local step
    step=$("$T" st-meta "$dir/checkpoint.safetensors" step)
    # lines logged after the checkpoint must disappear on resume; add a stray one to prove it
    echo '{"stray":"line written after the checkpoint"}' >>"$dir/metrics.jsonl"
    "$RUN" train --data "$FAST" --quiet --resume --out "$dir" >/dev/null 2>"$dir.err" || { fail "resume $1: second part" "$(cat "$dir.err")"; return; }
    if cmp -s "$WORK/full/checkpoint.safetensors" "$dir/checkpoint.safetensors" && same_metrics "$WORK/full/metrics.jsonl" "$dir/metrics.jsonl"; then
        pass "resume $1 (stopped at step $2 of 80, checkpoint step $step): checkpoint (cmp) and metrics.jsonl (but the times) identical"
    else
        fail "resume $1: differs from the uninterrupted run" "$(diff "$WORK/full/metrics.jsonl" "$dir/metrics.jsonl" | head)"
    fi
}
resume_case mid-mpl 30
resume_case odd-step 33
resume_case mid-finetune 71
expect "resume a finished run: reports it again" 0 "already finished" -- "$RUN" train --data "$FAST" --resume --out "$WORK/full"
if cmp -s "$WORK/full/checkpoint.safetensors" "$WORK/mid-mpl/checkpoint.safetensors"; then pass "resuming a finished run leaves its checkpoint alone"
else fail "resuming a finished run changed its checkpoint"; fi
expect "resume with a conflicting flag: exit 1" 1 "the run was started with --finetune-steps 20, but this command says --finetune-steps 9" -- \
    "$RUN" train --data "$FAST" --resume --finetune-steps 9 --out "$WORK/full" --quiet
expect "resume without a checkpoint: exit 1" 1 "no checkpoint .* to resume from" -- \
    "$RUN" train --data "$FAST" --resume --out "$WORK/empty" --quiet

# ---------------------------------------------------------------- the strong view's magnitude (issue 21)
# --strong-magnitude 1 is the default bit for bit; 0.5 trains other weights, and the run records it (summary.json,
# the checkpoint, options.json: test_runner's unit checks cover the views themselves).
"$RUN" "${FLAGS[@]}" --strong-magnitude 1 --out "$WORK/sm-1" >/dev/null 2>&1 || fail "--strong-magnitude 1: the run"
"$RUN" "${FLAGS[@]}" --strong-magnitude 0.5 --stop-at 30 --out "$WORK/sm-half" >/dev/null 2>&1 ||
    fail "--strong-magnitude 0.5: the run"
if cmp -s "$WORK/full/checkpoint.safetensors" "$WORK/sm-1/checkpoint.safetensors" &&
    grep -q '"strong_magnitude": 1,' "$WORK/full/summary.json"; then
    pass "--strong-magnitude 1 trains the default run's weights bit for bit (summary.json: strong_magnitude 1)"
else fail "--strong-magnitude 1 differs from the default run, or summary.json lacks it"; fi
expect "--strong-magnitude: --resume with another value is refused" 1 \
    "started with --strong-magnitude 0.5, but this command says --strong-magnitude 1 " -- \
    "$RUN" train --resume --strong-magnitude 1 --out "$WORK/sm-half" --quiet
"$RUN" train --resume --out "$WORK/sm-half" --quiet >/dev/null 2>"$WORK/sm-half.err" ||
    fail "--strong-magnitude 0.5: --resume" "$(cat "$WORK/sm-half.err")"
if ! "$T" st-equal "$WORK/full/checkpoint.safetensors" "$WORK/sm-half/checkpoint.safetensors" 2>/dev/null &&
    [ "$("$T" st-meta "$WORK/sm-half/checkpoint.safetensors" strong_magnitude)" = 0.5 ] &&
    grep -q '"strong_magnitude": 0.5,' "$WORK/sm-half/summary.json" && grep -q '"strong_magnitude": 0.5,' "$WORK/sm-half/options.json"; then
    pass "--strong-magnitude 0.5 changes the trained weights; the checkpoint, summary.json and options.json record it"
else fail "--strong-magnitude 0.5 changed nothing or is not recorded" "$(grep strong "$WORK/sm-half/summary.json")"; fi
expect "--strong-magnitude 1.5: refused" 2 "--strong-magnitude needs a number M with 0 <= M <= 1" -- \
    "$RUN" "${FLAGS[@]}" --strong-magnitude 1.5 --out "$WORK/sm-x"
expect "--strong-magnitude nan: refused" 2 "needs a number M with 0 <= M <= 1" -- \
    "$RUN" "${FLAGS[@]}" --strong-magnitude nan --out "$WORK/sm-x"
[ -e "$WORK/sm-x" ] && fail "a refused --strong-magnitude left a run directory"

# ---------------------------------------------------------------- overrides that break the recipe (issue 17)
# The fake model's recipe: student wait 20, warm-ups 20, UDA ramp 100, EMA decay 0.995 (horizon 200 steps).
expect "recipe: --steps at the student's wait is a usage error naming the setting and the smallest --steps" 2 \
    "--steps 20 does not fit model fake_linear's recipe .*studentWaitSteps 20 \(MPLC_STUDENT_WAIT_STEPS in model.h\) must be less than the steps, or the student never learns; use --steps 21 or more" -- \
    "$RUN" train --data "$FAST" --steps 20 --out "$WORK/never" --quiet
expect "recipe: --steps below the warm-ups names each, and the smallest --steps" 2 \
    "--steps 5 .*studentWaitSteps 20 .*; teacherOptimizer warmupSteps 20 \(MPLC_TEACHER_WARMUP_STEPS in model.h\) must be at most the steps.*; studentOptimizer warmupSteps 20 .*use --steps 21 or more" -- \
    "$RUN" train --data "$FAST" --steps 5 --out "$WORK/never" --quiet
expect "recipe: mode supervised has no wait and no teacher: only the student's warm-up counts" 2 \
    "--steps 19 .*studentOptimizer warmupSteps 20 .*use --steps 20 or more" -- \
    "$RUN" train --data "$FAST" --mode supervised --steps 19 --out "$WORK/never" --quiet
expect "recipe: mode supervised trains with --steps 20" 0 "student" -- \
    "$RUN" train --data "$FAST" --mode supervised --steps 20 --finetune-steps 0 --labels 100 --out "$WORK/sup20" --quiet
if [ -e "$WORK/never" ]; then fail "recipe: a refused --steps left a run directory"; else pass "recipe: a refused --steps creates no run directory"; fi
# One warning line each for settings that train but make little sense together; none for a consistent run.
"$RUN" train --data "$FAST" --steps 39 --finetune-steps 0 --eval-every 50 --labels 100 --out "$WORK/odd" --quiet \
    >/dev/null 2>"$WORK/odd.err"
want=("warning: the UDA ramp \(uda rampSteps 100\) is longer than the run's 39 steps: the UDA loss reaches only 39% of its weight"
    "warning: the teacher's warm-up \(teacherOptimizer warmupSteps 20\) is more than half of the run's 39 steps"
    "warning: the student's warm-up \(studentOptimizer warmupSteps 20\) is more than half of its 19 steps of the run after its wait"
    "warning: --eval-every 50 is larger than the run's 39 steps"
    "warning: the EMA of the student \(decay 0.995\) averages over about 200 steps, more than the student's 19 learning steps")
missing=""
for w in "${want[@]}"; do grep -qE "^mplc-run: $w" "$WORK/odd.err" || missing+="$w"$'\n'; done
if [ -z "$missing" ] && [ "$(grep -c warning "$WORK/odd.err")" -eq 5 ]; then pass "recipe: five one-line warnings (UDA ramp, warm-ups, eval interval, EMA horizon), even with --quiet"
else fail "recipe: warnings missing: $missing" "$(cat "$WORK/odd.err")"; fi
if ! grep -q warning "$WORK/mpl.err"; then pass "recipe: a consistent run (200 steps) prints no warning"
else fail "recipe: the 200-step run printed a warning" "$(cat "$WORK/mpl.err")"; fi

# ---------------------------------------------------------------- --resume remembers the data directory (issue 17)
# A relative --data, resumed from another directory without --data: the checkpoint's absolute path is used.
mkdir -p "$WORK/datarel" && ln -sfn "$FAST" "$WORK/datarel/fm"
(cd "$WORK/datarel" && "$RUN" train --data fm "${FLAGS[@]:3}" --out "$WORK/datarun" --stop-at 30 >/dev/null 2>&1)
stored=$("$T" st-meta "$WORK/datarun/checkpoint.safetensors" data)
if [ "$stored" = "$(cd "$FAST" && pwd -P)" ]; then pass "data: the checkpoint records the data directory, absolute ($stored)"
else fail "data: metadata \"data\" is '$stored'"; fi
if (cd / && "$RUN" train --resume --out "$WORK/datarun" --quiet >/dev/null 2>"$WORK/datarun.err") &&
    cmp -s "$WORK/full/checkpoint.safetensors" "$WORK/datarun/checkpoint.safetensors"; then
    pass "data: --resume without --data (from another directory) continues on the run's data, bit-exact"
else fail "data: --resume without --data" "$(cat "$WORK/datarun.err")"; fi
"$RUN" "${FLAGS[@]}" --out "$WORK/dataother" --stop-at 30 >/dev/null 2>&1
expect "data: --resume with another --data is refused like the other settings" 1 \
    "the run was started with --data $FAST, but this command says --data $WORK/npydata-other \(drop the flag" -- \
    "$RUN" train --resume --data "$WORK/npydata-other" --out "$WORK/dataother" --quiet
expect "data: --resume with the same directory by another path is accepted" 0 "student" -- \
    "$RUN" train --resume --data "$WORK/datarel/fm" --out "$WORK/dataother" --quiet
# A checkpoint written before the data directory was recorded: --data (or its default) applies, as it did then.
"$RUN" "${FLAGS[@]}" --out "$WORK/dataold" --stop-at 30 >/dev/null 2>&1
"$T" st-del "$WORK/dataold/checkpoint.safetensors" data
if "$RUN" train --resume --data "$FAST" --out "$WORK/dataold" --quiet >/dev/null 2>"$WORK/dataold.err" &&
    cmp -s "$WORK/full/checkpoint.safetensors" "$WORK/dataold/checkpoint.safetensors"; then
    pass "data: an older checkpoint without \"data\" resumes on --data, bit-exact"
else fail "data: an older checkpoint without \"data\"" "$(cat "$WORK/dataold.err")"; fi

# ---------------------------------------------------------------- --resume remembers every option (issue 17)
# RUN_DIR/options.json records the run's resolved options: --resume --out RUN_DIR needs nothing else, from any
# directory, whatever the mode, seed, data, intervals and flips were.
OPTS=(--steps 60 --finetune-steps 20 --labels 100 --eval-every 15 --checkpoint-every 7 --mode uda --seed 3 --flip yes
    --ema-decay 0.9 --threads 1 --quiet)
(cd "$WORK/datarel" && "$RUN" train --data fm "${OPTS[@]}" --out "$WORK/optfull" >/dev/null 2>&1 &&
    "$RUN" train --data fm "${OPTS[@]}" --out "$WORK/optrun" --stop-at 30 >/dev/null 2>&1)
O="$WORK/optrun/options.json"
if grep -q "\"data\": \"$(cd "$FAST" && pwd -P)\"" "$O" && grep -q '"mode": "uda"' "$O" && grep -q '"seed": 3,' "$O" &&
    grep -q '"threads": 1,' "$O" && grep -q '"flip": "yes"' "$O" && grep -q '"ema_decay": 0.9,' "$O" &&
    grep -q '"checkpoint_every": 7,' "$O"; then pass "options: options.json records the resolved options, data absolute"
else fail "options: options.json" "$(cat "$O" 2>&1)"; fi
if (cd / && "$RUN" train --resume --out "$WORK/optrun" --quiet >/dev/null 2>"$WORK/optrun.err") &&
    cmp -s "$WORK/optfull/checkpoint.safetensors" "$WORK/optrun/checkpoint.safetensors" &&
    same_metrics "$WORK/optfull/metrics.jsonl" "$WORK/optrun/metrics.jsonl"; then
    pass "options: --resume --out RUN_DIR alone (mode uda, seed 3, flips, from /) continues bit-exactly"
else fail "options: --resume with nothing but the run directory" "$(cat "$WORK/optrun.err")"; fi
"$RUN" train --data "$FAST" "${OPTS[@]}" --out "$WORK/optconf" --stop-at 30 >/dev/null 2>&1
expect "options: --resume with another --mode is refused naming both values and what may change" 1 \
    "optconf/options.json: the run was started with --mode uda, but this command says --mode mpl \(drop the flag, or start a new run; only --threads, --steps .* may change on --resume\)" -- \
    "$RUN" train --resume --mode mpl --out "$WORK/optconf" --quiet
expect "options: --resume with another --seed is refused" 1 "started with --seed 3, but this command says --seed 4" -- \
    "$RUN" train --resume --seed 4 --out "$WORK/optconf" --quiet
expect "options: --resume with another --checkpoint-every is refused" 1 \
    "started with --checkpoint-every 7, but this command says --checkpoint-every 8" -- \
    "$RUN" train --resume --checkpoint-every 8 --out "$WORK/optconf" --quiet
cp "$O" "$WORK/options.good"
expect "options: --resume may change --threads (recorded for the next resume)" 0 "" -- \
    "$RUN" train --resume --threads 2 --stop-at 40 --out "$WORK/optconf" --quiet
if grep -q '"threads": 2,' "$WORK/optconf/options.json"; then pass "options: the new --threads is recorded"
else fail "options: threads after --resume --threads 2" "$(cat "$WORK/optconf/options.json")"; fi
# options.json is untrusted input: each broken or hostile file is refused naming the file, never a crash.
hostile() { # hostile NAME PATTERN: --resume of a copy of the step-30 run whose options.json is $WORK/opt-NAME.json
    local dir="$WORK/opthostile-$1"
    mkdir -p "$dir" && cp "$WORK/optrun.stop30/"* "$dir/" && cp "$WORK/opt-$1.json" "$dir/options.json"
    expect "options: a hostile options.json ($1) is refused" 1 "$dir/options.json: $2" -- \
        "$RUN" train --resume --out "$dir" --quiet
}
mkdir -p "$WORK/optrun.stop30"
(cd "$WORK/datarel" && "$RUN" train --data fm "${OPTS[@]}" --out "$WORK/optrun.stop30" --stop-at 30 >/dev/null 2>&1)
printf '{"format": "mplc-run-options/1", "model": "fake_linear", "threads": 1' >"$WORK/opt-truncated.json"
hostile truncated "not valid JSON"
echo '[1, 2]' >"$WORK/opt-array.json"
hostile array "not a JSON object"
sed 's/"threads": 1/"threads": 0/' "$WORK/options.good" >"$WORK/opt-threads0.json"
hostile threads0 '"threads" is not an integer in \[1, 1024\]'
sed 's/"steps": 60/"steps": 1e400/' "$WORK/options.good" >"$WORK/opt-huge.json"
hostile huge '"steps" is not an integer in \[1, 9223372036854775807\]'
sed 's/"mode": "uda"/"mode": 7/' "$WORK/options.good" >"$WORK/opt-modetype.json"
hostile modetype '"mode" is not a string'
sed 's/"mode": "uda"/"mode": "fixmatch"/' "$WORK/options.good" >"$WORK/opt-modename.json"
hostile modename "\"mode\" is 'fixmatch', not one of the values --mode accepts"
sed 's/"ema_decay": 0.9/"ema_decay": 1/' "$WORK/options.good" >"$WORK/opt-ema.json"
hostile ema '"ema_decay" is not a number D with 0 <= D < 1'
sed 's/"strong_magnitude": 1,/"strong_magnitude": 2,/' "$WORK/options.good" >"$WORK/opt-magnitude.json"
hostile magnitude '"strong_magnitude" is not a number M with 0 <= M <= 1'
sed 's/"resize": "no"/"resize": "maybe"/' "$WORK/options.good" >"$WORK/opt-resize.json"
hostile resize "\"resize\" is 'maybe', not yes or no"
sed "s/\"pseudo_labels_from\": null/\"pseudo_labels_from\": \"$(head -c 100 /dev/zero | tr '\0' w)\"/" "$WORK/options.good" \
    >"$WORK/opt-longview.json"
hostile longview '"pseudo_labels_from" is too long'
sed 's/"format"/"rm -rf"/' "$WORK/options.good" >"$WORK/opt-unknown.json"
hostile unknown '"rm -rf" is not an option of mplc-run'
sed 's/"model": "fake_linear"/"model": "other"/' "$WORK/options.good" >"$WORK/opt-model.json"
hostile model "the run is of model other, this runner is built for fake_linear"
sed "s#\"data\": \"[^\"]*\"#\"data\": \"$(head -c 5000 /dev/zero | tr '\0' a)\"#" "$WORK/options.good" >"$WORK/opt-longdata.json"
hostile longdata '"data" is empty or too long'
{ printf '{"format": '; head -c 100000 /dev/zero | tr '\0' '['; } >"$WORK/opt-deep.json"
hostile deep "100011 bytes, more than the 65536 bytes the run's options may have"
{ printf '{"format": "mplc-run-options/1", "x": '; for _ in $(seq 70); do printf '['; done; } >"$WORK/opt-nested.json"
hostile nested "not valid JSON"
mkdir -p "$WORK/opthostile-dir" && cp "$WORK/optrun.stop30/"* "$WORK/opthostile-dir/" && rm "$WORK/opthostile-dir/options.json" &&
    mkdir "$WORK/opthostile-dir/options.json"
expect "options: a directory in options.json's place is refused" 1 "opthostile-dir/options.json: not a regular file" -- \
    "$RUN" train --resume --out "$WORK/opthostile-dir" --quiet

# ---------------------------------------------------------------- checkpoint integrity (issue 15)
# A checkpoint of step 30; each case damages a copy in one way and --resume (or eval) must refuse it.
"$RUN" "${FLAGS[@]}" --out "$WORK/intact" --stop-at 30 >/dev/null 2>&1 || fail "integrity: the run to damage"
damaged() { # damaged NAME: RUN_DIR $WORK/damaged-NAME holding a copy of the step-30 checkpoint; prints it
    local dir="$WORK/damaged-$1"
    mkdir -p "$dir" && cp "$WORK/intact/checkpoint.safetensors" "$WORK/intact/metrics.jsonl" "$dir/"
    echo "$dir"
}
resume_refused() { # resume_refused NAME WHAT PATTERN [FLAG...]: --resume of $WORK/damaged-NAME exits 1 matching PATTERN
    expect "integrity: --resume refuses $2" 1 "$3" -- "$RUN" train --data "$FAST" --resume --out "$WORK/damaged-$1" --quiet "${@:4}"
}
D=$(damaged bitflip) && "$T" st-flip "$D/checkpoint.safetensors" student/dense1/weight 100 3
resume_refused bitflip "a flipped bit" "checkpoint.safetensors: the data does not match its checksum"
D=$(damaged inf) && "$T" st-poke "$D/checkpoint.safetensors" student/dense1/weight 5 inf
resume_refused inf "an Inf weight" 'tensor "student/dense1/weight" is not finite \(element 5 is inf\)'
expect "integrity: eval refuses an Inf weight too" 1 'student/dense1/weight" is not finite' -- \
    "$RUN" eval --checkpoint "$D/checkpoint.safetensors" --data "$FAST"
for key in log_count ema_updates metrics_bytes step; do
    D=$(damaged "$key") && "$T" st-set "$D/checkpoint.safetensors" $key 9223372036854775807
    resume_refused "$key" "$key LONG_MAX" "metadata \"$key\" is '9223372036854775807', not an integer in \[0, [0-9]+\]"
done
D=$(damaged ema-decay-1) && "$T" st-set "$D/checkpoint.safetensors" ema_decay 1
resume_refused ema-decay-1 "ema_decay 1" 'metadata "ema_decay" is not a number D with 0 <= D < 1'
D=$(damaged magnitude) && "$T" st-set "$D/checkpoint.safetensors" strong_magnitude 1e999
resume_refused magnitude "strong_magnitude 1e999" 'metadata "strong_magnitude" is not a number M with 0 <= M <= 1'
D=$(damaged magnitude-flag)
resume_refused magnitude-flag "another --strong-magnitude than the checkpoint's (no options.json)" \
    'was written with --strong-magnitude 1, but this command says --strong-magnitude 0.25' --strong-magnitude 0.25
D=$(damaged acc) && "$T" st-set "$D/checkpoint.safetensors" acc_last 99999,5,30
resume_refused acc "an accuracy above the test set" 'metadata "acc_last" is missing or not 3 integers in \[-1, 10000\]'
D=$(damaged sums) && "$T" st-set "$D/checkpoint.safetensors" log_sums "$(printf 'inf%.0s,' $(seq 31))inf"
resume_refused sums "infinite log_sums" 'metadata "log_sums" is missing, malformed or not finite'
# Not a checkpoint at all, refused from fstat without reading it.
D=$(damaged sparse) && truncate -s 3G "$D/checkpoint.safetensors"
expect "integrity: a 3 GB sparse file is refused from its size" 1 \
    "3221225472 bytes, more than a checkpoint of model fake_linear can have" -- \
    small_vm "$RUN_PLAIN" eval --checkpoint "$D/checkpoint.safetensors" --data "$FAST"
expect "integrity: a directory is refused" 1 "$WORK: not a regular file \(a directory\)" -- \
    small_vm "$RUN_PLAIN" eval --checkpoint "$WORK" --data "$FAST"
D=$(damaged directory) && rm "$D/checkpoint.safetensors" && mkdir "$D/checkpoint.safetensors"
resume_refused directory "a directory in the checkpoint's place, naming it" "checkpoint.safetensors: not a regular file \(a directory\)"

# ---------------------------------------------------------------- extending a run (issue 17)
# --resume --steps N past the run's steps continues its main phase to N (schedules over the new total); a finished
# run goes back into its main phase, keeps its old results in summary.json's "history" and finetunes again.
EXT=(train --data "$FAST" --steps 60 --finetune-steps 20 --labels 100 --eval-every 15 --checkpoint-every 7 --quiet)
for d in ext ext-split; do "$RUN" "${EXT[@]}" --out "$WORK/$d" >/dev/null 2>&1 || fail "extend: the 60-step run $d"; done
old_student=$(json_number "$WORK/ext/summary.json" student_after_finetune)
if "$RUN" train --resume --steps 90 --out "$WORK/ext" --quiet >"$WORK/ext.out" 2>"$WORK/ext.err" &&
    grep -q "90 steps + 20 finetune" "$WORK/ext.out" && [ "$("$T" st-meta "$WORK/ext/checkpoint.safetensors" steps)" = 90 ] &&
    [ "$("$T" st-meta "$WORK/ext/checkpoint.safetensors" phase)" = done ] &&
    grep -q "\"history\": \[$" "$WORK/ext/summary.json" &&
    grep -q "{\"steps\": 60, \"finetune_steps\": 20, \"test_accuracy\": {.*\"student_after_finetune\": $old_student," "$WORK/ext/summary.json" &&
    grep -q '"steps": 90,' "$WORK/ext/options.json" &&
    grep -q '"phase":"mpl","step":90,"global_step":90,' "$WORK/ext/metrics.jsonl" &&
    grep -q '"phase":"finetune","step":20,"global_step":110,' "$WORK/ext/metrics.jsonl"; then
    pass "extend: a finished 60-step run taken to 90 steps: main phase to 90, finetuned again, the old results in the history"
else fail "extend: a finished run to 90 steps" "$(cat "$WORK/ext.err" "$WORK/ext.out" "$WORK/ext/summary.json")"; fi
# The extension is a run like the others: stopped in the middle and resumed, it ends byte for byte the same.
"$RUN" train --resume --steps 90 --stop-at 75 --out "$WORK/ext-split" --quiet >/dev/null 2>&1
if "$RUN" train --resume --out "$WORK/ext-split" --quiet >/dev/null 2>"$WORK/ext-split.err" &&
    cmp -s "$WORK/ext/checkpoint.safetensors" "$WORK/ext-split/checkpoint.safetensors" &&
    same_metrics "$WORK/ext/metrics.jsonl" "$WORK/ext-split/metrics.jsonl"; then
    pass "extend: stopped at step 75 of the extension and resumed: the same checkpoint and metrics, byte for byte"
else fail "extend: the extension resumed" "$(cat "$WORK/ext-split.err")"; fi
# A run still in its main phase simply runs longer; nothing goes into the history.
"$RUN" "${EXT[@]}" --out "$WORK/ext-mid" --stop-at 30 >/dev/null 2>&1
if "$RUN" train --resume --steps 90 --out "$WORK/ext-mid" --quiet >/dev/null 2>"$WORK/ext-mid.err" &&
    grep -q '"history": \[\],' "$WORK/ext-mid/summary.json" && grep -q '"steps": 90,' "$WORK/ext-mid/summary.json"; then
    pass "extend: a run stopped at step 30 of 60, resumed with --steps 90: a 90-step run, no history"
else fail "extend: a run in its main phase" "$(cat "$WORK/ext-mid.err" "$WORK/ext-mid/summary.json")"; fi
expect "extend: --steps equal to a finished run's is an error" 1 \
    "--steps 90: the run in $WORK/ext has 90 steps and is finished; a run can only be extended, give more" -- \
    "$RUN" train --resume --steps 90 --out "$WORK/ext" --quiet
expect "extend: fewer --steps than the run's is an error" 1 "--steps 30: the run in $WORK/ext has 90 steps" -- \
    "$RUN" train --resume --steps 30 --out "$WORK/ext" --quiet
D=$(damaged history) && "$T" st-set "$D/checkpoint.safetensors" history "60,20,1,2,3,4,5"
resume_refused history "a malformed history" 'metadata "history" is malformed'

# ---------------------------------------------------------------- resume identity and --init-from (issue 15)
# mplc-run-nan is the same model with teacher_lr 1e30 in its recipe; mplc-run-rehash the same recipe compiled
# into another model.h (another MPLC_MODEL_HASH): neither may continue the step-30 run of mplc-run.
D=$(damaged recipe)
expect "identity: --resume with a runner of another recipe names the settings that differ" 1 \
    "checkpoint.safetensors was trained by a runner built from another model or recipe \(teacher_lr 0.01 -> 1e30\); resume it with that runner, or start a new run from its weights with --init-from" -- \
    "$WORK/mplc-run-nan" train --data "$FAST" --resume --out "$D" --quiet
expect "identity: --resume with another compilation of the same recipe" 1 \
    "another model or recipe \(same recipe, but the compiled model differs \(layers or mplc version\)\)" -- \
    "$WORK/mplc-run-rehash" train --data "$FAST" --resume --out "$D" --quiet
if cmp -s "$D/checkpoint.safetensors" "$WORK/intact/checkpoint.safetensors"; then pass "identity: a refused resume leaves the checkpoint alone"
else fail "identity: a refused resume changed the checkpoint"; fi
D=$(damaged no-hash) && "$T" st-del "$D/checkpoint.safetensors" model_hash
resume_refused no-hash "a checkpoint without a model hash" "records no model hash and recipe .*--init-from"
expect "--init-from with --resume: usage error" 2 "--init-from starts a new run .* give one" -- \
    "$RUN" train --data "$FAST" --resume --init-from "$WORK/intact/checkpoint.safetensors" --out "$WORK/init-resume"
# --init-from: a new run of the other compilation from the step-30 weights; it records where it started, keeps
# that across --resume, and starts where the weights are (the first evaluation, at step 15, beats a fresh run's).
I="$WORK/init-from"
if "$WORK/mplc-run-rehash" "${FLAGS[@]}" --init-from "$WORK/intact/checkpoint.safetensors" --out "$I" --stop-at 15 \
    >/dev/null 2>"$I.err" && "$WORK/mplc-run-rehash" train --data "$FAST" --resume --out "$I" --quiet >/dev/null 2>>"$I.err"; then
    from=$("$T" st-meta "$I/checkpoint.safetensors" init_from)
    first=$(grep -m 1 '"eval"' "$I/metrics.jsonl" | sed 's/.*"acc_student":\([0-9.]*\).*/\1/')
    fresh=$(grep -m 1 '"eval"' "$WORK/full/metrics.jsonl" | sed 's/.*"acc_student":\([0-9.]*\).*/\1/')
    if [ "$from" = "$WORK/intact/checkpoint.safetensors" ] && [ "$("$T" st-meta "$I/checkpoint.safetensors" step)" = 20 ] &&
        grep -qF "\"init_from\": \"$WORK/intact/checkpoint.safetensors\"" "$I/summary.json" &&
        grep -q '"model_hash": "fa4e000000000000000000000000000000000000000000000000000000000099"' "$I/summary.json" &&
        awk -v a="$first" -v b="$fresh" 'BEGIN { exit !(a > b + 0.05) }'; then
        pass "--init-from: a new run from another runner's checkpoint (student $first at step 15, fresh $fresh), recorded across --resume"
    else fail "--init-from: init_from '$from', first evaluation $first (fresh run $fresh)" "$(cat "$I.err")"; fi
else
    fail "--init-from run" "$(cat "$I.err")"
fi
expect "--steps and --finetune-steps that overflow the global step: usage error" 2 "together overflow the step counter" -- \
    "$RUN" train --data "$FAST" --steps 9223372036854775807 --finetune-steps 1 --out "$WORK/overflow"
expect "--init-from a missing file: exit 1 before the run directory is made" 1 "--init-from: .*nothing.safetensors: cannot open" -- \
    "$RUN" train --data "$FAST" --init-from "$WORK/nothing.safetensors" --out "$WORK/init-missing" --quiet
if [ -e "$WORK/init-missing" ]; then fail "--init-from a missing file made the run directory"; else pass "--init-from a missing file: no run directory"; fi

# ---------------------------------------------------------------- kill -9 leaves a usable checkpoint
"$RUN" train --data "$FAST" --steps 100000 --labels 100 --checkpoint-every 25 --out "$WORK/killed" --quiet \
    >/dev/null 2>"$WORK/killed.err" &
PID=$!
for _ in $(seq 1 200); do # wait (at most 20 s) for a few checkpoints
    step=$("$T" st-meta "$WORK/killed/checkpoint.safetensors" step 2>/dev/null || echo 0)
    [ "${step:-0}" -ge 100 ] && break
    sleep 0.1
done
sleep 0.3
kill -9 "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
step=$("$T" st-meta "$WORK/killed/checkpoint.safetensors" step 2>/dev/null || echo none)
expect "kill -9 mid-run: the checkpoint (step $step) loads" 0 '"acc_student"' -- \
    "$RUN" eval --checkpoint "$WORK/killed/checkpoint.safetensors" --data "$FAST"
if [ "$step" != none ]; then
    expect "kill -9 mid-run: the run resumes" 0 "stopped after step $((step + 10))" -- \
        "$RUN" train --data "$FAST" --resume --out "$WORK/killed" --stop-at $((step + 10)) --quiet
fi

# ---------------------------------------------------------------- NaN / Inf
NAN="$WORK/mplc-run-nan"
expect "diverging model: exit 3 naming the step and the quantity" 3 "step [0-9]+: (output [a-z_]+ is (NaN|Inf)|state tensor '[a-z_/0-9]+' is not finite)" -- \
    "$NAN" train --data "$FAST" --steps 50 --labels 100 --checkpoint-every 1 --out "$WORK/nan" --quiet
if [ -f "$WORK/nan/checkpoint.safetensors" ]; then
    if "$T" st-finite "$WORK/nan/checkpoint.safetensors"; then pass "the last checkpoint before the NaN is finite (step $("$T" st-meta "$WORK/nan/checkpoint.safetensors" step))"
    else fail "a non-finite checkpoint was written"; fi
else
    pass "no checkpoint was written before the NaN (it came at the first step)"
fi

# ---------------------------------------------------------------- replay
mkdir -p "$WORK/replay"
"$T" gen-replay "$WORK/replay" 3
if out=$("$RUN" replay --checkpoint "$WORK/replay/in.safetensors" --batches "$WORK/replay/batches" --steps 3 \
    --out "$WORK/replay/out.safetensors" --losses "$WORK/replay/losses.jsonl" 2>&1); then
    if "$T" st-equal "$WORK/replay/out.safetensors" "$WORK/replay/expected.safetensors" &&
        cmp -s "$WORK/replay/losses.jsonl" "$WORK/replay/expected_losses.jsonl"; then
        pass "replay: 3 steps (int64/int32/one-hot labels, mask file/no mask, 4-d/flat x) match direct mplc_step calls"
    else
        fail "replay: result differs" "$(diff "$WORK/replay/losses.jsonl" "$WORK/replay/expected_losses.jsonl")"
    fi
else
    fail "replay run" "$out"
fi
expect "replay: a missing step directory: exit 1" 1 "step_000003/x.npy: cannot open" -- \
    "$RUN" replay --checkpoint "$WORK/replay/in.safetensors" --batches "$WORK/replay/batches" --steps 4 \
    --out "$WORK/replay/out4.safetensors" --losses "$WORK/replay/losses4.jsonl"
cp "$WORK/replay/batches/step_000000/scalars.npy" "$WORK/replay/batches/step_000001/x.npy"
expect "replay: wrong x.npy shape: exit 1" 1 "step_000001/x.npy: shape \(4,\)" -- \
    "$RUN" replay --checkpoint "$WORK/replay/in.safetensors" --batches "$WORK/replay/batches" --steps 2 \
    --out "$WORK/replay/out2.safetensors" --losses "$WORK/replay/losses2.jsonl"
head -c 100 "$WORK/replay/in.safetensors" >"$WORK/replay/cut.safetensors"
expect "replay: truncated checkpoint: exit 1" 1 "cut.safetensors: bad header length" -- \
    "$RUN" replay --checkpoint "$WORK/replay/cut.safetensors" --batches "$WORK/replay/batches" --steps 1 \
    --out "$WORK/replay/out1.safetensors" --losses "$WORK/replay/losses1.jsonl"

# ---------------------------------------------------------------- NPY data
"$T" gen-data "$WORK/npydata" npy
expect "NPY dataset (u1 images, i8 labels)" 0 "student" -- \
    "$RUN" train --data "$WORK/npydata" --labels 40 --steps 30 --finetune-steps 5 --out "$WORK/npy" --quiet
expect "finetune batch larger than --labels: exit 1 with the numbers" 1 \
    "--labels 20: model fake_linear finetunes on 32 labeled examples per step .*use --labels 40 or more" -- \
    "$RUN" train --data "$WORK/npydata" --labels 20 --steps 30 --finetune-steps 5 --out "$WORK/npy20" --quiet

# ---------------------------------------------------------------- the user's own data (issue 17)
# NPY: labeled_x.npy/labeled_y.npy used as is, unlabeled_x.npy without labels (here the 100 test images).
mkdir -p "$WORK/npyown"
cp "$WORK/npydata/train_x.npy" "$WORK/npyown/labeled_x.npy"
cp "$WORK/npydata/train_y.npy" "$WORK/npyown/labeled_y.npy"
cp "$WORK/npydata/test_x.npy" "$WORK/npyown/unlabeled_x.npy"
cp "$WORK/npydata/test_x.npy" "$WORK/npydata/test_y.npy" "$WORK/npyown/"
if "$RUN" train --data "$WORK/npyown" --steps 30 --finetune-steps 5 --out "$WORK/npyown-run" --quiet >/dev/null 2>&1 &&
    grep -q '"labels": 400,' "$WORK/npyown-run/summary.json" && grep -q '"unlabeled_examples": 100,' "$WORK/npyown-run/summary.json"; then
    pass "NPY labeled_x/labeled_y as is (400 labels, no split) and unlabeled_x.npy without labels (100 images)"
else fail "NPY labeled/unlabeled files" "$(cat "$WORK/npyown-run/summary.json" 2>&1)"; fi
expect "NPY labeled set with --labels: exit 1, says it is used as is" 1 "--labels 40: .*npyown has a labeled set of its own \(400 examples\), used as is; drop --labels" -- \
    "$RUN" train --data "$WORK/npyown" --labels 40 --steps 30 --out "$WORK/npyown-labels" --quiet
rm "$WORK/npyown/labeled_y.npy"
expect "NPY labeled_x.npy without labeled_y.npy: exit 1 naming it" 1 "npyown/labeled_y.npy: cannot open" -- \
    "$RUN" train --data "$WORK/npyown" --steps 30 --out "$WORK/npyown-nolabels" --quiet

# Image folders from Fashion-MNIST: labeled/<class>/ (20 per class, PNG), unlabeled/ (2,000, a quarter JPEG), test/<class>/
# (50 per class, a third RGB PNG, converted to the model's 1 channel). Class names sorted are not in label order.
IMG="$WORK/images"
if ! out=$("$T" make-images "$FAST" "$IMG" 20 2000 50 2>&1); then fail "make-images" "$out"; fi
if out=$("$RUN" train --data "$IMG" --steps 300 --out "$WORK/img-run" 2>&1); then
    acc=$(json_number "$WORK/img-run/summary.json" student_after_finetune)
    if awk -v a="$acc" 'BEGIN { exit !(a > 0.5) }' && grep -q '"data_format": "images"' "$WORK/img-run/summary.json" &&
        grep -q '"labels": 200,' "$WORK/img-run/summary.json" && grep -q '"unlabeled_examples": 2000,' "$WORK/img-run/summary.json"; then
        pass "image folders (PNG, JPEG, gray and RGB): 300 steps on 200 labeled + 2000 unlabeled images: student $acc (chance 0.1)"
    else fail "image folders: student accuracy $acc is not above 0.5, or the summary is wrong" "$(cat "$WORK/img-run/summary.json")"; fi
else fail "image folders: training failed" "$out"; fi
if grep -q '"classes": \["Ankle boot","Bag","Coat","Dress","Pullover","Sandal","Shirt","Sneaker","T-shirt","Trouser"\]' "$WORK/img-run/summary.json" &&
    grep -q '"normalization": {"mean": \[0.2[0-9]*\], "std": \[0.3[0-9]*\]}' "$WORK/img-run/summary.json" &&
    [ "$("$T" st-meta "$WORK/img-run/checkpoint.safetensors" classes)" = '["Ankle boot","Bag","Coat","Dress","Pullover","Sandal","Shirt","Sneaker","T-shirt","Trouser"]' ] &&
    [ -n "$("$T" st-meta "$WORK/img-run/checkpoint.safetensors" norm_std)" ]; then
    pass "the class map (folder names, sorted) and the normalisation are in summary.json and the checkpoint"
else fail "class names or normalisation missing" "$(cat "$WORK/img-run/summary.json")"; fi
eval_acc=$("$RUN" eval --checkpoint "$WORK/img-run/checkpoint.safetensors" --data "$IMG" 2>&1 | sed -n 's/.*"acc_student":\([0-9.]*\).*/\1/p')
if [ -n "$eval_acc" ] && [ "$eval_acc" = "$acc" ]; then pass "eval on the image folders: student $eval_acc, as in summary.json (same normalisation)"
else fail "eval on the image folders: '$eval_acc', summary says $acc"; fi
# --resume finds the folders again (the checkpoint's data), and checks the classes
"$RUN" train --data "$IMG" --steps 300 --stop-at 150 --out "$WORK/img-resume" --quiet >/dev/null 2>&1
expect "image folders: --resume after --stop-at" 0 "student" -- "$RUN" train --resume --out "$WORK/img-resume" --quiet
if "$T" st-equal "$WORK/img-run/checkpoint.safetensors" "$WORK/img-resume/checkpoint.safetensors"; then
    pass "image folders: the resumed run's checkpoint is identical to the uninterrupted run's"
else fail "image folders: resumed run differs"; fi
expect "image folders with --labels: exit 1" 1 "has a labeled set of its own \(200 examples\), used as is; drop --labels" -- \
    "$RUN" train --data "$IMG" --labels 100 --steps 300 --out "$WORK/img-labels" --quiet

# CSV feature vectors (the fake model reads 784 floats): labeled.csv with a header, unlabeled.csv without labels or
# header (CRLF), test.csv.
CSV="$WORK/csv"
if ! out=$("$T" make-csv "$FAST" "$CSV" 300 1000 500 2>&1); then fail "make-csv" "$out"; fi
if out=$("$RUN" train --data "$CSV" --steps 300 --out "$WORK/csv-run" 2>&1); then
    acc=$(json_number "$WORK/csv-run/summary.json" student_after_finetune)
    if awk -v a="$acc" 'BEGIN { exit !(a > 0.5) }' && grep -q '"data_format": "csv"' "$WORK/csv-run/summary.json" &&
        grep -q '"labels": 300,' "$WORK/csv-run/summary.json" && grep -q '"unlabeled_examples": 1000,' "$WORK/csv-run/summary.json"; then
        pass "CSV: labeled.csv (header) as is + unlabeled.csv (no labels, CRLF), 300 steps: student $acc"
    else fail "CSV: student accuracy $acc is not above 0.5, or the summary is wrong" "$(cat "$WORK/csv-run/summary.json")"; fi
else fail "CSV: training failed" "$out"; fi
mkdir -p "$WORK/csvbad"
cp "$CSV/test.csv" "$WORK/csvbad/test.csv"
sed '3s/^0,/zero,/' "$CSV/labeled.csv" >"$WORK/csvbad/labeled.csv"
expect "CSV: a field that is not a number: exit 1 naming file, line and field" 1 "csvbad/labeled.csv: line 3, field 1 is not a number: 'zero'" -- \
    "$RUN" train --data "$WORK/csvbad" --steps 300 --out "$WORK/csvbad-run" --quiet
cut -d, -f2- "$CSV/labeled.csv" >"$WORK/csvbad/labeled.csv"
expect "CSV: a column short: exit 1 with the numbers" 1 "csvbad/labeled.csv: 784 columns, model fake_linear takes 784 features and the label \(last\)" -- \
    "$RUN" train --data "$WORK/csvbad" --steps 300 --out "$WORK/csvbad-run" --quiet
sed '5s/,[0-9]*$/,10/' "$CSV/labeled.csv" >"$WORK/csvbad/labeled.csv"
expect "CSV: label 10 for 10 classes: exit 1 naming the row" 1 "csvbad/labeled.csv: row 4: label 10 is not a class number in \[0, 10\)" -- \
    "$RUN" train --data "$WORK/csvbad" --steps 300 --out "$WORK/csvbad-run" --quiet
sed '4s/,[^,]*$//' "$CSV/labeled.csv" >"$WORK/csvbad/labeled.csv"
expect "CSV: a ragged row: exit 1 naming both lines" 1 "csvbad/labeled.csv: line 4 has 784 fields, line 1 has 785" -- \
    "$RUN" train --data "$WORK/csvbad" --steps 300 --out "$WORK/csvbad-run" --quiet
if [ -e "$WORK/csvbad-run" ]; then fail "a bad CSV made a run directory"; else pass "bad CSV files make no run directory"; fi

# Bad image folders: each refused with the file and the cause, before the run directory is made.
bad_images() { # bad_images NAME: a copy of the small set (2 per class) to break
    rm -rf "$WORK/badimg-$1"
    "$T" make-images "$FAST" "$WORK/badimg-$1" 2 40 2 >/dev/null 2>&1
    echo "$WORK/badimg-$1"
}
D=$(bad_images text); echo "not an image" >"$D/labeled/Bag/notes.png"
expect "a text file in a class folder: exit 1 naming it" 1 "badimg-text/labeled/Bag/notes.png: not a PNG or JPEG image" -- \
    "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
D=$(bad_images truncated); f=$(ls "$D"/unlabeled/*.png | head -n 1); head -c 200 "$f" >"$f.tmp" && mv "$f.tmp" "$f"
expect "a truncated PNG: exit 1 naming it" 1 "badimg-truncated/unlabeled/[0-9]*.png: corrupt or unsupported image" -- \
    "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
D=$(bad_images size); "$T" write-image "$D/test/Coat/big.png" 32 32 1; "$T" write-image "$D/test/Dress/big.png" 28 30 3
expect "images of another size: exit 1, counted, the first named, --resize suggested" 1 \
    "badimg-size/test: 2 of its 22 images are not 28x28 pixels, the size model fake_linear takes; the first is .*/test/Coat/big.png \(32x32\); resize them first, or give --resize to have them resized" -- \
    "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
# --resize: the same folder, and a test image as a 56x56 file of 2x2 blocks, which the box filter shrinks back to
# the image exactly. The run records --resize (options.json, the checkpoint): eval, predict and --resume read the
# images as training did.
orig=$(ls "$D"/test/Bag/*.png | head -n 1)
"$T" upscale "$orig" "$D/test/Bag/zz-big.png"
RS="$WORK/resize-run"
if out=$("$RUN" train --data "$D" --steps 30 --finetune-steps 0 --resize --out "$RS" 2>&1) &&
    grep -q "badimg-size: 3 images of another size resized to 28x28 (--resize)" <<<"$out" &&
    grep -q '"resize": "yes"' "$RS/options.json" && [ "$("$T" st-meta "$RS/checkpoint.safetensors" resize)" = yes ]; then
    pass "--resize: images of 32x32, 28x30 (RGB) and 56x56 resized, said once; options.json and the checkpoint record it"
else fail "--resize: training failed, or said nothing, or did not record it" "$out"; fi
expect "--resize: eval of the run reads the test images resized (the checkpoint says so)" 0 '"acc_student":' -- \
    "$RUN" eval --checkpoint "$RS/checkpoint.safetensors" --data "$D"
p_small=$("$RUN" predict --checkpoint "$RS/checkpoint.safetensors" "$orig" 2>&1 | sed 's/^{"file":"[^"]*",//')
p_big=$("$RUN" predict --checkpoint "$RS/checkpoint.safetensors" "$D/test/Bag/zz-big.png" 2>&1 | sed 's/^{"file":"[^"]*",//')
if [[ "$p_small" == '"class":'* ]] && [ "$p_small" = "$p_big" ]; then
    pass "--resize: predict by the run's checkpoint on the 56x56 file: the class and probabilities of the 28x28 image"
else fail "--resize: predict on the resized file differs from the original" "$p_small"$'\n'"$p_big"; fi
expect "predict by a run without --resize: a 56x56 file is refused, --resize named" 1 \
    "zz-big.png: 56x56 pixels, the model takes 28x28 \(--resize resizes images of another size\)" -- \
    "$RUN" predict --checkpoint "$WORK/img-run/checkpoint.safetensors" "$D/test/Bag/zz-big.png"
expect "predict --resize by a run without it: resized" 0 '"class":' -- \
    "$RUN" predict --checkpoint "$WORK/img-run/checkpoint.safetensors" --resize "$D/test/Bag/zz-big.png"
"$RUN" train --data "$D" --steps 30 --finetune-steps 0 --resize --stop-at 10 --out "$WORK/resize-resume" --quiet >/dev/null 2>&1
expect "--resize: --resume without the flag keeps it" 0 "student" -- "$RUN" train --resume --out "$WORK/resize-resume" --quiet
if "$T" st-equal "$RS/checkpoint.safetensors" "$WORK/resize-resume/checkpoint.safetensors"; then
    pass "--resize: the resumed run's checkpoint is identical to the uninterrupted run's"
else fail "--resize: the resumed run differs"; fi
expect "--resume --resize of a run without it: exit 1" 1 "the run was started without --resize, but this command says --resize" -- \
    "$RUN" train --resume --out "$WORK/img-resume" --resize --quiet
expect "--resize with IDX data: exit 1" 1 "--resize resizes the images of image folders; .* holds idx data" -- \
    "$RUN" train --data "$FAST" --steps 30 --resize --out "$WORK/resize-idx" --quiet
D=$(bad_images classes); rm -rf "$D/labeled/Bag" "$D/test/Bag"
expect "9 class folders for a 10-class model: exit 1" 1 "badimg-classes/labeled: 9 class folders, but model fake_linear has 10 classes" -- \
    "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
D=$(bad_images testclasses); mv "$D/test/Bag" "$D/test/Bags"
expect "test/ with other class folders: exit 1" 1 "badimg-testclasses/test: class folder 'Bags' where .*labeled has 'Bag'" -- \
    "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
D=$(bad_images loose); cp "$D/labeled/Bag/"*.png "$D/labeled/"
expect "an image outside the class folders: exit 1" 1 "badimg-loose/labeled/[0-9]*.png: a file where a folder per class is expected" -- \
    "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
D=$(bad_images fifo); mkfifo "$D/unlabeled/pipe.png"
# A FIFO named like an image: refused without waiting for a writer (timeout ends a run that would block on open).
expect "a FIFO in the unlabeled folder: exit 1 at once" 1 "badimg-fifo/unlabeled/pipe.png: not a regular file" -- \
    timeout 60 "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
D=$(bad_images notest); rm -rf "$D/test"
expect "no test folder: exit 1" 1 "badimg-notest: missing folder test" -- "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet
if [ -e "$WORK/badimg-run" ]; then fail "a bad image folder made a run directory"; else pass "bad image folders make no run directory"; fi
D=$(bad_images budget)
expect "image folders beyond the memory limit: exit 1 before decoding" 1 "badimg-budget/labeled: the decoded images need" -- \
    env MPLC_MEMORY_LIMIT=1120000 "$RUN" train --data "$D" --steps 30 --out "$WORK/badimg-run" --quiet

# ================================================================ EMA of the student (docs/RUNNER.md)
# The fake model waits 20 steps (MPLC_STUDENT_WAIT_STEPS) before the student learns; MPLC_EMA_DECAY is 0.995.
if out=$("$T" ema-unit "$WORK/ema-unit" 2>&1); then pass "EMA unit tests: update = formula bit for bit, closed form, checkpoint entries ($(tail -n 1 <<<"$out"))"
else fail "EMA unit tests" "$out"; fi
expect "--ema-decay 1.5: exit 2" 2 "--ema-decay needs a number D with 0 <= D < 1 \(0 disables the EMA\), got '1.5'" -- \
    "$RUN" train --ema-decay 1.5
expect "--ema-decay 1: exit 2" 2 "--ema-decay needs a number D with 0 <= D < 1" -- "$RUN" train --ema-decay=1
expect "--ema-decay -0.1: exit 2" 2 "--ema-decay needs a number D with 0 <= D < 1" -- "$RUN" train --ema-decay -0.1
expect "--ema-decay x: exit 2" 2 "--ema-decay needs a number D with 0 <= D < 1" -- "$RUN" train --ema-decay 0.5x
expect "--help documents --ema-decay" 0 "--ema-decay 0.995: decay of the exponential moving average" -- "$RUN" train --help

# The 200-step run above: evaluations every 20 steps; the EMA is empty at step 20 and updated in 180 + 50 steps.
S="$WORK/mpl/summary.json"
ema_before=$(json_number "$S" student_ema_before_finetune)
ema_after=$(json_number "$S" student_ema_after_finetune)
if [ -n "$ema_before" ] && [ -n "$ema_after" ] && grep -q '"ema": {"decay": 0.995, "updates": 230}' "$S"; then
    pass "summary.json: student EMA $ema_after (before finetuning $ema_before), decay 0.995, 230 updates"
else fail "summary.json: EMA accuracies or the ema object" "$(cat "$S")"; fi
n_ema=$(grep -c '"acc_student_ema"' "$WORK/mpl/metrics.jsonl")
first_eval=$(grep -m 1 '"eval"' "$WORK/mpl/metrics.jsonl")
if [ "$n_ema" -eq 10 ] && ! grep -q acc_student_ema <<<"$first_eval"; then
    pass "metrics.jsonl: acc_student_ema in the 10 evaluations after the student's wait, not at step 20"
else fail "metrics.jsonl: $n_ema evaluations with acc_student_ema (want 10)" "$first_eval"; fi
if grep -q '^\[mpl\] .* | test@[0-9]* T [0-9.]*% S [0-9.]*% EMA [0-9.]*% |' "$WORK/mpl.err"; then pass "progress line: the EMA's accuracy"
else fail "progress line without the EMA's accuracy" "$(tail -n 3 "$WORK/mpl.err")"; fi
expect "result line: the EMA's accuracy (resuming the finished run prints it again)" 0 \
    "student EMA [0-9.]+% \(before finetuning [0-9.]+%\), teacher" -- "$RUN" train --resume --out "$WORK/mpl"
expect "eval reports the EMA of a checkpoint that has one" 0 '"acc_student_ema":0\.[0-9]' -- \
    "$RUN" eval --checkpoint "$WORK/mpl/checkpoint.safetensors" --data "$FAST"

# Step by step (through --resume, which the cases below show to be bit-exact): the EMA is empty until the
# student learns, a copy of the student after its first learning step, then d * ema + (1 - d) * student.
E="$WORK/ema-steps"
ema_stop() { # ema_stop STEP [FLAGS...]: run (or resume) to global step STEP, keep the checkpoint as E/STEP.safetensors
    local at=$1
    shift
    if [ -f "$E/checkpoint.safetensors" ]; then
        "$RUN" train --data "$FAST" --quiet --resume --out "$E" --stop-at "$at" "$@" >/dev/null 2>"$E.err"
    else
        "$RUN" "${FLAGS[@]}" --out "$E" --stop-at "$at" "$@" >/dev/null 2>"$E.err"
    fi
    cp "$E/checkpoint.safetensors" "$E/$at.safetensors" 2>/dev/null
}
ema_stop 20
updates=$("$T" st-meta "$E/20.safetensors" ema_updates)
if [ "$updates" = 0 ]; then pass "EMA: empty while the student waits (step 20: 0 updates)"
else fail "EMA: $updates updates at step 20, before the student learned" "$(cat "$E.err")"; fi
ema_stop 21
ema_stop 22
ema_stop 71
ema_stop 72
if "$T" ema-check "$E/21.safetensors" 0.995 && [ "$("$T" st-meta "$E/21.safetensors" ema_updates)" = 1 ]; then
    pass "EMA: the student's weights after its first learning step (step 21)"
else fail "EMA at step 21 is not the student's weights"; fi
if "$T" ema-check "$E/22.safetensors" "$E/21.safetensors" 0.995 && "$T" ema-check "$E/72.safetensors" "$E/71.safetensors" 0.995; then
    pass "EMA: step 22 and finetuning step 12 are 0.995 * previous EMA + 0.005 * student, bit for bit"
else fail "EMA update between checkpoints does not match the formula"; fi
rm -rf "$E"
ema_stop 40 --ema-decay 0.9
ema_stop 41
if [ "$("$T" st-meta "$E/41.safetensors" ema_decay)" = 0.90000000000000002 ] &&
    "$T" ema-check "$E/41.safetensors" "$E/40.safetensors" 0.9; then
    pass "EMA: --ema-decay 0.9 is kept in the checkpoint and used after --resume"
else fail "EMA: --ema-decay 0.9 not kept across --resume" "$(cat "$E.err")"; fi
expect "resume with a different --ema-decay: exit 1" 1 "the run was started with --ema-decay 0.9000.*, but this command says --ema-decay 0.5" -- \
    "$RUN" train --data "$FAST" --resume --ema-decay 0.5 --out "$E" --quiet

# Resume stays bit-exact with the EMA in the checkpoint and metrics (resume_case compares with the full run).
resume_case ema-before-wait 10
resume_case ema-first-step 21

# --ema-decay 0: no EMA anywhere, and the student and teacher train exactly as with one.
if "$RUN" "${FLAGS[@]}" --ema-decay 0 --out "$WORK/ema0" >/dev/null 2>"$WORK/ema0.err"; then
    if "$T" st-equal "$WORK/full/checkpoint.safetensors" "$WORK/ema0/checkpoint.safetensors" &&
        ! grep -q acc_student_ema "$WORK/ema0/metrics.jsonl" && grep -q '"student_ema_after_finetune": null' "$WORK/ema0/summary.json" &&
        ! "$RUN" eval --checkpoint "$WORK/ema0/checkpoint.safetensors" --data "$FAST" | grep -q acc_student_ema; then
        pass "--ema-decay 0: no EMA in checkpoint, metrics, summary (null) or eval; the same state as with an EMA"
    else fail "--ema-decay 0" "$(cat "$WORK/ema0/summary.json")"; fi
else fail "--ema-decay 0 run" "$(cat "$WORK/ema0.err")"; fi

# A checkpoint of an older mplc-run (no EMA tensors or metadata) resumes with a fresh EMA and a note.
O="$WORK/ema-old"
"$RUN" "${FLAGS[@]}" --out "$O" --stop-at 30 >/dev/null 2>&1
"$T" ema-strip "$O/checkpoint.safetensors" "$O/old.safetensors" && mv "$O/old.safetensors" "$O/checkpoint.safetensors"
if "$RUN" train --data "$FAST" --resume --out "$O" >/dev/null 2>"$O.err" && grep -q "has no EMA of the student" "$O.err" &&
    "$T" st-equal "$WORK/full/checkpoint.safetensors" "$O/checkpoint.safetensors" &&
    grep -q '"ema": {"decay": 0.995, "updates": 50}' "$O/summary.json"; then
    pass "old checkpoint without EMA: resumes with a note, the same state, an EMA of the 50 steps after it"
else fail "old checkpoint without EMA" "$(cat "$O.err")"; fi

# ================================================================ end of the EMA section

# ---------------------------------------------------------------- --validation, best.safetensors, --patience
V="$WORK/val"
VFLAGS=(train --data "$FAST" --steps 60 --finetune-steps 20 --labels 100 --eval-every 10 --quiet)
# Held out from one class-balanced draw whose first labels/K per class are the labeled subset of a run without it:
# the same training, so the same test accuracies (full is FLAGS with another --eval-every: compare with "$V-none").
if "$RUN" "${VFLAGS[@]}" --out "$V-none" >/dev/null 2>&1 && "$RUN" "${VFLAGS[@]}" --validation 200 --out "$V" >/dev/null 2>"$V.err"; then
    n_val=$(grep -c '"eval":"validation","validation_examples":200' "$V/metrics.jsonl")
    n_test=$(grep -c '"eval":"test"' "$V/metrics.jsonl")
    best=$("$T" st-meta "$V/best.safetensors" step)
    best_step=$(sed -n 's/.*"best_step": \([0-9]*\).*/\1/p' "$V/summary.json")
    if [ "$(sed -n '/test_accuracy/,/}/p' "$V/summary.json")" = "$(sed -n '/test_accuracy/,/}/p' "$V-none/summary.json")" ] &&
        [ "$n_val" -eq 7 ] && [ "$n_test" -eq 2 ] && [ -n "$best_step" ] && { [ "$best_step" -le 60 ] && [ "$best" = "$best_step" ] ||
        [ "$best_step" -gt 60 ] && [ "$best" = "$((best_step - 60))" ]; } && grep -q '"stopped_at_step": null' "$V/summary.json"; then
        pass "--validation 200: the same test accuracies as without it; 7 validation evaluations, the test set at each phase's end; best.safetensors of step $best_step"
    else fail "--validation 200" "n_val $n_val n_test $n_test best $best best_step $best_step; $(cat "$V/summary.json")"; fi
else fail "--validation runs" "$(cat "$V.err")"; fi
# --patience 1: the main phase stops at the first validation evaluation without a better student.
if "$RUN" "${VFLAGS[@]}" --validation 200 --patience 1 --out "$V-p" >/dev/null 2>"$V-p.err"; then
    stopped=$(sed -n 's/.*"stopped_at_step": \([0-9]*\).*/\1/p' "$V-p/summary.json")
    last_main=$(grep '"phase":"mpl"' "$V-p/metrics.jsonl" | tail -n 1)
    if [ -n "$stopped" ] && [ "$stopped" -lt 60 ] && grep -q "\"step\":$stopped,.*\"eval\":\"test\"" <<<"$last_main" &&
        [ "$("$T" st-meta "$V-p/checkpoint.safetensors" phase)" = done ]; then
        pass "--patience 1: the main phase stopped at step $stopped with a test evaluation, then finetuned"
    else fail "--patience 1" "$(cat "$V-p/summary.json")"; fi
else fail "--patience run" "$(cat "$V-p.err")"; fi
# Resume is exact with a validation set: the best checkpoint and the patience count come back from the checkpoint.
"$RUN" "${VFLAGS[@]}" --validation 200 --patience 1 --out "$V-r" --stop-at 15 >/dev/null 2>&1
if "$RUN" train --data "$FAST" --quiet --resume --out "$V-r" >/dev/null 2>"$V-r.err" &&
    cmp -s "$V-p/checkpoint.safetensors" "$V-r/checkpoint.safetensors" && cmp -s "$V-p/best.safetensors" "$V-r/best.safetensors" &&
    same_metrics "$V-p/metrics.jsonl" "$V-r/metrics.jsonl"; then
    pass "--validation --patience 1 stopped at step 15 (before patience ends the main phase at 20) and resumed: checkpoint, best.safetensors and metrics identical"
else fail "--validation resume" "$(cat "$V-r.err"; diff "$V-p/metrics.jsonl" "$V-r/metrics.jsonl" | head -5)"; fi
expect "resume with another --validation: exit 1" 1 "the run was started with --validation 200, but this command says --validation 100" -- \
    "$RUN" train --data "$FAST" --resume --validation 100 --out "$V-r" --quiet
expect "--validation not a multiple of the classes: exit 1" 1 "--validation 15 must be a multiple of the 10 classes" -- \
    "$RUN" "${VFLAGS[@]}" --validation 15 --out "$V-bad"
expect "--patience without --validation: usage error" 2 "--patience 3 counts validation evaluations: give --validation N too" -- \
    "$RUN" "${VFLAGS[@]}" --patience 3 --out "$V-bad"
expect "--labels + --validation beyond the training set: exit 1" 1 "\(--labels 100 \+ --validation 60000\)" -- \
    "$RUN" "${VFLAGS[@]}" --validation 60000 --out "$V-bad"
if [ ! -e "$V-bad" ]; then pass "refused --validation settings create no run directory"; else fail "a refused --validation run created $V-bad"; fi

fi # PART 1

if [ "$PART" != 1 ]; then
# ---------------------------------------------------------------- run directory, checked writes, signals
source "$HERE/rundir_tests.sh"

# ---------------------------------------------------------------- CIFAR-10 and SVHN (32x32 RGB)
source "$HERE/rgb_tests.sh"

# ---------------------------------------------------------------- Reduced MPL (teacher cache)
source "$HERE/reduced_tests.sh"

# ---------------------------------------------------------------- under MPI (ranks)
source "$HERE/mpi_tests.sh"
fi # PART 2

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
