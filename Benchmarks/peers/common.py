"""Shared parts of the benchmark peers (jax_step.py, torch_step.py): the fixed workloads, the command line,
thread pinning, example inputs and the output formats. Numpy only, so that each peer imports only its framework.

Workloads (10 classes; teacher = student except where said):
    W1  28x28x1, B_l = 64, B_u = 448: Flatten, Dense(1024), ReLU, Dense(1024), ReLU, Dense(10)
    W2  28x28x1, B_l = 64, B_u = 448: Conv2D(32, 3x3, pad 1), ReLU, MaxPool(2), Conv2D(64, 3x3, pad 1), ReLU,
        MaxPool(2), Flatten, Dense(128), ReLU, Dense(10)
    W3-fashion_wrn  Examples/fashion_wrn.swiftdsl: 28x28x1, B_l = 32, B_u = 128 (the teacher sees 288 images);
        WRN-10-1 with BatchNorm and LeakyReLU(0.1): stem Conv2D(16, stride 2), one pre-activation residual block
        per group of 16, 32 (stride 2) and 64 (stride 2) channels, BatchNorm, LeakyReLU, GlobalAvgPool, the
        teacher's Dropout(0.2), Dense(10); label smoothing 0.1
    W3-wrn_28_2  Examples/bench_w3_wrn_28_2.swiftdsl (Examples/wrn_28_2.swiftdsl at B_l = 16, mu = 7): 32x32x3,
        B_l = 16, B_u = 112 (240 images); WRN-28-2, LeakyReLU(0.2), four blocks per group of 32, 64 (stride 2) and
        128 (stride 2) channels, Dropout(0.2) in both networks; label smoothing 0.15
    W3-wrn_28_2-paper  Examples/wrn_28_2.swiftdsl: the same networks at the paper's batch, B_l = 128, B_u = 896
        (1,920 images); Benchmarks/run measures only its memory (and one step's time), mplc against PyTorch eager
W1 and W2 run in both modes, W3 in hard mode only (its examples' recipe; torch.compile cannot differentiate the
soft mode's create_graph twice). BatchNorm: momentum 0.01, epsilon 0.001 (mplc's defaults), every pass of the
step in training mode with its own batch's statistics, as docs/STEP.md says (the teacher's pass over all B_l +
2 B_u rows and the student's pass over x_us move the running averages; the student's pass over x_l does not).
Modes: hard = hard-argmax pseudo labels with dot-product feedback; soft = soft labels (temperature 1) with the
exact meta-gradient. Recipe otherwise: label smoothing 0.1, UDA temperature 0.7 / threshold 0.6, both
optimisers SGD momentum 0.9 Nesterov, weight decay 5e-4; step scalars lr_teacher = lr_student = 0.01 (a
warm-up-sized step: at 0.05 one step from a random init on random data blows the student's loss up),
uda_weight = 1, feedback_scale = 1. Random inputs are U(0, 1) "pixels".

Peer command line:
    <peer>.py --workload W1|W2|W3-fashion_wrn|W3-wrn_28_2|W3-wrn_28_2-paper --mode hard|soft --threads T --steps N --warmup W
              [--check DIR] [--seed S]
Timing mode (no --check): random initial state and batch (seed S), W untimed steps, then N timed steps, each
on the state the previous one produced; prints one JSON line
    {"peer": "jax", "workload": "W1", "mode": "hard", "threads": T, "times": [wall seconds, ...],
     "cpu_times": [process CPU seconds, ...], "peak_rss_bytes": ..., "load_average": 1-minute load at the end}
Check mode: loads DIR/init.safetensors and DIR/step_000000 (the replay layout of Tests/reference/mpl_jax.py),
runs one step, writes DIR/out_<peer>.safetensors (every state tensor, ABI names and layouts, float32) and
DIR/outputs_<peer>.json (OUTPUTS: loss_sup, loss_uda, mask_rate, loss_student_u, loss_student_l, h), and prints the
outputs as one JSON line. `python3 Benchmarks/peers/common.py --workload W1 --mode hard --make-example DIR`
writes such a DIR (plus DIR/spec.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

import numpy as np

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference")
sys.path.insert(0, os.path.abspath(REFERENCE_DIR))
import mpl_io  # noqa: E402

WORKLOADS = ("W1", "W2", "W3-fashion_wrn", "W3-wrn_28_2", "W3-wrn_28_2-paper")
MODES = ("hard", "soft")
OUTPUTS = ("loss_sup", "loss_uda", "mask_rate", "loss_student_u", "loss_student_l", "h")   # what every peer computes
SCALARS = (0.01, 0.01, 1.0, 1.0)      # lr_teacher, lr_student, uda_weight, feedback_scale
IMAGES = "pixels"                     # random inputs in [0, 1] (mpl_io.random_images)


def modes(workload: str) -> tuple:
    return ("hard",) if workload.startswith("W3") else MODES


def wrn(stem_stride: int, widths: tuple, blocks: int, alpha: float, dropout: bool) -> list[dict]:
    """A pre-activation wide ResNet as the examples write it: stem convolution; per group, BatchNorm and LeakyReLU
    shared by the first block's body and shortcut, that block (first convolution strided), then blocks - 1 blocks
    with their own pre-activations; BatchNorm, LeakyReLU, GlobalAvgPool, [Dropout(0.2)], Dense(10)."""
    def conv(f, stride=1):
        return {"layer": "conv2d", "filters": f, "kernel": 3, "stride": stride, "padding": 1}
    bn = {"layer": "batchnorm", "momentum": 0.01, "epsilon": 0.001}
    act = {"layer": "leakyrelu", "alpha": alpha}
    layers = [conv(16, stem_stride)]
    for group, width in enumerate(widths):
        layers += [bn, act, {"layer": "residual", "body": [conv(width, 1 if group == 0 else 2), bn, act, conv(width)]}]
        layers += [{"layer": "residual", "body": [bn, act, conv(width), bn, act, conv(width)]}] * (blocks - 1)
    layers += [bn, act, {"layer": "globalavgpool"}]
    return layers + ([{"layer": "dropout", "rate": 0.2}] if dropout else []) + [{"layer": "dense", "units": 10}]


def network(workload: str, net: str = "teacher") -> list[dict]:
    if workload == "W3-fashion_wrn":
        return wrn(2, (16, 32, 64), 1, 0.1, dropout=net == "teacher")
    if workload.startswith("W3-wrn_28_2"):
        return wrn(1, (32, 64, 128), 4, 0.2, dropout=True)
    if workload == "W1":
        return [{"layer": "flatten"}, {"layer": "dense", "units": 1024}, {"layer": "relu"},
                {"layer": "dense", "units": 1024}, {"layer": "relu"}, {"layer": "dense", "units": 10}]
    if workload == "W2":
        return [{"layer": "conv2d", "filters": 32, "kernel": 3, "stride": 1, "padding": 1}, {"layer": "relu"},
                {"layer": "maxpool", "size": 2, "stride": 2},
                {"layer": "conv2d", "filters": 64, "kernel": 3, "stride": 1, "padding": 1}, {"layer": "relu"},
                {"layer": "maxpool", "size": 2, "stride": 2}, {"layer": "flatten"},
                {"layer": "dense", "units": 128}, {"layer": "relu"}, {"layer": "dense", "units": 10}]
    raise ValueError(f"unknown workload {workload!r}")


BATCHES = {"W1": (64, 448), "W2": (64, 448), "W3-fashion_wrn": (32, 128), "W3-wrn_28_2": (16, 112),
           "W3-wrn_28_2-paper": (128, 896)}


def spec_raw(workload: str, mode: str, batches: tuple | None = None) -> dict:
    """The workload as a model spec (schema: Tests/reference/mpl_jax.py). `batches` = (B_l, B_u) is fixed for the
    benchmark (BATCHES); tests shrink it to check the same code paths quickly."""
    optim = {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
    batches = batches or BATCHES[workload]
    height, channels = (32, 3) if workload.startswith("W3-wrn_28_2") else (28, 1)
    return {
        "input": {"height": height, "width": height, "channels": channels},
        "classes": 10,
        "teacher": network(workload, "teacher"),
        "student": network(workload, "student"),
        "recipe": {
            "labeled_batch": batches[0], "unlabeled_batch": batches[1],
            "pseudo_labels": {"hard": "hard-argmax", "soft": "soft"}[mode], "soft_temperature": 1.0,
            "feedback": "dot-product", "uda_temperature": 0.7, "uda_threshold": 0.6,
            "label_smoothing": 0.15 if workload.startswith("W3-wrn_28_2") else 0.1,
            "teacher": dict(optim), "student": dict(optim),
        },
    }


def parse_args(peer: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=f"{peer} benchmark peer of one MPL step")
    ap.add_argument("--workload", choices=WORKLOADS, required=True)
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, caches)")
    ap.add_argument("--check", metavar="DIR", help="run one step from DIR and write the outputs there")
    ap.add_argument("--seed", type=int, default=0)
    if peer == "torch":
        ap.add_argument("--compile", action="store_true", help="torch.compile each network's forward (hard mode)")
        ap.add_argument("--layout", choices=("channels_last", "nchw"), default="channels_last",
                        help="memory layout of images and convolution weights (default channels_last)")
    return ap.parse_args(argv)


def pin_threads(threads: int) -> None:
    """Restricts the process to `threads` CPUs (before the framework starts its thread pools)."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


def example(workload: str, mode: str, seed: int, batches: tuple | None = None):
    """(spec, state, batch): random initial state and one batch, as numpy (float32; y int labels)."""
    raw = spec_raw(workload, mode, batches)
    spec = mpl_io.parse_spec(raw)
    rng = np.random.default_rng(seed)
    return spec, mpl_io.random_state(spec, rng), mpl_io.random_batch(spec, rng, SCALARS, IMAGES)


def load_check_inputs(workload: str, mode: str, directory: str):
    spec = mpl_io.parse_spec(spec_raw(workload, mode))
    state = mpl_io.read_safetensors(os.path.join(directory, "init.safetensors"))
    mpl_io.check_state(spec, state)
    return spec, state, mpl_io.load_batch(mpl_io.step_dir(directory, 0))


def write_check_outputs(peer: str, spec, directory: str, state: dict, outputs: dict) -> None:
    order = list(mpl_io.state_shapes(spec))
    mpl_io.write_safetensors(os.path.join(directory, f"out_{peer}.safetensors"),
                             {k: np.asarray(state[k], np.float32) for k in order})
    values = {k: float(outputs[k]) for k in OUTPUTS}
    with open(os.path.join(directory, f"outputs_{peer}.json"), "w") as f:
        json.dump(values, f, indent=1)
    print(json.dumps({"peer": peer, "check": directory, **values}))


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024    # Linux reports KiB


def report_times(peer: str, args: argparse.Namespace, times: list[float], cpu_times: list[float]) -> None:
    """times: wall seconds per step; cpu_times: the process's CPU seconds (all threads) per step, which says
    how much of the wall time was spent computing when the machine is shared."""
    print(json.dumps({"peer": peer, "workload": args.workload, "mode": args.mode, "threads": args.threads,
                      "times": times, "cpu_times": cpu_times, "peak_rss_bytes": peak_rss_bytes(),
                      "load_average": os.getloadavg()[0]}))


def make_example(workload: str, mode: str, directory: str, seed: int) -> None:
    mpl_io.make_example(directory, spec_raw(workload, mode), seed, steps=1, scalars=SCALARS, images=IMAGES)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="write a check directory for a workload")
    ap.add_argument("--workload", choices=WORKLOADS, required=True)
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--make-example", metavar="DIR", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    make_example(a.workload, a.mode, a.make_example, a.seed)
