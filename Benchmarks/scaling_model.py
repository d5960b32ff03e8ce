#!/usr/bin/env python3
"""The cost model of docs/SCALING.md: expected wall time per data-parallel MPL step on many ranks.

For each rank count R it
  1. compiles the model file with `mplc MODEL --ranks R -o DIR`: the step each rank runs, on its local batch
     (global batch / R), with the all-reduces in the step graph;
  2. counts, in the generated model.c, the mplc_allreduce_sum calls that one mplc_step makes and the floats
     each reduces (the gradients g_u, g_l and the teacher's, BatchNorm's moments and their cotangents, the
     logged scalars: docs/STEP.md);
  3. measures the per-rank compute: Benchmarks/step_timer.c linked with that model.c, 1 thread, CPU seconds
     per step (median). Without -DMPLC_MPI the all-reduce is the identity, so this is the step without
     communication; CPU seconds rather than wall seconds, because this machine is shared;
  4. adds the communication of each all-reduce by the usual model of MPI's large-message algorithm
     (Rabenseifner: reduce-scatter + all-gather), T(n) = 2·log2(P)·α + 2·(P−1)/P · 4n/β, on networks of
     bandwidth β with per-message latency α (assumed, see NETWORKS).

A rank count that does not divide the recipe's batches cannot run the recipe; for those (P > the labeled
batch) the model uses the per-rank step of the largest rank count that can (one labeled image per rank) with
a global batch P times that (a larger global batch than the recipe's: said in the output).

Usage: Benchmarks/scaling_model.py [--model Examples/wrn_28_2.swiftdsl] [--ranks 8,64,512]
       [--steps 300000] [--timed-steps 3] [--mplc .build/debug/mplc] [--work .build-scaling]
Last line of output: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CC_FLAGS = ["-std=c11", "-O3", "-march=native", "-w"]

# (name, bandwidth in bytes/s, latency per message in s). Assumptions, not measurements: MPI over TCP on
# 10 Gb/s Ethernet is typically 20-50 µs per small message; InfiniBand/RoCE at 100 Gb/s is 1-3 µs.
NETWORKS = [("10 Gb/s Ethernet", 10e9 / 8, 25e-6), ("100 Gb/s InfiniBand", 100e9 / 8, 2e-6)]


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"scaling_model: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def allreduce_calls(model_c: str, entry: str) -> list[int]:
    """The float count of every mplc_allreduce_sum that one call of `entry` makes, in order."""
    source = open(model_c).read()
    per_function: dict[str, list[int]] = {}
    for chunk in re.split(r"\n(?=(?:static )?void \w+\()", source):
        name = re.match(r"(?:static )?void (\w+)\(", chunk)
        if name:
            per_function[name.group(1)] = [int(n) for n in re.findall(r"mplc_allreduce_sum\(\w+, (\d+)\)", chunk)]
    start = source.index(f"void {entry}(float")
    body = source[start:source.index("\n}\n", start)]
    calls = [int(n) for n in re.findall(r"mplc_allreduce_sum\(\w+, (\d+)\)", body)]
    for callee in re.findall(r"\b(\w+)\(", body[body.index("{"):]):
        calls += per_function.get(callee, [])
    return calls


def define(header: str, name: str) -> int:
    return int(re.search(rf"#define {name} (\d+)", header).group(1))


def build_and_time(args, ranks: int) -> dict:
    out = os.path.join(args.work, f"ranks{ranks}")
    os.makedirs(out, exist_ok=True)
    run([args.mplc, args.model, "--ranks", str(ranks), "-o", out])
    header = open(os.path.join(out, "model.h")).read()
    calls = allreduce_calls(os.path.join(out, "model.c"), "mplc_step")
    timer = os.path.join(out, "step_timer")
    obj = os.path.join(out, "model.o")
    run(["cc"] + CC_FLAGS + ["-I", out, "-c", os.path.join(out, "model.c"), "-o", obj])
    run(["cc"] + CC_FLAGS + ["-I", out, os.path.join(HERE, "step_timer.c"), obj, "-o", timer,
                             "-lopenblas", "-lz", "-lm"])
    timed = json.loads(run([timer, "--threads", "1", "--warmup", "1", "--steps", str(args.timed_steps)])
                       .strip().splitlines()[-1])
    return {
        "ranks_compiled": ranks,
        "local_batch_labeled": define(header, "MPLC_LOCAL_BATCH_LABELED"),
        "local_batch_unlabeled": define(header, "MPLC_LOCAL_BATCH_UNLABELED"),
        "allreduce_calls": len(calls), "allreduce_floats": sum(calls), "allreduce_sizes": calls,
        "compute_cpu_s": statistics.median(timed["cpu_times"]), "compute_cpu_times": timed["cpu_times"],
        "load_average": timed.get("load_average"),
    }


def allreduce_seconds(sizes: list[int], ranks: int, bandwidth: float, latency: float) -> float:
    if ranks == 1:
        return 0.0
    return sum(2 * math.log2(ranks) * latency + 2 * (ranks - 1) / ranks * 4 * n / bandwidth for n in sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "Examples/wrn_28_2.swiftdsl"))
    parser.add_argument("--ranks", default="8,64,512")
    parser.add_argument("--steps", type=int, default=300_000, help="steps of the run (the paper's 300k)")
    parser.add_argument("--timed-steps", type=int, default=3)
    parser.add_argument("--mplc", default=os.path.join(ROOT, ".build/debug/mplc"))
    parser.add_argument("--work", default=os.path.join(ROOT, ".build-scaling"))
    args = parser.parse_args()

    recipe = open(args.model).read()
    labeled = int(re.search(r"labeledBatch\((\d+)\)", recipe).group(1))
    ratio = int(re.search(r"unlabeledRatio\((\d+)\)", recipe).group(1))
    rows = []
    measured: dict[int, dict] = {}
    for ranks in [int(r) for r in args.ranks.split(",")]:
        compiled = ranks if labeled % ranks == 0 else max(r for r in range(1, labeled + 1) if labeled % r == 0
                                                          and (labeled * ratio) % r == 0)
        if compiled not in measured:
            print(f"scaling_model: {ranks} ranks: compiling and timing the per-rank step (ranks {compiled})",
                  file=sys.stderr, flush=True)
            measured[compiled] = build_and_time(args, compiled)
        m = measured[compiled]
        row = {"ranks": ranks, "global_batch_labeled": m["local_batch_labeled"] * ranks,
               "recipe_batch": compiled == ranks, **{k: v for k, v in m.items() if k != "allreduce_sizes"}}
        for name, bandwidth, latency in NETWORKS:
            comm = allreduce_seconds(m["allreduce_sizes"], ranks, bandwidth, latency)
            bytes_term = allreduce_seconds(m["allreduce_sizes"], ranks, bandwidth, 0.0)
            step = m["compute_cpu_s"] + comm
            row[name] = {"comm_s": comm, "comm_bandwidth_s": bytes_term, "comm_latency_s": comm - bytes_term,
                         "step_s": step, "comm_fraction": comm / step, "run_days": step * args.steps / 86400}
        rows.append(row)

    print(f"{os.path.basename(args.model)}: recipe batch {labeled} labeled + {labeled * ratio} unlabeled; "
          f"{args.steps} steps; compute = per-rank CPU s/step at 1 thread (median of {args.timed_steps}), "
          f"communication modelled")
    header = "| ranks | local batch l+u | all-reduces/step | MB/step | compute s |"
    for name, _, latency in NETWORKS:
        header += f" {name} (α {latency * 1e6:g} µs): comm s (latency part) | step s | comm % | days |"
    print(header)
    print("|" + "---|" * (5 + 4 * len(NETWORKS)))
    for r in rows:
        line = (f"| {r['ranks']}{'' if r['recipe_batch'] else '*'} | {r['local_batch_labeled']}+"
                f"{r['local_batch_unlabeled']} | {r['allreduce_calls']} | {4 * r['allreduce_floats'] / 1e6:.1f} | "
                f"{r['compute_cpu_s']:.2f} |")
        for name, _, _ in NETWORKS:
            n = r[name]
            line += (f" {n['comm_s']:.3f} ({n['comm_latency_s']:.3f}) | {n['step_s']:.2f} | "
                     f"{100 * n['comm_fraction']:.0f} | {n['run_days']:.1f} |")
        print(line)
    if any(not r["recipe_batch"] for r in rows):
        print("* the recipe's labeled batch does not divide over these ranks: modelled with one labeled image per "
              "rank, i.e. a larger global batch than the recipe's")
    print(json.dumps({"model": args.model, "steps": args.steps, "networks": NETWORKS, "rows": rows}))


if __name__ == "__main__":
    main()
