# Reduced MPL (docs/RUNNER.md, "Reduced MPL"): sourced by run_tests.sh (it uses build, runner_objects, pass, fail,
# expect, json_number, $WORK, $ROOT, $RUNNER, $HERE, $RUN, $CFLAGS, $PLAIN_CFLAGS, $LIBS).
# The fake model's teacher reads images: its runner writes the cache (`mplc-run cache`). The model whose
# teacher reads the cache is generated/fashion_reduced, the compiler's output for Examples/fashion_reduced.swiftdsl
# (the golden tests keep it equal to what mplc writes today), trained for a few steps on a small data set of
# Tests/runner/reduced_data.py (python3 + numpy), so that nothing here needs Swift.

REDUCED_MODEL=${REDUCED_MODEL:-$ROOT/generated/fashion_reduced}
R="$WORK/reduced"
mkdir -p "$R"
if ! out=$(python3 "$HERE/reduced_data.py" make "$R" 2>&1); then
    fail "Tests/runner/reduced_data.py could not write the Reduced MPL test data (needs python3 with numpy)" "$out"
    return 0
fi
build "the reduced model ($REDUCED_MODEL/model.c)" -c "$REDUCED_MODEL/model.c" -I"$REDUCED_MODEL" -o "$R/model.o"
runner_objects "$R/objects" -I"$REDUCED_MODEL"
build "mplc-run of the reduced model" "$R"/objects/*.o "$R/model.o" -o "$R/mplc-run"
build "test_reduced" "$HERE/test_reduced.c" $(ls "$R"/objects/*.o | grep -v '/main\.o$') "$R/model.o" -I"$RUNNER" \
    -I"$REDUCED_MODEL" -o "$R/test_reduced"
RED="$R/mplc-run"
RD="$R/data"         # 600 training images, 550 test images (the first 550 training images again)
RROWS="1150, 10"     # the cache's shape for RD

# The same files as a labeled set used as is (labeled_x.npy, no unlabeled images): the cache's rows still fit.
RA="$R/as-is"
mkdir -p "$RA"
for f in x y; do ln -sf "$RD/train_$f.npy" "$RA/labeled_$f.npy"; ln -sf "$RD/test_$f.npy" "$RA/test_$f.npy"; done

# ---- unit checks: teacher_x rows in batches, the teacher's inputs in evaluation and validation
if out=$("$R/test_reduced" "$RD" "$R/cache.npy" "$RA" 2>&1); then
    pass "Reduced MPL unit checks: $(grep -c '^ok' <<<"$out") (batch_fill_step, evaluate, trainer_pick_labeled)"
else fail "Reduced MPL unit checks" "$out"; fi

# ---- mplc-run cache, in the runner of a model whose teacher reads images
"$RUN" train --data "$RD" --labels 100 --steps 30 --finetune-steps 0 --out "$R/fake" --quiet >/dev/null 2>&1
FC="$R/caches/fake.npy"
CACHE=(cache --checkpoint "$R/fake/checkpoint.safetensors" --data "$RD")
if cache_out=$("$RUN" "${CACHE[@]}" --out "$FC" 2>&1) &&
    grep -q "wrote $FC: float32 \[1150, 10\].*600 training then 550 test images" <<<"$cache_out" && [ ! -e "$FC.tmp" ]; then
    pass "cache: writes FILE.npy (in a new directory), says what it wrote, leaves no temporary file"
else fail "cache" "$cache_out"; fi
if out=$(python3 "$HERE/reduced_data.py" check "$FC" 600 550 10 2>&1); then pass "cache file: $out"
else fail "cache file" "$out"; fi
# The accuracy that cache reports is the teacher's, as eval measures it on the same checkpoint.
correct=$("$RUN" eval --checkpoint "$R/fake/checkpoint.safetensors" --data "$RD" | sed -n 's/.*"correct_teacher":\([0-9]*\).*/\1/p')
want=$(awk -v c="$correct" 'BEGIN { printf "%.2f%%", 100 * c / 550 }')
if [ -n "$correct" ] && grep -q "its test accuracy $want\$" <<<"$cache_out"; then
    pass "cache: the test accuracy it reports ($want) is eval's acc_teacher"
else fail "cache: reported accuracy differs from eval's ($want)" "$cache_out"; fi
cp "$FC" "$R/first.npy"
# A symlink planted at the temporary file is removed, not written through.
echo precious >"$R/victim"
ln -s "$R/victim" "$FC.tmp"
if "$RUN" "${CACHE[@]}" --out "$FC" >/dev/null 2>&1 && cmp -s "$FC" "$R/first.npy" && [ "$(cat "$R/victim")" = precious ]; then
    pass "cache over an existing file, with a symlink planted at FILE.npy.tmp: replaced by the same bytes, the link's target untouched"
else fail "cache written again differs, or wrote through the planted symlink"; fi
expect "cache without --out: exit 2" 2 "cache needs --checkpoint and --out" -- "$RUN" cache --checkpoint "$R/fake/checkpoint.safetensors"
expect "cache of a model whose teacher reads predictions: exit 2" 2 \
    "cache: model fashion_reduced's teacher reads cached predictions, not images; write the cache with the runner of the large teacher's model" -- \
    "$RED" cache --checkpoint "$R/fake/checkpoint.safetensors" --out "$R/never.npy" --data "$RD"
expect "cache: a missing checkpoint: exit 1" 1 "error: .*no-such.safetensors" -- \
    "$RUN" cache --checkpoint "$R/no-such.safetensors" --out "$R/never.npy" --data "$RD"
[ -e "$R/never.npy" ] && fail "a failed cache command wrote a file"

# ---- the flag goes with the model
expect "train --teacher-cache for a model whose teacher reads images: exit 2" 2 \
    "train: --teacher-cache is for models whose teacher reads cached predictions .*; model fake_linear's teacher reads images" -- \
    "$RUN" train --data "$RD" --teacher-cache "$FC"
expect "eval --teacher-cache for a model whose teacher reads images: exit 2" 2 "eval: --teacher-cache is for models" -- \
    "$RUN" eval --checkpoint "$R/fake/checkpoint.safetensors" --data "$RD" --teacher-cache "$FC"
expect "train of a reduced model without --teacher-cache: exit 2" 2 \
    "train: model fashion_reduced's teacher reads the large teacher's cached predictions \(Reduced MPL\): give --teacher-cache FILE.npy" -- \
    "$RED" train --data "$RD" --out "$R/never"
expect "eval of a reduced model without --teacher-cache: exit 2" 2 "eval: model fashion_reduced's teacher reads" -- \
    "$RED" eval --checkpoint "$R/fake/checkpoint.safetensors" --data "$RD"
expect "--help documents --teacher-cache and cache" 0 "required for this model.*cache: writes the teacher's class distributions" -- \
    bash -c "'$RED' --help | tr '\n' ' '"

# ---- bad caches: exit 1 naming the file and the first bad row, before the run directory is touched
bad_cache() { # bad_cache NAME PATTERN
    expect "bad cache ($1): exit 1" 1 "error: $R/bad/$1.npy: $2" -- \
        "$RED" train --data "$RD" --labels 300 --steps 201 --teacher-cache "$R/bad/$1.npy" --out "$R/never" --quiet
}
bad_cache short "shape \(1149, 10\), expected \(1150, 10\): one row per image of the data set \(600 training, then 550 test\) and one column per class of model fashion_reduced"
bad_cache classes "shape \(1150, 11\), expected \(1150, 10\)"
bad_cache nan "row 607 \(test image 7\) is not a class distribution: element 3 is NaN"
bad_cache inf "row 599 \(training image 599\) is not a class distribution: element 0 is Inf"
bad_cache negative "row 5 \(training image 5\) is not a class distribution: element 2 is negative \(-0.25\)"
bad_cache sum "row 42 \(training image 42\) is not a class distribution: it sums to 1.01, not 1 \(tolerance 0.001\)"
bad_cache f64 "unsupported dtype '<f8'"
expect "a cache of another data set (Fashion-MNIST has 70000 images): exit 1" 1 \
    "fake.npy: shape \(1150, 10\), expected \(70000, 10\): one row per image of the data set \(60000 training, then 10000 test\)" -- \
    "$RED" train --data "$FAST" --teacher-cache "$FC" --out "$R/never" --quiet
expect "a missing cache: exit 1" 1 "no-such.npy" -- "$RED" train --data "$RD" --teacher-cache "$R/no-such.npy" --out "$R/never"
[ -e "$R/never" ] && fail "a run with a bad cache created its run directory"

# The training runs below (201 steps of the generated fashion_reduced model each) check what the runner does with a
# cache, not memory safety. They run on a build without the sanitizers and with -march=native, as `mplc train` builds
# a trainer (RunnerBuild.baseFlags): 4 s each here, against 29 s without -march=native and 40 s under ASan. The
# cache's reading is under ASan in test_reduced above, in the replay below and in the fuzz target fuzz_npy, and
# SanitizerTests trains generated models under ASan on their own.
CFLAGS=$PLAIN_CFLAGS build "mplc-run of the reduced model as mplc train builds it (-march=native), for its training runs" \
    -march=native "$RUNNER"/*.c "$REDUCED_MODEL/model.c" -I"$REDUCED_MODEL" -o "$R/mplc-run-native"
RT="$R/mplc-run-native"
# ---- a reduced run, on the fake model's cache: trains, evaluates, finetunes, writes summary.json
# 201 steps: the fewest in which the student learns after the recipe's wait of 200 (a shorter --steps is refused).
RFLAGS=(train --data "$RD" --labels 300 --steps 201 --finetune-steps 2 --eval-every 67 --checkpoint-every 50 --quiet
        --teacher-cache "$FC")
if "$RT" "${RFLAGS[@]}" --out "$R/run" >"$R/run.out" 2>"$R/run.err"; then
    S="$R/run/summary.json"
    n_steps=$(grep -c '"phase":"mpl","step":[0-9]*,"global_step":[0-9]*,"mean_over_steps"' "$R/run/metrics.jsonl")
    if grep -q "\"teacher_cache\": {\"path\": \"$FC\", \"rows\": 1150, \"large_teacher_test_accuracy\": 0\.[0-9]*}" "$S" &&
        [ -n "$(json_number "$S" teacher_after_finetune)" ] && [ -n "$(json_number "$S" student_after_finetune)" ] &&
        [ "$n_steps" = 21 ] && ! grep -q '"loss_uda":[^0]' "$R/run/metrics.jsonl" && ! grep -q "UDA ramp" "$R/run.err" &&
        grep -q "^fashion_reduced mpl seed 0, 300 labels, 201 steps + 2 finetune: student" "$R/run.out"; then
        pass "reduced run: 201 steps + 2 finetune, summary.json with the cache and the accuracies, no UDA loss (nor a warning about its ramp)"
    else fail "reduced run: summary or metrics" "$(cat "$S" "$R/run/metrics.jsonl")"; fi
    teacher=$(json_number "$S" teacher_after_finetune)
    acc=$("$RT" eval --checkpoint "$R/run/checkpoint.safetensors" --data "$RD" --teacher-cache "$FC" |
        sed -n 's/.*"acc_teacher":\([0-9.]*\).*/\1/p')
    if [ -n "$acc" ] && awk -v a="$acc" -v b="$teacher" 'BEGIN { exit !(a == b) }'; then
        pass "eval of the reduced run with --teacher-cache: teacher $acc, as in summary.json"
    else fail "eval of the reduced run: teacher '$acc', summary.json says $teacher"; fi
    expect "eval checks the cache too: exit 1" 1 "nan.npy: row 607 \(test image 7\)" -- \
        "$RT" eval --checkpoint "$R/run/checkpoint.safetensors" --data "$RD" --teacher-cache "$R/bad/nan.npy"
    if [ "$(python3 "$HERE/reduced_data.py" meta "$R/run/checkpoint.safetensors" teacher_cache)" = "$FC" ] &&
        python3 "$HERE/reduced_data.py" meta "$R/run/checkpoint.safetensors" teacher_cache_hash | grep -qE '^fnv1a64:[0-9a-f]{16}$'; then
        pass "the checkpoint records the cache's path and hash"
    else fail "the checkpoint does not record the cache"; fi
else fail "reduced run" "$(cat "$R/run.err")"; fi

# ---- --validation with a cache (each validation image's teacher input is its cached row: test_reduced checks it),
# of the split training set and of a labeled set used as is (its size less the held-out examples is --labels)
if "$RT" "${RFLAGS[@]}" --validation 100 --out "$R/val" >/dev/null 2>"$R/val.err" &&
    [ "$(grep -c '"eval":"validation","validation_examples":100,"acc_teacher":' "$R/val/metrics.jsonl")" = 4 ] &&
    [ -f "$R/val/best.safetensors" ] && [ "$(json_number "$R/val/summary.json" labels)" = 300 ]; then
    pass "reduced run with --validation 100: 4 validation evaluations with the teacher's accuracy, best.safetensors"
else fail "reduced run with --validation" "$(cat "$R/val.err" "$R/val/summary.json" 2>/dev/null)"; fi
VAS=(train --data "$RA" --steps 201 --finetune-steps 2 --eval-every 67 --quiet --teacher-cache "$FC")
if "$RT" "${VAS[@]}" --validation 100 --out "$R/val-as-is" >/dev/null 2>"$R/val-as-is.err" &&
    [ "$(json_number "$R/val-as-is/summary.json" labels)" = 500 ] &&
    grep -q '"eval":"validation","validation_examples":100,"acc_teacher":' "$R/val-as-is/metrics.jsonl"; then
    pass "reduced run on a labeled set used as is with --validation 100: 500 labeled examples, 100 validation ones"
else fail "reduced run on a labeled set used as is with --validation" "$(cat "$R/val-as-is.err" "$R/val-as-is/summary.json" 2>/dev/null)"; fi
expect "--validation as large as a labeled set used as is: exit 1" 1 \
    "--validation 600: $RA has only 600 labeled examples, and some must stay labeled" -- \
    "$RT" "${VAS[@]}" --validation 600 --out "$R/never"
[ -e "$R/never" ] && fail "a refused --validation created its run directory"

# ---- resume: with the same cache, bit-exact (one thread); with another one, an error
if "$RT" "${RFLAGS[@]}" --out "$R/resumed" --stop-at 120 >/dev/null 2>&1 &&
    "$RT" train --data "$RD" --quiet --resume --teacher-cache "$FC" --out "$R/resumed" >/dev/null 2>"$R/resumed.err" &&
    cmp -s "$R/run/checkpoint.safetensors" "$R/resumed/checkpoint.safetensors" &&
    same_metrics "$R/run/metrics.jsonl" "$R/resumed/metrics.jsonl"; then
    pass "reduced run stopped at step 120 and resumed with --teacher-cache: the same checkpoint and metrics, byte for byte"
else fail "reduced run: resume is not bit-exact" "$(cat "$R/resumed.err" 2>/dev/null)"; fi
cp "$FC" "$R/caches/moved.npy"
expect "resume with the same rows in another file: accepted" 0 "already finished" -- \
    "$RT" train --data "$RD" --resume --teacher-cache "$R/caches/moved.npy" --out "$R/resumed"
"$RT" "${RFLAGS[@]}" --out "$R/other" --stop-at 2 >/dev/null 2>&1
expect "resume with a different cache: exit 1" 1 \
    "was trained with the teacher cache $FC \(fnv1a64:[0-9a-f]*\), but --teacher-cache $R/cache.npy holds different rows" -- \
    "$RT" train --data "$RD" --resume --teacher-cache "$R/cache.npy" --out "$R/other" --quiet
# --resume without --teacher-cache takes the cache the checkpoint records (issue 17), and a relative --teacher-cache
# (and --data) is recorded absolute: resumed from / with nothing but --resume --out, the run finds both.
(cd "$(dirname "$FC")" && "$RT" train --data "$RD" --labels 300 --steps 201 --finetune-steps 2 --eval-every 67 \
    --checkpoint-every 50 --quiet --teacher-cache "$(basename "$FC")" --out "$R/relcache" --stop-at 120 >/dev/null 2>&1)
if (cd / && "$RT" train --quiet --resume --out "$R/relcache" >/dev/null 2>"$R/relcache.err") &&
    cmp -s "$R/run/checkpoint.safetensors" "$R/relcache/checkpoint.safetensors"; then
    pass "a relative --teacher-cache, resumed from / with nothing but --resume --out: the same checkpoint byte for byte"
else fail "resume of a run with a relative --teacher-cache from another directory" "$(cat "$R/relcache.err" 2>/dev/null)"; fi
expect "a new run without --teacher-cache: exit 2" 2 "give --teacher-cache" -- "$RED" train --data "$RD" --out "$R/never2"

# ---- replay reads teacher_x.npy
python3 "$HERE/reduced_data.py" replay "$R/replay" 32 128 10 28 28 1
expect "replay of a reduced model: one step with teacher_x.npy" 0 "" -- \
    "$RED" replay --checkpoint "$R/run/checkpoint.safetensors" --batches "$R/replay" --steps 1 --out "$R/replay.safetensors" \
    --losses "$R/replay.jsonl"
[ "$(grep -c '"loss_student_u"' "$R/replay.jsonl" 2>/dev/null)" = 1 ] || fail "replay: no loss line"
rm "$R/replay/step_000000/teacher_x.npy"
expect "replay without teacher_x.npy: exit 1, names it" 1 "step_000000/teacher_x.npy" -- \
    "$RED" replay --checkpoint "$R/run/checkpoint.safetensors" --batches "$R/replay" --steps 1 --out "$R/replay.safetensors" \
    --losses "$R/replay.jsonl"
