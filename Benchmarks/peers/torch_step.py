#!/usr/bin/env python3
"""PyTorch benchmark peer: one MPL step (docs/STEP.md) written directly in torch, eager, float32, CPU.
Command line and outputs: see common.py. Threads: torch.set_num_threads(T), one inter-op thread, and the
process pinned to T CPUs. OpenMP's wait policy is left at its default; on a machine that other processes keep
busy, OpenMP's spinning made a 1M-element multiply 20x slower at T = 2 (5.4 ms against 0.26 ms with
OMP_WAIT_POLICY=passive), so time on an idle machine or set OMP_WAIT_POLICY=passive and say so.

Layouts: state tensors keep the ABI layouts (Dense W [in, out], Conv2D W [kh, kw, c_in, c_out]; images NHWC).
Internally images run as NCHW tensors: the input is permuted once, conv weights are permuted to OIHW inside the
graph (so gradients come back in HWIO), and Flatten permutes back to NHWC before reshaping, which keeps the
row-major (H, W, C) flattening of the ABI. The permuted input keeps its NHWC memory, so by default torch runs
channels-last; --layout nchw makes it contiguous NCHW instead. Measured once (W3, 1 thread, eager, CPU seconds
per step at load 5.6-11): wrn_28_2 4.2-4.6 channels-last against 5.2-5.5 NCHW, fashion_wrn the same in both;
so the benchmark runs channels-last (docs/PERFORMANCE.md, "W3: the first run").
Hard labels: autograd for g_u, g_l and the teacher; soft labels: the unrolled student update is built with
create_graph=True and the teacher is differentiated through it. BatchNorm: F.batch_norm in training mode in
every pass; the teacher's pass and the student's pass over x_us move copies of the running averages, the
student's pass over x_l moves none (docs/STEP.md).

--compile (peer name torch_compile): each network's forward under torch.compile (inductor, static shapes);
autograd differentiates the compiled graphs. Hard labels only: the soft mode differentiates a create_graph
gradient, which compiled graphs do not support.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PEER = "torch"


def build(torch, F, compile: bool = False, layout: str = "channels_last"):
    """The step, closed over the imported torch modules (imported after the thread settings)."""

    def forward(layers, params, x, masks, stats=None):
        """Logits. stats: running averages ("<layer>/running_mean|running_var") that BatchNorm moves in place,
        or None for a pass that moves none."""
        image = x.dim() == 4
        if image:
            x = x.permute(0, 3, 1, 2)                                    # NHWC -> NCHW (channels-last memory)
            if layout == "nchw":
                x = x.contiguous()
        x, _ = apply(layers, params, x, image, masks, stats)
        return x

    def apply(layers, params, x, image, masks, stats):
        for layer in layers:
            k, name = layer.kind, layer.name
            if k == "dense":
                x = x @ params[name + "/weight"] + params[name + "/bias"]
            elif k == "conv2d":
                w = params[name + "/weight"].permute(3, 2, 0, 1)         # HWIO -> OIHW
                if layout == "nchw":
                    w = w.contiguous()
                x = F.conv2d(x, w, params[name + "/bias"], stride=layer.attr("stride"),
                             padding=layer.attr("padding"))
            elif k == "batchnorm":
                running = (None, None) if stats is None else (stats[name + "/running_mean"], stats[name + "/running_var"])
                x = F.batch_norm(x, *running, params[name + "/scale"], params[name + "/offset"], training=True,
                                 momentum=layer.attr("momentum"), eps=layer.attr("epsilon"))
            elif k == "residual":
                body, _ = apply(layer.body, params, x, image, masks, stats)
                shortcut = layer.attr("shortcut")
                if shortcut == "conv":
                    w = params[name + "/shortcut/weight"].permute(3, 2, 0, 1)
                    x = F.conv2d(x, w.contiguous() if layout == "nchw" else w, None, stride=layer.attr("stride"))
                elif shortcut == "matrix":
                    x = x @ params[name + "/shortcut/weight"]
                x = body + x
            elif k == "maxpool":
                x = F.max_pool2d(x, layer.attr("size"), layer.attr("stride"))
            elif k == "avgpool":
                x = F.avg_pool2d(x, layer.attr("size"), layer.attr("stride"))
            elif k == "globalavgpool":
                x, image = x.mean(dim=(2, 3)), False
            elif k == "flatten":
                if image:
                    x = x.permute(0, 2, 3, 1)                            # back to NHWC for row-major (H, W, C)
                x, image = x.reshape(x.shape[0], -1), False
            elif k == "relu":
                x = torch.relu(x)
            elif k == "leakyrelu":
                x = F.leaky_relu(x, layer.attr("alpha"))
            elif k == "tanh":
                x = torch.tanh(x)
            elif k == "sigmoid":
                x = torch.sigmoid(x)
            elif k == "dropout" and name in masks:
                m = masks[name]
                if image:
                    h, w, c = layer.in_shape
                    m = m.reshape(-1, h, w, c).permute(0, 3, 1, 2)
                x = x * m.reshape(x.shape)
        return x, image

    networks = {}

    def network(layers):
        """forward over `layers`, compiled once per network with --compile."""
        if id(layers) not in networks:
            f = lambda params, x, masks, stats=None: forward(layers, params, x, masks, stats)   # noqa: E731
            networks[id(layers)] = (torch.compile(f, dynamic=False) if compile else f), layers
        return networks[id(layers)][0]

    def cross_entropy(q, z):
        return -(q * torch.log_softmax(z, dim=-1)).sum(dim=-1).mean()

    def sgd(params, momenta, grads, lr, opt):
        """Returns (params', momenta'); differentiable in grads when they carry a graph."""
        new_p, new_m = {}, {}
        for name, p in params.items():
            g = grads[name] + opt.weight_decay * p.detach() if name.endswith("/weight") else grads[name]
            v = opt.momentum * momenta[name] + g
            d = g + opt.momentum * v if opt.nesterov else v
            new_p[name] = p.detach() - lr * d
            new_m[name] = v.detach()
        return new_p, new_m

    def step(spec, tp, sp, tm, sm, ts, ss, inp):
        r = spec.recipe
        bl, bu, kcls = r.labeled_batch, r.unlabeled_batch, spec.classes
        x, y = inp["x"], inp["y"]
        x_l, x_us = x[:bl], x[bl + bu:]
        lr_t, lr_s, lam, f = inp["lr_teacher"], inp["lr_student"], inp["uda_weight"], inp["feedback_scale"]
        masks = {p: {k[len(f"dropout/{net}/{p}/"):]: v for k, v in inp.items() if k.startswith(f"dropout/{net}/{p}/")}
                 for net, p in (("teacher", "all"), ("student", "u"), ("student", "l"))}
        names_s = list(sp)
        ts, ss = ({k: v.clone() for k, v in stats.items()} for stats in (ts, ss))   # moved by one pass each
        teacher, student = network(spec.teacher), network(spec.student)

        for p in list(tp.values()) + list(sp.values()):
            p.requires_grad_(True)
        z = teacher(tp, x, masks["all"], ts)
        z_l, z_uw, z_us = z[:bl], z[bl:bl + bu], z[bl + bu:]
        eps = r.label_smoothing
        loss_sup = cross_entropy((1 - eps) * y + eps / kcls, z_l)
        q = torch.softmax(z_uw.detach() / r.uda_temperature, dim=-1)
        m = (q.max(dim=-1).values >= r.uda_threshold).to(z.dtype)
        loss_uda = (m * -(q * torch.log_softmax(z_us, dim=-1)).sum(dim=-1)).mean()
        mask_rate = m.mean()

        soft = r.pseudo_labels == "soft"
        if soft:
            yhat = torch.softmax(z_us / r.soft_temperature, dim=-1)
        else:
            yhat = F.one_hot(z_us.detach().argmax(dim=-1), kcls).to(z.dtype)
        loss_u = cross_entropy(yhat, student(sp, x_us, masks["u"], ss))
        g_u = dict(zip(names_s, torch.autograd.grad(loss_u, [sp[n] for n in names_s], create_graph=soft)))
        new_sp, new_sm = sgd(sp, sm, g_u, lr_s, r.student)
        if not soft:
            for p in new_sp.values():
                p.requires_grad_(True)
        loss_l = cross_entropy(y, student(new_sp, x_l, masks["l"]))
        g_l = torch.autograd.grad(loss_l, [new_sp[n] for n in names_s], retain_graph=soft)
        eta_eff = lr_s * r.student.step_factor
        h = eta_eff * sum((a.detach() * g_u[n].detach()).sum() for a, n in zip(g_l, names_s))

        if soft:
            j = loss_sup + lam * loss_uda + f * loss_l
        else:
            j = loss_sup + lam * loss_uda + f * h * cross_entropy(yhat, z_us)
        names_t = list(tp)
        g_t = dict(zip(names_t, torch.autograd.grad(j, [tp[n] for n in names_t])))
        with torch.no_grad():
            new_tp, new_tm = sgd({k: v.detach() for k, v in tp.items()}, tm, g_t, lr_t, r.teacher)
        outputs = {"loss_sup": loss_sup, "loss_uda": loss_uda, "mask_rate": mask_rate, "loss_student_u": loss_u,
                   "loss_student_l": loss_l, "h": h}
        detach = lambda d: {k: v.detach() for k, v in d.items()}
        return detach(new_tp), detach(new_sp), detach(new_tm), detach(new_sm), ts, ss, detach(outputs)

    return step


PARTS = ("teacher", "student", "teacher_momentum", "student_momentum", "teacher_stats", "student_stats")


def split(state):
    """The state as PARTS, keyed "<layer>/<suffix>": trained tensors, momenta, BatchNorm's running averages."""
    parts = {p: {} for p in PARTS}
    for name, value in state.items():
        prefix, rest = name.split("/", 1)
        parts[prefix + ("_stats" if common.mpl_io.is_statistic(name) else "")][rest] = value
    return tuple(parts[p] for p in PARTS)


class Runner:
    """Holds the torch modules (imported after the thread settings) and converts numpy state and batches."""

    def __init__(self, spec, compile: bool = False, layout: str = "channels_last"):
        if spec.recipe.pseudo_label_view != "strong":   # the benchmark's step is MPL.md's: labels of the strong view
            raise ValueError("the PyTorch peer takes pseudo labels from the strong view only, not "
                             f"{spec.recipe.pseudo_label_view!r}")
        import numpy as np
        import torch
        import torch.nn.functional as F
        self.np, self.torch, self.F, self.spec = np, torch, F, spec
        self.step_fn = build(torch, F, compile, layout)

    def tensor(self, a):
        return self.torch.from_numpy(self.np.ascontiguousarray(self.np.asarray(a, self.np.float32)))

    def inputs(self, state: dict, batch: dict):
        parts = tuple({k: self.tensor(v) for k, v in part.items()} for part in split(state))
        inp = {k: self.tensor(v) for k, v in batch.items() if k != "y"}
        y = self.np.asarray(batch["y"])
        if y.ndim == 1:
            inp["y"] = self.F.one_hot(self.torch.from_numpy(y.astype(self.np.int64)), self.spec.classes).float()
        else:
            inp["y"] = self.tensor(y)
        return parts, inp

    def step(self, parts, inp):
        *parts, outputs = self.step_fn(self.spec, *parts, inp)
        return tuple(parts), outputs

    def run_one_step(self, state: dict, batch: dict):
        """numpy in, numpy out: (new state, outputs as floats). Used by --check and by the agreement test."""
        parts, outputs = self.step(*self.inputs(state, batch))
        new_state = {}
        for prefix, part in zip(PARTS, parts):
            new_state.update({f"{prefix.removesuffix('_stats')}/{k}": v.numpy() for k, v in part.items()})
        return new_state, {k: v.item() for k, v in outputs.items()}


def configure_threads(threads: int) -> None:
    import torch
    common.pin_threads(threads)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def peer_name(compile: bool) -> str:
    return "torch_compile" if compile else PEER


def main() -> int:
    args = common.parse_args(PEER)
    configure_threads(args.threads)
    peer = peer_name(args.compile)

    if args.check:
        spec, state, batch = common.load_check_inputs(args.workload, args.mode, args.check)
        common.write_check_outputs(peer, spec, args.check,
                                   *Runner(spec, args.compile, args.layout).run_one_step(state, batch))
        return 0

    spec, state, batch = common.example(args.workload, args.mode, args.seed)
    runner = Runner(spec, args.compile, args.layout)
    parts, inp = runner.inputs(state, batch)
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        parts, outputs = runner.step(parts, inp)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    common.report_times(peer, args, times, cpu_times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
