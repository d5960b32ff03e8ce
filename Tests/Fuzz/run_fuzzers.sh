#!/usr/bin/env bash
# Builds the libFuzzer targets of the runner's readers with AddressSanitizer and UndefinedBehaviorSanitizer
# and runs each for a bounded time. Exits non-zero if any target crashes, leaks, times out or fails to build.
#
#   Tests/Fuzz/run_fuzzers.sh [--seconds N] [--only TARGET] [--jobs J]   (default: 20 s per target)
#   Tests/Fuzz/run_fuzzers.sh --make-seeds                               (rewrites Tests/Fuzz/corpus/<target>/)
#
# Targets (Tests/Fuzz/fuzz_*.c): idx (IDX, plain and gzip), npy, json (the safetensors header parser),
# safetensors (checkpoints: st_load and checkpoint_resume), cifar (CIFAR-10 binary batches), mat (MAT-files:
# mat_read and svhn_read), image (PNG and JPEG files through stb_image: image_read), csv (CSV feature
# vectors: csv_read). Each starts from Tests/Fuzz/corpus/<target>/
# (seeds, and any input that once crashed a reader, named crash-*), which libFuzzer first replays in
# full; the corpus it grows goes to a temporary directory, not the repository. Crash inputs are copied to
# $MPLC_FUZZ_ARTIFACTS (default: the work directory, printed) so they can be added to the corpus.
# Needs clang with libFuzzer (default: the Swift toolchain's, /opt/swift/usr/bin/clang; MPLC_FUZZ_CC overrides)
# and zlib.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNNER="$ROOT/Templates/runner"
CC=${MPLC_FUZZ_CC:-/opt/swift/usr/bin/clang}
[ -x "$CC" ] || CC=$(command -v clang || true)
SECONDS_PER_TARGET=${MPLC_LIBFUZZER_SECONDS:-20}
ONLY=""
MAKE_SEEDS=0
JOBS=1
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECONDS_PER_TARGET=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --make-seeds) MAKE_SEEDS=1; shift ;;
    *) echo "usage: $0 [--seconds N] [--only TARGET] [--jobs J] | --make-seeds" >&2; exit 2 ;;
    esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mplc-fuzz.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
ARTIFACTS=${MPLC_FUZZ_ARTIFACTS:-$WORK/artifacts}
mkdir -p "$ARTIFACTS"

if [ -z "$CC" ]; then echo "FAIL no clang found (set MPLC_FUZZ_CC)"; exit 1; fi
# Every runner source but main.c, with the tiny model's tables (Tests/Fuzz/tiny_model).
SOURCES=$(ls "$RUNNER"/*.c | grep -v '/main\.c$')
COMMON=(-std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -I"$RUNNER" -I"$HERE/tiny_model" -I"$HERE")
LDLD=()
if "$CC" -fuse-ld=lld -x c - -o "$WORK/ldcheck" <<<'int main(void){return 0;}' 2>/dev/null; then LDLD=(-fuse-ld=lld); fi

if [ "$MAKE_SEEDS" = 1 ]; then
    "$CC" "${COMMON[@]}" "${LDLD[@]}" "$HERE/make_seeds.c" $SOURCES "$HERE/tiny_model/model.c" -lz -lm -o "$WORK/make_seeds" || exit 1
    "$WORK/make_seeds" "$HERE/corpus" || exit 1
    # One real Fashion-MNIST file as an IDX seed (labels, gzip): selector byte 1, then the file.
    DATA=${MPLC_TEST_DATA:-/usr/share/datasets/fashion-mnist}
    if [ -f "$DATA/t10k-labels-idx1-ubyte.gz" ]; then
        { printf '\001'; cat "$DATA/t10k-labels-idx1-ubyte.gz"; } >"$HERE/corpus/idx/fashion-t10k-labels-gzip"
    fi
    echo "seeds written to $HERE/corpus"
    exit 0
fi

TARGETS=(idx npy json safetensors cifar mat image csv)
[ -n "$ONLY" ] && TARGETS=("$ONLY")
FAILED=0
TOTAL_RUNS=0
# The runner's files and the tiny model are compiled once, instrumented for libFuzzer's coverage, and every target
# links them (before, each target compiled all of them again: most of this script's CPU time in CI).
# stb_image 2.27 (Debian's, included by image.c) computes garbage pixels of a corrupt JPEG with shifts past 31 bits
# and signed overflow (bit-buffer underruns, the IDCT of wild coefficients), and copies 0 bytes to a NULL buffer (an
# empty PNG IDAT chunk first): undefined in C, harmless as compiled (wrong pixels of a corrupt file, no memory
# access). Those three checks are off for image.c, whose code only fuzz_image reaches; bounds, AddressSanitizer and
# the rest stay (they found the Huffman-table overflow that image.c now refuses).
SANITIZE=(-fsanitize=address,undefined -fno-sanitize-recover=all)
mkdir -p "$WORK/objects"
for src in $SOURCES "$HERE/tiny_model/model.c"; do
    quiet=()
    [ "$(basename "$src")" = image.c ] && quiet=(-fno-sanitize=shift,signed-integer-overflow,nonnull-attribute)
    if ! out=$("$CC" "${COMMON[@]}" -fsanitize=fuzzer-no-link "${SANITIZE[@]}" "${quiet[@]}" -c "$src" \
        -o "$WORK/objects/$(basename "$src" .c).o" 2>&1); then
        echo "FAIL build $(basename "$src") for the fuzz targets"
        sed 's/^/     | /' <<<"$out"
        echo "reader fuzzing: ${#TARGETS[@]} targets, 0 inputs, ${#TARGETS[@]} failed"
        exit 1
    fi
done
for t in "${TARGETS[@]}"; do
    bin="$WORK/fuzz_$t"
    if ! out=$("$CC" "${COMMON[@]}" "${LDLD[@]}" -fsanitize=fuzzer "${SANITIZE[@]}" "$HERE/fuzz_$t.c" "$WORK"/objects/*.o \
        -lz -lm -o "$bin" 2>&1); then
        echo "FAIL build fuzz_$t"
        sed 's/^/     | /' <<<"$out"
        FAILED=$((FAILED + 1))
        continue
    fi
    seeds="$HERE/corpus/$t"
    corpus="$WORK/corpus-$t"
    mkdir -p "$corpus"
    cp "$seeds"/* "$corpus"/ 2>/dev/null
    n_seeds=$(ls "$seeds" | wc -l)
    dict=()
    [ -f "$HERE/dict/$t.dict" ] && dict=(-dict="$HERE/dict/$t.dict")
    log="$WORK/fuzz_$t.log"
    start=$(date +%s)
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: a reader must not need 2 GB for a few KB.
    # -jobs > 1 runs that many fuzzing processes in parallel (each for the whole time).
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
        "$bin" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t-" -seed=1 \
        $([ "$JOBS" -gt 1 ] && echo "-jobs=$JOBS -workers=$JOBS") "$corpus" >"$log" 2>&1
    rc=$?
    [ "$JOBS" -gt 1 ] && cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
    elapsed=$(($(date +%s) - start))
    runs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
    TOTAL_RUNS=$((TOTAL_RUNS + runs))
    cov=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    grown=$(ls "$corpus" | wc -l)
    if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz assertion failed' "$log"; then
        echo "ok   fuzz_$t: ${elapsed} s, $runs inputs, 0 crashes ($cov; corpus $n_seeds seeds -> $grown inputs)"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL fuzz_$t: exit $rc after ${elapsed} s, $runs inputs; crash inputs in $ARTIFACTS:"
        ls "$ARTIFACTS" | grep "^$t-" | sed 's/^/     | /'
        grep -E -A 30 'ERROR:|runtime error:|fuzz assertion failed' "$log" | head -n 60 | sed 's/^/     | /'
    fi
done
echo "reader fuzzing: ${#TARGETS[@]} targets, $TOTAL_RUNS inputs, $FAILED failed"
[ "$FAILED" -eq 0 ]
