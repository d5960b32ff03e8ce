#!/usr/bin/env python3
"""The 3x3 stride-1 convolutions of WRN-28-2, kernel by kernel: mplc's runtime against PyTorch.

    Benchmarks/conv_bench.py [--threads T] [--rounds R] [--reps K] [--batches 240,112] [--baseline DIR]
                             [--ops fwd,dx,dw] [--no-torch] [--cpu-time]

Builds Benchmarks/conv_bench.c (the runtime's Winograd kernels, called as a generated step calls them: chunks of
images, threads of the runtime's pool) with RunnerBuild's flags, and times at every 3x3 stride-1 shape of
WRN-28-2 (16->32 and 32->32 at 32x32, 64->64 at 16x16, 128->128 at 8x8; the chunk of images of the generated
step) the forward convolution, its input gradient and its weight gradient against torch's conv2d forward and
aten.convolution_backward (channels-last, float32, torch.set_num_threads(T)). Rounds are interleaved: in each,
every shape and op runs mplc (K calls, their median) then torch (K calls, their median); a row's figure is the
median over rounds. --baseline DIR also builds the bench against DIR/Templates/runtime/mplc_runtime.h (say, a
checkout of main) and times it in the same rounds. Prints a table and one JSON line with every row.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (RunnerBuild's cc flags)

# (H, C_in, C_out, images per chunk in the generated step at B_l 16): WRN-28-2's 3x3 stride-1 convolutions.
SHAPES = [(32, 16, 32, 1), (32, 32, 32, 1), (16, 64, 64, 1), (8, 128, 128, 3)]


def build(runtime_dir: str, out: str) -> str:
    cmd = ["cc"] + bench.cc_flags() + ["-I", runtime_dir, os.path.join(HERE, "conv_bench.c"), "-o", out,
                                       "-lopenblas", "-lm", "-lpthread"]
    subprocess.run(cmd, check=True)
    return out


def mplc_time(binary: str, op: str, n: int, h: int, cin: int, cout: int, chunk: int, reps: int, threads: int,
              field: str = "median_s") -> float:
    cmd = [binary, op, str(n), str(h), str(h), str(cin), str(cout), str(chunk), str(reps), str(threads)]
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(line)[field]


def torch_op(torch, op: str, n: int, h: int, cin: int, cout: int):
    """A closure that runs the op once on channels-last tensors."""
    cl = torch.channels_last
    x = torch.randn(n, cin, h, h).to(memory_format=cl)
    w = torch.randn(cout, cin, 3, 3).to(memory_format=cl)
    gy = torch.randn(n, cout, h, h).to(memory_format=cl)
    if op == "fwd":
        return lambda: torch.nn.functional.conv2d(x, w, padding=1)
    mask = [op == "dx", op == "dw", False]
    return lambda: torch.ops.aten.convolution_backward(gy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)


def torch_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batches", default="240")
    parser.add_argument("--ops", default="fwd,dx,dw")
    parser.add_argument("--baseline", help="a checkout whose Templates/runtime to time beside this one")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--cpu-time", action="store_true",
                        help="mplc's figures in process CPU seconds (at 1 thread on a loaded machine, the work without "
                             "the waits for a core; torch's stay wall-clock: use with --no-torch)")
    args = parser.parse_args()
    if not args.no_torch:
        import torch
        torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix="conv_bench.")
    binaries = {"mplc": build(os.path.join(ROOT, "Templates", "runtime"), os.path.join(work, "conv_bench"))}
    if args.baseline:
        baseline_runtime = os.path.join(args.baseline, "Templates", "runtime")
        if not os.path.isfile(os.path.join(baseline_runtime, "mplc_runtime.h")):
            sys.exit(f"conv_bench: --baseline {args.baseline}: no Templates/runtime/mplc_runtime.h there")
        binaries["baseline"] = build(baseline_runtime, os.path.join(work, "conv_bench_baseline"))
    rows = [(op, n, h, cin, cout, chunk) for n in map(int, args.batches.split(",")) for (h, cin, cout, chunk) in SHAPES
            for op in args.ops.split(",")]
    samples = {row: {} for row in rows}
    closures = {}
    for _ in range(args.rounds):
        for row in rows:
            op, n, h, cin, cout, chunk = row
            for name, binary in binaries.items():
                samples[row].setdefault(name, []).append(mplc_time(binary, op, n, h, cin, cout, chunk, args.reps,
                                                                   args.threads,
                                                                   "cpu_median_s" if args.cpu_time else "median_s"))
            if not args.no_torch:
                if row not in closures:
                    closures[row] = torch_op(torch, op, n, h, cin, cout)
                samples[row].setdefault("torch", []).append(torch_time(closures[row], args.reps))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    clock = "process CPU" if args.cpu_time else "wall-clock"
    print(f"threads {args.threads}, {args.rounds} rounds of {args.reps} calls ({clock} medians), load average {' '.join(load)}")
    names = list(binaries) + ([] if args.no_torch else ["torch"])
    print(f"{'op':4} {'N':>4} {'H':>3} {'C_in':>4} {'C_out':>5} " + " ".join(f"{n + ' ms':>12}" for n in names)
          + ("   torch/mplc" if "torch" in names else "") + ("   baseline/mplc" if "baseline" in names else "")
          + "   mplc GFLOP/s (im2col count)")
    result = []
    for row in rows:
        op, n, h, cin, cout, chunk = row
        med = {name: statistics.median(samples[row][name]) for name in names}
        flop = 2.0 * n * h * h * 9 * cin * cout
        line = f"{op:4} {n:4} {h:3} {cin:4} {cout:5} " + " ".join(f"{med[name] * 1e3:12.2f}" for name in names)
        if "torch" in med:
            line += f"   {med['torch'] / med['mplc']:10.2f}"
        if "baseline" in med:
            line += f"   {med['baseline'] / med['mplc']:13.2f}"
        line += f"   {flop / med['mplc'] / 1e9:8.1f}"
        print(line)
        result.append({"op": op, "n": n, "h": h, "in": cin, "out": cout, "chunk": chunk,
                       **{f"{name}_s": med[name] for name in names}})
    total = {name: sum(r[f"{name}_s"] for r in result) for name in names}
    print("all rows: " + ", ".join(f"{name} {t * 1e3:.1f} ms" for name, t in total.items())
          + (f", torch/mplc {total['torch'] / total['mplc']:.2f}" if "torch" in total else "")
          + (f", baseline/mplc {total['baseline'] / total['mplc']:.2f}" if "baseline" in total else ""))
    print(json.dumps({"threads": args.threads, "load": load, "rows": result}))


if __name__ == "__main__":
    main()
