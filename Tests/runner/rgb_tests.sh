# CIFAR-10 and SVHN: sourced by run_tests.sh (it uses build, runner_objects, pass, fail, expect, json_number, $WORK,
# $RUNNER, $FAKE, $HERE, $RUN). The fake model is built again for 3x32x32 images (-DFAKE_RGB32);
# Tests/runner/rgb_data.py (python3 + numpy) writes small data sets in the published formats, good and broken.

runner_objects "$WORK/objects-rgb" -I"$FAKE" -DFAKE_RGB32
RGB_OBJ=$(ls "$WORK"/objects-rgb/*.o | grep -v '/main\.o$')
build "mplc-run for 3x32x32 images (fake model -DFAKE_RGB32)" $RGB_OBJ "$WORK/objects-rgb/main.o" "$FAKE/model.c" \
    -I"$FAKE" -DFAKE_RGB32 -o mplc-run-rgb
build "test_rgb" "$HERE/test_rgb.c" $RGB_OBJ "$FAKE/model.c" -I"$RUNNER" -I"$FAKE" -DFAKE_RGB32 -o test_rgb
RGB="$WORK/mplc-run-rgb"
TR="$WORK/test_rgb"
D="$WORK/rgb"

if out=$("$TR" unit "$WORK/rgb-unit" 2>&1); then pass "RGB unit tests: augmentation, CIFAR-10 and MAT readers, 4K/1K splits ($(tail -n 1 <<<"$out"))"
else fail "RGB unit tests" "$out"; fi

if ! out=$(python3 "$HERE/rgb_data.py" make "$D" 2>&1); then
    fail "Tests/runner/rgb_data.py could not write the CIFAR-10 and SVHN test data (needs python3 with numpy)" "$out"
    return 0
fi

# ---- what the readers load: every pixel and label against numpy's own layout
for kind in cifar svhn; do
    if out=$("$TR" dump "$D/$kind" "$WORK/dump-$kind" 2>&1 && python3 "$HERE/rgb_data.py" check "$D" "$kind" "$WORK/dump-$kind" 2>&1)
    then pass "$(tail -n 1 <<<"$out")"
    else fail "$kind: loaded data differs from what was written" "$out"; fi
done
expect "CIFAR-10 in DIR/cifar-10-batches-bin (as the archive unpacks)" 0 "^cifar10: 300 train, 100 test" -- \
    "$TR" dump "$D/cifar-nested" "$WORK/dump-nested"
if python3 -c "import scipy.io" 2>/dev/null; then
    # an SVHN-like file from another writer: scipy.io.savemat, compressed, X uint8, y double
    python3 - "$D/expect" "$WORK/scipy.mat" <<'EOF'
import sys, numpy as np, scipy.io
x, y = np.load(sys.argv[1] + "/svhn_test_x.npy"), np.load(sys.argv[1] + "/svhn_test_y.npy")
scipy.io.savemat(sys.argv[2], {"X": x.transpose(1, 2, 3, 0), "y": np.where(y == 0, 10, y).astype(np.float64).reshape(-1, 1)},
                 do_compression=True)
EOF
    want=$(python3 -c "import numpy as np; y=np.load('$D/expect/svhn_test_y.npy'); x=np.load('$D/expect/svhn_test_x.npy'); print('120 images, labels', ' '.join(map(str, y[:10])) + ', first pixel', *x[0, 0, 0])")
    expect "SVHN file written by scipy.io.savemat (compressed) reads the same" 0 "^$want\$" -- "$TR" mat "$WORK/scipy.mat"
else
    echo "skip SVHN file written by scipy.io.savemat (no scipy)"
fi

# ---- training runs
if "$RGB" train --data "$D/cifar" --labels 40 --steps 60 --finetune-steps 10 --out "$WORK/cifar-run" --quiet >/dev/null \
    2>"$WORK/cifar-run.err"; then
    acc=$(json_number "$WORK/cifar-run/summary.json" student_after_finetune)
    if grep -q '"data_format": "cifar10"' "$WORK/cifar-run/summary.json" && grep -q '"flip": true' "$WORK/cifar-run/summary.json" &&
        awk -v a="$acc" 'BEGIN { exit !(a > 0.7) }'; then
        pass "CIFAR-10: train, 40 labels, 60 steps + 10 finetune on 32x32x3: student $acc; data_format cifar10, flips on"
    else fail "CIFAR-10 run: accuracy $acc, or summary.json lacks data_format/flip" "$(cat "$WORK/cifar-run/summary.json")"; fi
else fail "CIFAR-10 training run" "$(cat "$WORK/cifar-run.err")"; fi
if "$RGB" train --data "$D/svhn" --labels 40 --steps 60 --finetune-steps 10 --out "$WORK/svhn-run" --quiet >/dev/null \
    2>"$WORK/svhn-run.err"; then
    acc=$(json_number "$WORK/svhn-run/summary.json" student_after_finetune)
    if grep -q '"data_format": "svhn"' "$WORK/svhn-run/summary.json" && grep -q '"flip": false' "$WORK/svhn-run/summary.json" &&
        awk -v a="$acc" 'BEGIN { exit !(a > 0.7) }'; then
        pass "SVHN: train, 40 labels, 60 steps + 10 finetune on 32x32x3: student $acc; data_format svhn, no flips"
    else fail "SVHN run: accuracy $acc, or summary.json lacks data_format/flip" "$(cat "$WORK/svhn-run/summary.json")"; fi
else fail "SVHN training run" "$(cat "$WORK/svhn-run.err")"; fi
expect "eval on a CIFAR-10 checkpoint" 0 '"test_examples":100,.*"acc_student":' -- \
    "$RGB" eval --checkpoint "$WORK/cifar-run/checkpoint.safetensors" --data "$D/cifar"
"$RGB" train --data "$D/svhn" --labels 40 --steps 21 --finetune-steps 0 --flip yes --out "$WORK/svhn-flip" --quiet >/dev/null 2>&1
if grep -q '"flip": true' "$WORK/svhn-flip/summary.json" 2>/dev/null; then pass "--flip yes turns flips on for SVHN"
else fail "--flip yes on SVHN: summary.json says no flips"; fi
expect "--flip with a bad value: exit 2" 2 "--flip must be auto, yes or no, got 'maybe'" -- \
    "$RGB" train --data "$D/cifar" --flip maybe

# resume with flips (they draw one more number per view) stays bit-exact
RFLAGS=(train --data "$D/cifar" --steps 30 --finetune-steps 10 --labels 40 --eval-every 10 --checkpoint-every 7 --quiet)
"$RGB" "${RFLAGS[@]}" --out "$WORK/cifar-full" >/dev/null 2>&1
"$RGB" "${RFLAGS[@]}" --out "$WORK/cifar-part" --stop-at 17 >/dev/null 2>&1
"$RGB" train --data "$D/cifar" --resume --out "$WORK/cifar-part" --quiet >/dev/null 2>&1
if cmp -s "$WORK/cifar-full/checkpoint.safetensors" "$WORK/cifar-part/checkpoint.safetensors" &&
    same_metrics "$WORK/cifar-full/metrics.jsonl" "$WORK/cifar-part/metrics.jsonl"; then
    pass "CIFAR-10 with flips: stopped at step 17, resumed: checkpoint and metrics.jsonl identical (cmp)"
else fail "CIFAR-10 resume differs from the uninterrupted run"; fi
"$RGB" "${RFLAGS[@]}" --out "$WORK/cifar-part2" --stop-at 17 >/dev/null 2>&1
expect "resume with a different --flip: exit 1" 1 "the run was started with --flip yes, but this command says --flip no" -- \
    "$RGB" train --data "$D/cifar" --resume --flip no --out "$WORK/cifar-part2" --quiet

# ---- broken files: exit 1 with the file and the cause, no crash, no run directory
bad_case() { # bad_case DIR PATTERN
    expect "$1: exit 1" 1 "$2" -- "$RGB" train --data "$D/$1" --labels 40 --out "$WORK/bad-rgb" --quiet
}
bad_case cifar-truncated "cifar-truncated/test_batch.bin: truncated or not a CIFAR-10 batch: 307200 bytes is not a multiple of the 3073-byte record"
bad_case cifar-badlabel "cifar-badlabel/data_batch_2.bin: label 10 of record 7 .*is not a CIFAR-10 class"
bad_case cifar-missing "cifar-missing: missing CIFAR-10 file\(s\) data_batch_3.bin, data_batch_5.bin"
bad_case cifar-empty "cifar-empty/data_batch_4.bin: empty"
bad_case svhn-truncated "svhn-truncated/train_32x32.mat: truncated: data element of type 15 announces"
bad_case svhn-corrupt "svhn-corrupt/train_32x32.mat: corrupt compressed element at byte [0-9]+"
bad_case svhn-v73 "svhn-v73/train_32x32.mat: a MATLAB v7.3 \(HDF5\) MAT-file"
bad_case svhn-bigendian "svhn-bigendian/train_32x32.mat: big-endian MAT-file"
bad_case svhn-noy "svhn-noy/train_32x32.mat: no variable 'y' \(the labels\); the file has: X"
bad_case svhn-badlabel "svhn-badlabel/train_32x32.mat: y\(6\) = 11 is not an SVHN label"
bad_case svhn-wrongshape "svhn-wrongshape/train_32x32.mat: X is 28x28x3x400; SVHN images are 32x32x3xN"
bad_case svhn-cell "svhn-cell/train_32x32.mat: variable 'X' is a cell array"
bad_case svhn-ycount "svhn-ycount/train_32x32.mat: y is 399x1; expected 400x1 labels"
expect "CIFAR-10 with a 28x28x1 model: exit 1 with the numbers" 1 \
    "cifar/data_batch_1.bin: CIFAR-10 images are 32x32 with 3 channels, model fake_linear expects 28x28 with 1 channel" -- \
    "$RUN" train --data "$D/cifar" --labels 40 --out "$WORK/bad-rgb" --quiet
expect "SVHN with a 28x28x1 model: exit 1 with the numbers" 1 \
    "svhn/train_32x32.mat: SVHN images are 32x32 with 3 channels, model fake_linear expects 28x28 with 1 channel" -- \
    "$RUN" train --data "$D/svhn" --labels 40 --out "$WORK/bad-rgb" --quiet
if [ -e "$WORK/bad-rgb" ]; then fail "bad CIFAR-10/SVHN data left a run directory behind"
else pass "bad CIFAR-10/SVHN data creates no run directory"; fi
# --init-from a checkpoint of the 28x28 model (a 21-step run of its own: this file runs apart from run_tests.sh's
# own tests under PART=2): every name and shape is checked.
"$RUN" train --data "$FAST" --steps 21 --finetune-steps 0 --labels 100 --eval-every 1000 --out "$WORK/grey-28" --quiet \
    >/dev/null 2>&1 || fail "the 28x28 run for --init-from"
expect "--init-from a checkpoint of another architecture: exit 1 naming the tensor and both shapes" 1 \
    "--init-from: .*grey-28/checkpoint.safetensors: tensor \"teacher/dense2/weight\" has shape \[784,10\], model fake_linear_rgb expects \[3072,10\]" -- \
    "$RGB" train --data "$D/cifar" --labels 40 --init-from "$WORK/grey-28/checkpoint.safetensors" --out "$WORK/init-rgb" --quiet
