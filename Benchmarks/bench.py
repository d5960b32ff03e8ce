#!/usr/bin/env python3
"""Benchmarks/run: one MPL training step of mplc's generated C against jax.jit, PyTorch eager and (W3)
torch.compile.

For each workload (W1 MLP, W2 CNN, W3 the WRN family with BatchNorm: W3-fashion_wrn, W3-wrn_28_2 and its memory at
the paper's batch, W3-wrn_28_2-paper;
Benchmarks/peers/common.py) and mode (hard, soft; W3 hard only):
  1. emit: `mplc MODEL_FILE --pseudo-labels P -o DIR` (timed), then `cc` of model.c (timed, the
     flags of Sources/MPLCompiler/RunnerBuild.swift) and links of the runner (mplc-run) and of
     Benchmarks/step_timer.c;
  2. check, before any timing: the compiler's model.json must be the peers' spec (the same layers, shapes,
     parameter count and recipe); then one step from the same random checkpoint and batch (common.make_example)
     by mplc (`mplc-run replay`), each peer (its --check mode) and the float64 JAX reference; mplc's
     state updates and outputs must be as close to float64 as the peers' (see check());
  3. time, for each thread count: mplc (step_timer --serve) and each peer (peer_server.py) run as live
     processes after their warm-up steps; each round runs two steps of each back to back, in rotating
     order, and one pass of sgemm_peak over the workload's GEMM shapes, so all of them see the same machine load.
     A round's time is the second step's: a training loop's steady state, with the caches warm again after
     the other processes' turns. The first steps' median is in the JSON (`first_step_median_s`). The table
     also gives each implementation's 2-thread time over its 1-thread time ("T2/T1") when both ran.
W3-wrn_28_2-paper (in W3) is W3-wrn_28_2's networks at the paper's batch, B_l 128 (Examples/wrn_28_2.swiftdsl): only
model.json is checked against the peers' spec (float64 at this batch needs ~60 GiB), and at the largest thread count
mplc and PyTorch eager run one at a time, a warm-up and one step each, for their peak RSS (paper_batch_memory).

FLOPs are counted analytically from the shapes (GEMM work only; element-wise work is not counted), for the
minimal computation of docs/STEP.md: with R = B_l + 2·B_u rows,
    teacher forward on R rows; student forward + backward on B_u rows (x_us); student forward + backward on
    B_l rows (x_l, θ'_S); teacher backward on B_l + B_u rows (the weak view's loss is under stopGradient);
    soft mode adds the student's forward-mode JVP (tangent g_l) on the B_u rows.
Per layer and N rows, Dense(in→out): forward 2·N·in·out, backward 2·N·in·out for ∂W plus 2·N·in·out for ∂x
(not for the first layer); Conv2D(k, C→F) on OH×OW outputs: the same with N·OH·OW rows and in = k·k·C,
out = F (im2col GEMMs); a residual block's projection shortcut is a 1×1 Conv2D (BatchNorm is not counted). The JVP costs, per layer, 2·N·in·out for W_t·x plus 2·N·in·out for W·x_t (not for
the first layer, whose input has no tangent).
The sgemm peak is Σ FLOPs / Σ time of cblas_sgemm alone at exactly these GEMM shapes, each timed the way
the step is: one sample per shape and round after a warm call of the same shape (sgemm_peak's "first"),
median over rounds. "% sgemm" is achieved GFLOP/s over that (the issue's target). The best of 2 warm calls per
shape, which favours the reference (a minimum of two samples of each of the step's shapes against one sample of the
step), is in the JSON as `sgemm_best_of_2_gflops` and printed beside it. It can
exceed 100 % when sgemm is slow at a shape that mplc computes otherwise (W2's first convolution, K = 9, as a
plain loop in cache). "% best" divides by the best GFLOP/s sgemm reaches at any one of the shapes, a stricter
bound.

Last line of output: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.path.join(HERE, "peers")
sys.path.insert(0, PEERS)

MODEL_FILES = {"W1": "Examples/bench_w1_mlp.swiftdsl", "W2": "Examples/bench_w2_cnn.swiftdsl",
               "W3-fashion_wrn": "Examples/fashion_wrn.swiftdsl", "W3-wrn_28_2": "Examples/bench_w3_wrn_28_2.swiftdsl",
               "W3-wrn_28_2-paper": "Examples/wrn_28_2.swiftdsl"}
# W3-wrn_28_2 at the paper's batch (B_l 128, 1,920 images per step): memory only (see paper_batch_memory).
PAPER = "W3-wrn_28_2-paper"
GROUPS = {"W1": ("W1",), "W2": ("W2",), "W3": ("W3-fashion_wrn", "W3-wrn_28_2", PAPER)}
PSEUDO_LABELS = {"hard": "hard-argmax", "soft": "soft"}
CC_FLAGS = ["-std=c11", "-O3", "-march=native", "-Wall", "-Wextra", "-Werror"]   # RunnerBuild.baseFlags
CHECK_TOL = 1e-4
FLIP_CANDIDATES = 3  # decisions nearest their threshold that check() may take the other way (2^3 - 1 float64 runs)


def impls(workload: str) -> tuple:
    """mplc and the peers of a workload; torch.compile on W3 (the hard mode, see torch_step.py); at the paper's
    batch PyTorch eager only (JAX's W3 peak is 3.6 GiB at B_l 16, so about 29 GiB at 128: more than this machine)."""
    if workload == PAPER:
        return ("mplc", "torch")
    return ("mplc", "jax", "torch") + (("torch_compile",) if workload.startswith("W3") else ())


def peer_script(peer: str) -> list[str]:
    """The --check command line of a peer (torch_compile is torch_step.py --compile)."""
    if peer == "torch_compile":
        return [os.path.join(PEERS, "torch_step.py"), "--compile"]
    return [os.path.join(PEERS, f"{peer}_step.py")]


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def timed(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds and the result; the command's CPU seconds (user + system) are in result.cpu_seconds."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = run(cmd, **kw)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, result


# ----------------------------------------------------------------------------------------------------------
# Dependencies and builds
# ----------------------------------------------------------------------------------------------------------

def ensure_python_deps(install: bool) -> None:
    # torch.compile needs nothing more than torch: its inductor backend compiles C++ with the system's g++.
    wanted = [("numpy", "numpy"), ("jax", "jax"), ("torch", "torch==2.13.0+cpu")]
    missing = [pip for module, pip in wanted if importlib.util.find_spec(module) is None]
    if not missing:
        return
    if not install:
        sys.exit(f"bench: missing Python packages {missing} (run without --no-install to install them)")
    for package in missing:
        log(f"bench: pip install {package}")
        cmd = [sys.executable, "-m", "pip", "install", "-q", package]
        if package.startswith("torch") and subprocess.run(cmd).returncode == 0:
            continue
        if package.startswith("torch"):
            cmd += ["--index-url", "https://download.pytorch.org/whl/cpu"]
        run(cmd)


def cc_flags() -> list[str]:
    """RunnerBuild's flags, read from its source so that the benchmark builds what `mplc train` builds."""
    source = open(os.path.join(ROOT, "Sources/MPLCompiler/RunnerBuild.swift")).read()
    flags = re.search(r"baseFlags\s*=\s*\[([^\]]*)\]", source)
    return re.findall(r'"([^"]+)"', flags.group(1)) if flags else CC_FLAGS


def build_tools(work: str) -> dict:
    log("bench: swift build --product mplc")
    run(["swift", "build", "--product", "mplc"], cwd=ROOT)
    bin_path = run(["swift", "build", "--product", "mplc", "--show-bin-path"], cwd=ROOT).stdout.strip()
    peak = os.path.join(work, "sgemm_peak")
    run(["cc", "-std=c11", "-O2", os.path.join(HERE, "sgemm_peak.c"), "-o", peak, "-lopenblas"])
    return {"mplc": os.path.join(bin_path, "mplc"), "sgemm_peak": peak}


def build_workload(tools: dict, workload: str, mode: str, work: str) -> dict:
    out = os.path.join(work, f"{workload}-{mode}")
    shutil.rmtree(out, ignore_errors=True)
    model_file = os.path.join(ROOT, MODEL_FILES[workload])
    emit_s, emitted = timed([tools["mplc"], model_file, "--pseudo-labels", PSEUDO_LABELS[mode], "-o", out])
    flags = cc_flags()
    libs = ["-lopenblas", "-lz", "-lm"]
    obj = os.path.join(out, "model.o")
    compile_s, compiled = timed(["cc"] + flags + ["-c", os.path.join(out, "model.c"), "-o", obj])
    runner_dir = os.path.join(ROOT, "Templates", "runner")
    sources = sorted(os.path.join(runner_dir, f) for f in os.listdir(runner_dir) if f.endswith(".c"))
    runner = os.path.join(out, "mplc-run")
    link_s, _ = timed(["cc"] + flags + ["-I", out, "-I", os.path.join(ROOT, "Templates", "runtime"), obj] + sources
                      + ["-o", runner] + libs)
    timer = os.path.join(out, "step_timer")
    run(["cc"] + flags + ["-I", out, os.path.join(HERE, "step_timer.c"), obj, "-o", timer] + libs)
    header = open(os.path.join(out, "model.h")).read()
    define = lambda name: int(re.search(rf"#define {name} (\d+)", header).group(1))
    plan = re.search(r"memory plan: (.*)", emitted.stdout)
    naive = re.search(r"naive sum of scratch buffers ([\d.]+) (MiB|KiB|B)", emitted.stdout)
    unit = {"MiB": 1 << 20, "KiB": 1 << 10, "B": 1}
    return {
        "dir": out, "runner": runner, "timer": timer,
        "emit_s": emit_s, "compile_s": compile_s, "runner_build_s": link_s,
        "emit_cpu_s": emitted.cpu_seconds, "compile_cpu_s": compiled.cpu_seconds,
        "arena_bytes": 4 * define("MPLC_SCRATCH_FLOATS"), "state_bytes": 4 * define("MPLC_STATE_FLOATS"),
        "naive_scratch_bytes": round(float(naive.group(1)) * unit[naive.group(2)]) if naive else None,
        "memory_plan": plan.group(1) if plan else "",
    }


# ----------------------------------------------------------------------------------------------------------
# FLOPs and GEMM shapes
# ----------------------------------------------------------------------------------------------------------

def gemm_shapes(workload: str, mode: str) -> list[tuple[str, str, int, int, int]]:
    """The GEMMs of the minimal step (see the module docstring), as (TA, TB, M, N, K) row-major."""
    import common
    import mpl_io
    spec = mpl_io.parse_spec(common.spec_raw(workload, mode))
    r = spec.recipe
    bl, bu = r.labeled_batch, r.unlabeled_batch

    def layers(net):
        out = []
        for layer in mpl_io.walk(spec.network(net)):
            if layer.kind == "dense":
                out.append((1, layer.in_shape[0], layer.attr("units")))
            elif layer.kind == "conv2d":
                oh, ow, _ = layer.out_shape
                k = layer.attr("kernel")
                out.append((oh * ow, k * k * layer.in_shape[2], layer.attr("filters")))
            elif layer.kind == "residual" and layer.attr("shortcut") == "conv":
                oh, ow, f = layer.out_shape
                out.append((oh * ow, layer.in_shape[2], f))
            elif layer.kind == "residual" and layer.attr("shortcut") == "matrix":
                out.append((1, layer.in_shape[0], layer.out_shape[0]))
        return out   # (rows per example, in, out)

    shapes = []

    def forward(net, n):
        shapes.extend(("N", "N", n * p, o, i) for p, i, o in layers(net))

    def backward(net, n):
        for index, (p, i, o) in enumerate(layers(net)):
            shapes.append(("T", "N", i, o, n * p))            # ∂W = xᵀ·∂y
            if index > 0:
                shapes.append(("N", "T", n * p, i, o))        # ∂x = ∂y·Wᵀ

    def jvp(net, n):
        for index, (p, i, o) in enumerate(layers(net)):
            shapes.append(("N", "N", n * p, o, i))            # x·W_t
            if index > 0:
                shapes.append(("N", "N", n * p, o, i))        # x_t·W

    forward("teacher", bl + 2 * bu)
    forward("student", bu)
    backward("student", bu)
    forward("student", bl)
    backward("student", bl)
    backward("teacher", bl + bu)
    if mode == "soft":
        jvp("student", bu)
    return shapes


def flops_of(shapes) -> float:
    return float(sum(2 * m * n * k for _, _, m, n, k in shapes))


# ----------------------------------------------------------------------------------------------------------
# Check: one step of all three from the same checkpoint and batch
# ----------------------------------------------------------------------------------------------------------

def same_model(workload: str, mode: str, build: dict) -> tuple[list[str], int]:
    """(differences between the compiler's model.json and the peers' spec, the number of state floats). The peers
    write their networks by hand (common.py); this makes sure they time the network that mplc compiled."""
    import common
    import mpl_io
    import numpy as np
    with open(os.path.join(build["dir"], "model.json")) as f:
        compiled = mpl_io.parse_spec(json.load(f))
    peers = mpl_io.parse_spec(common.spec_raw(workload, mode))
    differences = [f"{part}: mplc's model.json differs from the peers' spec" for part in
                   ("input_shape", "classes", "teacher", "student", "recipe")
                   if getattr(compiled, part) != getattr(peers, part)]
    count = lambda spec: sum(int(np.prod(shape)) for shape in mpl_io.state_shapes(spec).values())
    if count(compiled) != count(peers):
        differences.append(f"state floats: mplc {count(compiled)}, peers {count(peers)}")
    if 4 * count(peers) > build["state_bytes"]:
        differences.append(f"the peers' state ({4 * count(peers)} bytes) does not fit mplc's ({build['state_bytes']})")
    return differences, count(peers)


def check(workload: str, mode: str, build: dict, work: str) -> dict:
    """One step of mplc and of each peer (float32) and of the JAX reference in float64 (Tests/reference/mpl_jax.py
    --x64), all from the same checkpoint and batch, after same_model. Errors are norm-wise relative errors of each
    state tensor's update (new − old, as in Tests/reference/test_peers.py; BatchNorm's running averages
    included) and relative errors of the outputs the peers compute (common.OUTPUTS). mplc passes if its error
    against float64 is within CHECK_TOL or at most twice the farthest peer's.

    At this batch size a float32 step meets ReLU decisions within rounding of their threshold (millions of
    pre-activations; W1 has one at |z| = 1.4e-8), which different libraries take different ways; one flipped
    decision moves the gradients below it by ~1e-3. So the float64 run lists the decisions nearest their
    threshold (mpl_jax.py --decisions), and if mplc misses the bound, float64 is run again with each non-empty
    subset of the FLIP_CANDIDATES nearest taken the other way (--flip). mplc passes if it is within the bound of
    one of those runs; the result names the decisions ("flipped"), and the peers stay compared with plain float64.
    A wrong gradient does not pass this way: flipping a decision whose |z| is ~1e-8 changes one row's
    back-propagated error and nothing else."""
    import common
    import mpl_io
    import numpy as np
    differences, state_floats = same_model(workload, mode, build)
    if differences:
        return {"tolerance": CHECK_TOL, "pairs": {}, "failures": differences, "outputs": {},
                "state_floats": state_floats}
    peers = impls(workload)[1:]
    d = os.path.join(work, f"check-{workload}-{mode}")
    shutil.rmtree(d, ignore_errors=True)
    common.make_example(workload, mode, d, seed=1)
    init = os.path.join(d, "init.safetensors")
    run([build["runner"], "replay", "--checkpoint", init, "--batches", d, "--steps", "1",
         "--out", os.path.join(d, "out_mplc.safetensors"), "--losses", os.path.join(d, "losses_mplc.jsonl"), "--threads", "1"])
    for peer in peers:
        run([sys.executable] + peer_script(peer) + ["--workload", workload, "--mode", mode, "--threads", "1",
                                                    "--check", d])
    reference = os.path.join(ROOT, "Tests", "reference", "mpl_jax.py")
    def float64(name: str, *extra: str):
        run([sys.executable, reference, "--spec", os.path.join(d, "spec.json"), "--checkpoint", init, "--batches", d,
             "--steps", "1", "--out", os.path.join(d, f"out_{name}.safetensors"),
             "--losses", os.path.join(d, f"losses_{name}.jsonl"), "--x64", *extra])
        states[name] = mpl_io.read_safetensors(os.path.join(d, f"out_{name}.safetensors"))
        with open(os.path.join(d, f"losses_{name}.jsonl")) as f:
            outputs[name] = {k: v for k, v in json.loads(f.readline()).items() if k != "step"}

    old = mpl_io.read_safetensors(init)
    states = {p: mpl_io.read_safetensors(os.path.join(d, f"out_{p}.safetensors")) for p in impls(workload)}
    outputs = {p: json.load(open(os.path.join(d, f"outputs_{p}.json"))) for p in peers}
    with open(os.path.join(d, "losses_mplc.jsonl")) as f:
        outputs["mplc"] = {k: v for k, v in json.loads(f.readline()).items() if k != "step"}
    float64("f64", "--decisions", os.path.join(d, "decisions.json"))
    with open(os.path.join(d, "decisions.json")) as f:
        decisions = json.load(f)

    def update_error(a, b, start):
        da, db = a.astype(np.float64) - start, b.astype(np.float64) - start
        return float(np.linalg.norm(da - db) / max(np.linalg.norm(db), 1e-30))

    def compare(a, b) -> dict:
        state_err = {k: update_error(states[a][k], states[b][k], old[k].astype(np.float64)) for k in old}
        out_err = {k: abs(outputs[a][k] - outputs[b][k]) / max(abs(outputs[b][k]), 1e-6) for k in common.OUTPUTS}
        worst_state = max(state_err, key=state_err.get)
        worst_out = max(out_err, key=out_err.get)
        return {"state_update": state_err[worst_state], "state_tensor": worst_state,
                "output": out_err[worst_out], "output_name": worst_out}

    pairs = {f"{a}-f64": compare(a, "f64") for a in impls(workload)}
    pairs.update({f"mplc-{p}": compare("mplc", p) for p in peers})
    pairs["jax-torch"] = compare("jax", "torch")
    bounds = {key: max(CHECK_TOL, 2 * max(pairs[f"{p}-f64"][key] for p in peers)) for key in ("state_update", "output")}

    def misses(pair: dict) -> list[str]:
        return [key for key in bounds if pair[key] > bounds[key]]

    flipped = []
    if misses(pairs["mplc-f64"]):
        candidates = decisions[:FLIP_CANDIDATES]
        subsets = (list(c) for size in range(1, len(candidates) + 1) for c in itertools.combinations(candidates, size))
        for i, subset in enumerate(subsets):  # smallest first: the first that explains mplc's difference
            with open(os.path.join(d, f"f64flip{i}.json"), "w") as f:
                json.dump(subset, f)
            float64(f"f64flip{i}", "--flip", os.path.join(d, f"f64flip{i}.json"))
            pair = compare("mplc", f"f64flip{i}")
            if not misses(pair):
                pairs["mplc-f64 flipped"], flipped = pair, subset
                break
    failures = [] if "mplc-f64 flipped" in pairs else [
        f"mplc {key} error against float64 {pairs['mplc-f64'][key]:.2e} > {bounds[key]:.2e}"
        + (f" (also with any of the {min(len(decisions), FLIP_CANDIDATES)} nearest-threshold decisions flipped)"
           if decisions else "")
        for key in misses(pairs["mplc-f64"])]
    return {"tolerance": CHECK_TOL, "pairs": pairs, "failures": failures, "outputs": outputs,
            "state_floats": state_floats, "decisions": decisions, "flipped": flipped}


# ----------------------------------------------------------------------------------------------------------
# Interleaved timing
# ----------------------------------------------------------------------------------------------------------

class Server:
    """A peer process that runs steps on command (step_timer --serve or peer_server.py)."""

    def __init__(self, name: str, cmd: list[str]):
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.times, self.cpu_times, self.first_times = [], [], []

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            sys.exit(f"bench: {self.name} ended unexpectedly:\n{err}")
        return json.loads(line)

    def wait_ready(self) -> None:
        self.read()

    def step(self) -> None:
        """Two steps back to back; the second is the round's time (the first warms the caches that the other
        processes' turns evicted)."""
        self.proc.stdin.write("2\n")
        self.proc.stdin.flush()
        reply = self.read()
        self.first_times.append(reply["times"][0])
        self.times.append(reply["times"][1])
        self.cpu_times.append(reply["cpu_times"][1])

    def rss(self) -> int:
        self.proc.stdin.write("rss\n")
        self.proc.stdin.flush()
        return self.read()["peak_rss_bytes"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def sgemm_round(tools: dict, threads: int, shapes) -> tuple[float, float, float]:
    """(seconds cblas_sgemm takes for all of the step's GEMMs, timed as the step is: one warm call per shape;
    the same with the best of 2 warm calls per shape, an optimistic bound kept for comparison; the best
    GFLOP/s of any one shape)."""
    counts: dict[tuple, int] = {}
    for s in shapes:
        counts[s] = counts.get(s, 0) + 1
    args = [f"{ta},{tb},{m},{n},{k}" for ta, tb, m, n, k in counts]
    out = json.loads(run([tools["sgemm_peak"], "--threads", str(threads), "--min-seconds", "0", "--calls", "2"] + args).stdout)
    entries = list(zip(counts.values(), out["shapes"]))
    seconds = sum(count * entry["first"] for count, entry in entries)
    best_of_2 = sum(count * entry["best"] for count, entry in entries)
    return seconds, best_of_2, max(entry["flops"] / entry["best"] / 1e9 for entry in out["shapes"])


def time_threads(tools: dict, build: dict, workload: str, mode: str, threads: int, steps: int, warmup: int,
                 shapes) -> dict:
    common_args = ["--workload", workload, "--mode", mode, "--threads", str(threads), "--warmup", str(warmup)]
    servers = [Server("mplc", [build["timer"], "--threads", str(threads), "--warmup", str(warmup), "--serve"])]
    servers += [Server(p, [sys.executable, os.path.join(HERE, "peer_server.py"), p] + common_args)
                for p in impls(workload)[1:]]
    for s in servers:
        s.wait_ready()
    load = [os.getloadavg()[0]]
    sgemm_times, sgemm_best_of_2, sgemm_best = [], [], []
    for r in range(steps):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for s in order:
            s.step()
        seconds, best_of_2, best = sgemm_round(tools, threads, shapes)
        sgemm_times.append(seconds)
        sgemm_best_of_2.append(best_of_2)
        sgemm_best.append(best)
        load.append(os.getloadavg()[0])
    result = {"load_average": [min(load), max(load)], "sgemm_seconds": statistics.median(sgemm_times),
              "sgemm_best_of_2_seconds": statistics.median(sgemm_best_of_2),
              "sgemm_best_shape_gflops": statistics.median(sgemm_best)}
    for s in servers:
        result[s.name] = {"times": s.times, "cpu_times": s.cpu_times, "first_step_times": s.first_times,
                          "first_step_median_s": statistics.median(s.first_times), "peak_rss_bytes": s.rss()}
        s.close()
    return result


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

def paper_batch_memory(build: dict, threads: int, warmup: int) -> dict:
    """PAPER: each implementation alone (mplc's step_timer, then PyTorch eager's peer_server), `warmup` steps and
    one timed step, and its peak RSS. One at a time, not interleaved: together they would need about 21 GiB of
    this machine's 24. {impl: {"step_s", "cpu_s", "peak_rss_bytes"}, "load_average": [min, max]}."""
    commands = {"mplc": [build["timer"], "--threads", str(threads), "--warmup", str(warmup), "--serve"],
                "torch": [sys.executable, os.path.join(HERE, "peer_server.py"), "torch", "--workload", PAPER,
                          "--mode", "hard", "--threads", str(threads), "--warmup", str(warmup)]}
    result, load = {}, [os.getloadavg()[0]]
    for impl, cmd in commands.items():
        server = Server(impl, cmd)
        server.wait_ready()
        server.proc.stdin.write("1\n")
        server.proc.stdin.flush()
        reply = server.read()
        result[impl] = {"step_s": reply["times"][0], "cpu_s": reply["cpu_times"][0], "peak_rss_bytes": server.rss()}
        server.close()
        load.append(os.getloadavg()[0])
    result["load_average"] = [min(load), max(load)]
    return result


def summarise(result: dict, flops: float, workload: str) -> None:
    """Adds medians, ratios, GFLOP/s and % of peak to one thread count's result, in place."""
    peak = flops / result["sgemm_seconds"] / 1e9
    result["sgemm_peak_gflops"] = peak
    result["sgemm_best_of_2_gflops"] = flops / result["sgemm_best_of_2_seconds"] / 1e9
    mplc_median = statistics.median(result["mplc"]["times"])
    for impl in impls(workload):
        r = result[impl]
        r["median_s"] = statistics.median(r["times"])
        r["min_s"], r["max_s"] = min(r["times"]), max(r["times"])
        r["median_cpu_s"] = statistics.median(r["cpu_times"])
        r["gflops"] = flops / r["median_s"] / 1e9
        r["fraction_of_peak"] = r["gflops"] / peak
        r["fraction_of_best_shape"] = r["gflops"] / result["sgemm_best_shape_gflops"]
        r["ratio_to_mplc"] = r["median_s"] / mplc_median


def mib(n) -> str:
    return "-" if n is None else f"{n / (1 << 20):.1f}"


def print_table(entry: dict) -> None:
    w, m = entry["workload"], entry["mode"]
    print(f"\n{w} {m}: {entry['gflop']:.2f} GFLOP/step (analytic GEMM work); emit {entry['emit_s']:.2f} s + cc model.c "
          f"{entry['compile_s']:.2f} s wall ({entry['emit_cpu_s']:.2f} + {entry['compile_cpu_s']:.2f} s CPU; the runner's "
          f"other sources {entry['runner_build_s']:.2f} s more); scratch arena "
          f"{mib(entry['arena_bytes'])} MiB vs naive sum {mib(entry['naive_scratch_bytes'])} MiB "
          f"({100 * entry['arena_bytes'] / max(entry['naive_scratch_bytes'] or 1, 1):.0f} %); state {mib(entry['state_bytes'])} MiB")
    if w == PAPER:
        print(f"  check: model.json = the peers' spec ({entry['check']['state_floats']:,} state floats): "
              f"{'ok' if not entry['check']['failures'] else 'FAILED'}; the step's numbers are checked on W3-wrn_28_2, "
              "the same networks at B_l 16 (float64 at this batch would need ~60 GiB)")
        for t, r in entry.get("memory", {}).items():
            m, p = r["mplc"], r["torch"]
            print(f"  {t} threads, one implementation at a time (1 step after the warm-up; load average "
                  f"{r['load_average'][0]:.1f}-{r['load_average'][1]:.1f}): peak RSS mplc {mib(m['peak_rss_bytes'])} MiB, "
                  f"PyTorch eager {mib(p['peak_rss_bytes'])} MiB ({p['peak_rss_bytes'] / m['peak_rss_bytes']:.2f}x mplc's); "
                  f"step mplc {m['step_s']:.2f} s, PyTorch eager {p['step_s']:.2f} s ({p['step_s'] / m['step_s']:.2f}x; "
                  f"CPU {m['cpu_s']:.1f} and {p['cpu_s']:.1f} s)")
        return
    pairs = entry["check"]["pairs"]
    print(f"  check (model.json = the peers' spec, {entry['check']['state_floats']:,} state floats; 1 step, same "
          "weights and batch; worst relative state-update / output error): "
          + ", ".join(f"{k} {v['state_update']:.1e}/{v['output']:.1e}" for k, v in pairs.items())
          + f": {'ok' if not entry['check']['failures'] else 'FAILED'}")
    for d in entry["check"].get("flipped", []):
        print(f"  mplc matches float64 with this decision taken the other way: {d['pass']} pass, {d['layer']} at "
              f"{tuple(d['index'])}, z = {d['z']:.2e} ({d['relative']:.1e} of the layer's rms)")
    if not entry["threads"]:
        return
    both = "1" in entry["threads"] and "2" in entry["threads"]
    print(f"  {'T':>2} {'impl':<13} {'median ms':>10} {'min-max ms':>17} {'peer/mplc':>9} {'GFLOP/s':>8} "
          f"{'% sgemm':>8} {'% best':>7} {'peak RSS MiB':>12} {'CPU s/step':>10}" + (f" {'T2/T1':>6}" if both else ""))
    for t, result in entry["threads"].items():
        for impl in impls(entry["workload"]):
            r = result[impl]
            scaling = ""
            if both:
                scaling = f" {r['median_s'] / entry['threads']['1'][impl]['median_s']:>6.2f}" if t == "2" else f" {'':>6}"
            print(f"  {t:>2} {impl:<13} {1e3 * r['median_s']:>10.1f} {1e3 * r['min_s']:>8.1f}-{1e3 * r['max_s']:<8.1f} "
                  f"{r['ratio_to_mplc']:>9.2f} {r['gflops']:>8.1f} {100 * r['fraction_of_peak']:>7.0f}% "
                  f"{100 * r['fraction_of_best_shape']:>6.0f}% {mib(r['peak_rss_bytes']):>12} {r['median_cpu_s']:>10.3f}"
                  + scaling)
        print(f"  {t:>2} sgemm at these shapes: {result['sgemm_peak_gflops']:.1f} GFLOP/s over the step's GEMMs "
              f"(% sgemm; {result['sgemm_best_of_2_gflops']:.1f} with the best of 2 calls per shape), "
              f"{result['sgemm_best_shape_gflops']:.1f} GFLOP/s at its best shape (% best); "
              f"load average {result['load_average'][0]:.1f}-{result['load_average'][1]:.1f}")


def targets(entries: list[dict]) -> dict:
    """The issues' targets at 2 threads (W3: issue 20's, at every thread count measured); a workload that was not
    timed at 2 threads has none."""
    out = {}
    for e in entries:
        if e["workload"] == PAPER:
            for t, r in e.get("memory", {}).items():
                out[f"{e['workload']}-{e['mode']}"] = {
                    f"peak_rss_below_torch_eager_at_{t}_threads": r["mplc"]["peak_rss_bytes"] < r["torch"]["peak_rss_bytes"]}
            continue
        r = e["threads"].get("2")
        if not r:
            continue
        key = f"{e['workload']}-{e['mode']}"
        if e["workload"].startswith("W3"):
            out[key] = {f"best_peer_over_mplc_at_least_1.5_at_{t}_threads":
                        min(result[p]["ratio_to_mplc"] for p in impls(e["workload"])[1:]) >= 1.5
                        for t, result in e["threads"].items()}
            continue
        t = {"rss_at_most_third_of_jax": r["mplc"]["peak_rss_bytes"] <= r["jax"]["peak_rss_bytes"] / 3,
             "arena_at_most_60pct_of_naive": e["arena_bytes"] <= 0.6 * (e["naive_scratch_bytes"] or 0)}
        if e["workload"] == "W1":
            t["jax_over_mplc_at_least_1.1"] = r["jax"]["ratio_to_mplc"] >= 1.1
            t["at_least_90pct_of_sgemm_peak"] = r["mplc"]["fraction_of_peak"] >= 0.9
            t["emit_plus_compile_under_5s"] = e["emit_s"] + e["compile_s"] < 5
        else:
            t["torch_over_mplc_at_least_2.5"] = r["torch"]["ratio_to_mplc"] >= 2.5
            t["jax_over_mplc_at_least_7"] = r["jax"]["ratio_to_mplc"] >= 7
            t["at_least_60pct_of_sgemm_peak"] = r["mplc"]["fraction_of_peak"] >= 0.6
        out[key] = t
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="mplc's MPL step against JAX and PyTorch (docs/PERFORMANCE.md)")
    ap.add_argument("--workload", choices=tuple(GROUPS) + GROUPS["W3"] + ("all",), default="all",
                    help="W3 is W3-fashion_wrn, W3-wrn_28_2 and W3-wrn_28_2-paper (its memory at the paper's batch; "
                         "hard mode only); all is W1, W2 and W3")
    ap.add_argument("--mode", choices=("hard", "soft", "all"), default="all")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps (rounds) per thread count (default 10, W3 4; --quick 3, W3 2)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--quick", action="store_true", help="3 rounds (W3 2), 1 warm-up step")
    ap.add_argument("--check-only", action="store_true", help="build and check, no timing")
    ap.add_argument("--no-install", action="store_true", help="fail instead of installing missing Python packages")
    ap.add_argument("--work", default=os.path.join(ROOT, ".build-bench"), help="build and check directory")
    args = ap.parse_args()
    # W3's steps take seconds (wrn_28_2 ~5-9 s for each of four implementations, two per round): fewer rounds.
    rounds = lambda workload: args.steps or {(False, False): 10, (False, True): 4, (True, False): 3,
                                             (True, True): 2}[(args.quick, workload.startswith("W3"))]
    steps = rounds("W1")
    warmup = 1 if args.quick and args.warmup == 2 else args.warmup
    thread_counts = [int(t) for t in args.threads.split(",")]
    groups = tuple(GROUPS) if args.workload == "all" else (args.workload,)
    workloads = [w for g in groups for w in GROUPS.get(g, (g,))]
    modes = ("hard", "soft") if args.mode == "all" else (args.mode,)

    ensure_python_deps(not args.no_install)
    os.makedirs(args.work, exist_ok=True)
    tools = build_tools(args.work)
    started = datetime.datetime.now().astimezone()
    print(f"Benchmarks/run {' '.join(sys.argv[1:])}".rstrip())
    print(f"{started:%Y-%m-%d %H:%M %Z}; {os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}; "
          f"{steps} interleaved rounds (W3 {rounds('W3')}) after {warmup} warm-up steps")
    import common
    entries = []
    for workload in workloads:
        if not any(m in common.modes(workload) for m in modes):
            log(f"bench: {workload} runs in {' and '.join(common.modes(workload))} mode only: skipped")
        for mode in (m for m in modes if m in common.modes(workload)):
            log(f"bench: {workload} {mode}: emit and compile")
            build = build_workload(tools, workload, mode, args.work)
            if workload == PAPER:   # float64 at this batch would need ~60 GiB; W3-wrn_28_2 checks the same code
                differences, state_floats = same_model(workload, mode, build)
                checked = {"tolerance": CHECK_TOL, "pairs": {}, "failures": differences, "outputs": {},
                           "state_floats": state_floats}
            else:
                log(f"bench: {workload} {mode}: check one step against JAX and PyTorch")
                checked = check(workload, mode, build, args.work)
            if checked["failures"]:
                print(f"{workload} {mode}: the implementations disagree, not timing:", *checked["failures"], sep="\n  ")
            shapes = gemm_shapes(workload, mode)
            flops = flops_of(shapes)
            entry = {"workload": workload, "mode": mode, "gflop": flops / 1e9, "check": checked,
                     **{k: v for k, v in build.items() if k not in ("dir", "runner", "timer")}, "threads": {}}
            if workload == PAPER and not checked["failures"] and not args.check_only:
                t = max(thread_counts)
                log(f"bench: {workload} {mode}: peak memory at {t} thread(s), mplc then PyTorch eager")
                entry["memory"] = {str(t): paper_batch_memory(build, t, warmup)}
            elif not checked["failures"] and not args.check_only:
                for t in thread_counts:
                    log(f"bench: {workload} {mode}: timing at {t} thread(s), {rounds(workload)} rounds")
                    result = time_threads(tools, build, workload, mode, t, rounds(workload), warmup, shapes)
                    summarise(result, flops, workload)
                    entry["threads"][str(t)] = result
            print_table(entry)
            entries.append(entry)
    met = targets(entries)
    if met:
        print("\ntargets at 2 threads:")
        for key, t in met.items():
            print(f"  {key}: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in t.items()))
    summary = {"date": started.isoformat(timespec="seconds"), "command": "Benchmarks/run " + " ".join(sys.argv[1:]),
               "cpus": os.cpu_count(), "load_average_end": os.getloadavg()[0], "steps": steps,
               "w3_steps": rounds("W3"), "warmup": warmup,
               "results": entries, "targets": met}
    print(json.dumps(summary, separators=(",", ":")))
    failed = any(e["check"]["failures"] for e in entries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
