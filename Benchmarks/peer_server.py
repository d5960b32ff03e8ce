#!/usr/bin/env python3
"""Serves one benchmark peer's steps on demand, so that Benchmarks/run can interleave them with mplc's.

    peer_server.py jax|torch|torch_compile --workload WORKLOAD --mode hard|soft --threads T [--warmup W] [--seed S]

Uses the peers' own functions (Benchmarks/peers/jax_step.py and torch_step.py: thread setup, jitted step,
torch step, eager or under torch.compile) and common.example's random state and batch, exactly as their timing mode does. After W untimed
steps it prints {"ready": true}; then each line on stdin is a command: "K" runs K steps (each on the state the
previous one produced) and prints {"times": [...], "cpu_times": [...]}; "rss" prints {"peak_rss_bytes": ...}.
End of input exits.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import common  # noqa: E402


def peak_rss_bytes() -> int:
    """VmHWM of this process image. getrusage's ru_maxrss (common.peak_rss_bytes) carries a parent's peak over
    fork and exec on Linux, so a peer started by a large Python process would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return common.peak_rss_bytes()


def jax_stepper(args):
    import jax_step
    jax_step.configure_threads(args.threads)      # before JAX is imported
    import jax
    spec, state, batch = common.example(args.workload, args.mode, args.seed)
    step = jax_step.make_step(spec)
    holder = list(jax_step.to_device(state, batch))

    def run_one():
        holder[0], outputs = step(holder[0], holder[1])
        jax.block_until_ready((holder[0], outputs))
    return run_one


def torch_stepper(args):
    import torch_step
    torch_step.configure_threads(args.threads)
    spec, state, batch = common.example(args.workload, args.mode, args.seed)
    runner = torch_step.Runner(spec, compile=args.peer == "torch_compile")
    parts, inp = runner.inputs(state, batch)
    holder = [parts]

    def run_one():
        holder[0], _ = runner.step(holder[0], inp)
    return run_one


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", choices=("jax", "torch", "torch_compile"))
    ap.add_argument("--workload", choices=common.WORKLOADS, required=True)
    ap.add_argument("--mode", choices=common.MODES, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    run_one = (jax_stepper if args.peer == "jax" else torch_stepper)(args)
    for _ in range(args.warmup):
        run_one()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "rss":
            print(json.dumps({"peak_rss_bytes": peak_rss_bytes()}), flush=True)
            continue
        times, cpu_times = [], []
        for _ in range(int(command)):
            start, cpu_start = time.perf_counter(), time.process_time()
            run_one()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        print(json.dumps({"times": times, "cpu_times": cpu_times}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
