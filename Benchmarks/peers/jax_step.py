#!/usr/bin/env python3
"""JAX benchmark peer: the reference MPL step (Tests/reference/mpl_jax.py) under one jax.jit, float32, CPU.
Command line and outputs: see common.py.

Threads: XLA_FLAGS gets --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=T (the usual recipe,
set before JAX is imported; an XLA_FLAGS already in the environment is kept in front) and the process is
pinned to T CPUs, so XLA's thread pools see T cores.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PEER = "jax"


def configure_threads(threads: int) -> None:
    flags = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    common.pin_threads(threads)


def make_step(spec):
    """The jitted float32 step: (state, batch) of jax arrays -> (state, outputs); the state is donated."""
    import functools
    import jax
    import mpl_jax  # found through common's path to Tests/reference
    return jax.jit(functools.partial(mpl_jax.mpl_step, spec=spec), donate_argnums=0)


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
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        state, outputs = step(state, batch)
        jax.block_until_ready((state, outputs))
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    common.report_times(PEER, args, times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
