#!/usr/bin/env python3
"""JAX benchmark peer: the reference MPL step (Tests/reference/mpl_jax.py) under one jax.jit, float32, CPU.
Command line and outputs: see common.py.

Threads: the process is pinned to T CPUs (sched_setaffinity, before JAX is imported), so XLA's thread pools
see T cores, and XLA_FLAGS gets "--xla_cpu_multi_thread_eigen=<T > 1> intra_op_parallelism_threads=T".
With T = 1 that is the usual single-thread recipe. With T > 1 Eigen's multi-threading stays on: with it off,
XLA's matrix products and convolutions run on one thread whatever T is (W1 hard measured 0.45 s/step at
T = 2 with it off against 0.29 s with it on, on a shared machine at load 3.6), which would not be a
T-thread peer. Other XLA_FLAGS in the environment are kept, and one that already sets
xla_cpu_multi_thread_eigen wins.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PEER = "jax"


def configure_threads(threads: int) -> None:
    env = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in env:     # an explicit setting in the environment wins
        eigen = "true" if threads > 1 else "false"
        flags = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
        os.environ["XLA_FLAGS"] = (env + " " + flags).strip()
    common.pin_threads(threads)


def make_step(spec):
    """The jitted float32 step: (state, batch) of jax arrays -> (state, outputs); the state is donated. Without
    the teacher_grad_*_norm outputs (three more teacher VJPs that mplc's step does not compute by default)."""
    import functools
    import jax
    import mpl_jax  # found through common's path to Tests/reference
    return jax.jit(functools.partial(mpl_jax.mpl_step, spec=spec, gradient_parts=False), donate_argnums=0)


def to_device(state: dict, batch: dict):
    import jax.numpy as jnp
    state = {k: jnp.asarray(v, jnp.float32) for k, v in state.items()}
    batch = {k: (jnp.asarray(v) if k == "y" else jnp.asarray(v, jnp.float32)) for k, v in batch.items()}
    return state, batch


def run_one_step(spec, state: dict, batch: dict):
    """numpy in, numpy out: (new state, outputs as floats). Used by --check and by the agreement test."""
    import jax
    new_state, outputs = make_step(spec)(*to_device(state, batch))
    return jax.device_get(new_state), {k: float(v) for k, v in outputs.items()}


def main() -> int:
    args = common.parse_args(PEER)
    configure_threads(args.threads)
    import jax

    if args.check:
        spec, state, batch = common.load_check_inputs(args.workload, args.mode, args.check)
        common.write_check_outputs(PEER, spec, args.check, *run_one_step(spec, state, batch))
        return 0

    spec, state, batch = common.example(args.workload, args.mode, args.seed)
    step = make_step(spec)
    state, batch = to_device(state, batch)
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        state, outputs = step(state, batch)
        jax.block_until_ready((state, outputs))
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    common.report_times(PEER, args, times, cpu_times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
