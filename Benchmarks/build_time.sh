#!/usr/bin/env bash
# How long `mplc train` takes to build a model's trainer, against the single `cc` of every file it used to run
# (docs/RUNNER.md, "mplc train"), in one run. Usage: Benchmarks/build_time.sh [ROUNDS] (default 3), after
# `swift build`. Each round, in turn:
#   single cc  `mplc MODEL -o DIR`, then one `cc` of model.c and Templates/runner/*.c (the build before 2026-12-06);
#   cold       `mplc train MODEL` in an empty folder: every file compiled, in parallel, the shared objects cached;
#   new model  `mplc train` of the same file with another learning rate in that folder: the shared objects reused.
# Prints the median wall seconds of each, the ratios to the single cc, the cores and the load.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MPLC=$ROOT/.build/debug/mplc
MODEL=$ROOT/Examples/fashion_cnn.swiftdsl
ROUNDS=${1:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
# mplc train MODEL in DIR against a missing data folder: it builds the trainer, which then stops at once.
build() {
    local out
    out=$(cd "$1" && "$MPLC" train "$2" --data /nonexistent --out run 2>&1 || true)
    grep -q '^mplc: built' <<<"$out" || { echo "mplc train did not build: $out"; exit 1; }
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
for r in $(seq "$ROUNDS"); do
    d=$W/round$r
    mkdir -p "$d"
    s=$(now)
    "$MPLC" "$MODEL" -o "$d/gen" >/dev/null
    cc -std=c11 -O3 -march=native -Wall -Wextra -Werror -I "$d/gen" "$d/gen/model.c" "$ROOT"/Templates/runner/*.c \
        -o "$d/gen/mplc-run" -lopenblas -lz -lm
    e=$(now)
    echo "$e - $s" | bc >>"$W/single"
    s=$(now)
    build "$d" "$MODEL"
    e=$(now)
    echo "$e - $s" | bc >>"$W/cold"
    sed 's/learningRate: 0.05/learningRate: 0.04/' "$MODEL" >"$d/other.swiftdsl"
    s=$(now)
    build "$d" other.swiftdsl
    e=$(now)
    echo "$e - $s" | bc >>"$W/warm"
done
single=$(median <"$W/single")
cold=$(median <"$W/cold")
warm=$(median <"$W/warm")
printf 'median of %d rounds, wall seconds: single cc %.1f, cold %.1f (%.2fx), new model %.1f (%.2fx)\n' "$ROUNDS" \
    "$single" "$cold" "$(echo "$single / $cold" | bc -l)" "$warm" "$(echo "$single / $warm" | bc -l)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
