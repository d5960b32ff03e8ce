#!/usr/bin/env python3
"""Independent JAX reference of one Meta Pseudo Labels step (docs/STEP.md), with the tensor names and
layouts of docs/ABI.md. mplc's generated C is checked against this file; it shares no code with mplc.
The numpy-only parts (spec parsing, names, safetensors, replay layout, random examples) live in mpl_io.py,
so that the PyTorch peer need not import JAX; this module re-exports them.

Model spec (JSON)
=================
The compiler writes this file next to the generated C; tests and benchmarks write it by hand.

    {
      "input":   {"height": 28, "width": 28, "channels": 1},      # or {"features": D} for vector input
      "classes": 10,
      "teacher": [LAYER, ...],                                    # a Sequential, applied in order
      "student": [LAYER, ...],
      "recipe": {
        "labeled_batch": 32,                   # B_l
        "unlabeled_batch": 128,                # B_u
        "pseudo_labels": "hard-argmax",        # "hard-argmax" | "hard-sampled" | "soft"
        "soft_temperature": 1.0,               # tau_pl (soft only; default 1)
        "pseudo_label_view": "strong",         # "strong" | "weak": the teacher logits pseudo labels come from
        "feedback": "dot-product",             # "dot-product" | "loss-difference" (hard only)
        "uda_temperature": 0.7,
        "uda_threshold": 0.6,
        "label_smoothing": 0.1,
        "teacher": {"momentum": 0.9, "nesterov": true, "weight_decay": 5e-4},
        "student": {"momentum": 0.9, "nesterov": true, "weight_decay": 5e-4}
      }
    }

LAYER is one of (defaults in brackets; other keys are ignored, so the compiler may add its own):

    {"layer": "dense", "units": U}
    {"layer": "conv2d", "filters": F, "kernel": K, "stride": [1], "padding": [0]}
    {"layer": "maxpool", "size": K, "stride": [K]}          (alias "maxpool2d")
    {"layer": "avgpool", "size": K, "stride": [K]}          (alias "avgpool2d")
    {"layer": "globalavgpool"} | {"layer": "flatten"} | {"layer": "relu"} | {"layer": "tanh"} | {"layer": "sigmoid"}
    {"layer": "gelu"}                                       (x·Φ(x), the erf form)
    {"layer": "leakyrelu", "alpha": A}
    {"layer": "dropout", "rate": R}
    {"layer": "batchnorm", "momentum": [0.01], "epsilon": [0.001]}
    {"layer": "residual", "body": [LAYER, ...]}             (body(x) + shortcut(x), docs/DSL.md)

Learning rates, the UDA weight and the feedback scale are not in the spec: they are per-step scalars.

Names and layouts (docs/ABI.md)
===============================
Every layer is named by its kind and its index in its Sequential: "dense3", "conv0", "dropout5", ... (kinds:
dense, conv, maxpool, avgpool, globalavgpool, flatten, relu, leakyrelu, tanh, sigmoid, gelu, dropout, bn, res);
layers inside a residual block are scoped by it ("res3/conv0"), its projection is "res3/shortcut/weight". State
tensors: teacher/<layer>/weight|bias|scale|offset, student/..., teacher_momentum/..., student_momentum/..., then
BatchNorm's running averages teacher/<layer>/running_mean|running_var and student/..., in that order, layers in
Sequential order (a block's body before its shortcut). Dense W is [in, out], Conv2D W is [kh, kw, c_in, c_out] (HWIO);
images are channels-last [N, H, W, C]; Flatten is row-major over (H, W, C).

Step inputs (a dict "batch" keyed by the ABI names): x [B_l+2B_u, H, W, C] (rows: labeled, weak, strong),
y [B_l] int labels or [B_l, K] one-hot, lr_teacher, lr_student, uda_weight, feedback_scale (scalars),
feedback_baseline (scalar, hard pseudo labels; optional, default 0),
uniform [B_u] (hard-sampled only), dropout/teacher/all/<layer> [B_l+2B_u, F], dropout/student/u/<layer> [B_u, F],
dropout/student/l/<layer> [B_l, F] (F = features entering the Dropout, flattened row-major; a missing mask
means no dropout). Outputs: loss_sup, loss_uda, mask_rate, loss_student_u, loss_student_l, h, g_l_norm, g_u_norm,
cos_g_l_g_u, h_positive.

Math conventions (docs/STEP.md, followed to the letter)
=======================================================
CE(q, z) = -(1/N) sum_i sum_k q_ik log_softmax(z)_ik. Teacher: loss_sup = CE(smooth(y), z_l); q = stopgrad
softmax(z_uw / tau_uda), m_i = [max_k q_ik >= threshold], loss_uda = (1/B_u) sum_i m_i CE_i(q, z_us).
Student: g_u = grad CE(yhat, S(x_us)); SGD with g = g_u + wd*theta (weights only), v' = mu*v + g,
d = g + mu*v' (Nesterov) or v', theta' = theta - lr*d; eta_eff = lr*(1+mu) with Nesterov, else lr.
Hard labels: h = eta_eff <g_l, g_u> (dot-product) or CE(y, S(x_l; theta_S)) - CE(y, S(x_l; theta'_S))
(loss-difference, old - new), and g_T = grad(loss_sup + lambda*loss_uda + f*h*CE(yhat, z_us)) with h, yhat constant.
With pseudo_label_view "weak", yhat (hard) or the soft labels come from z_uw instead of z_us, and so does the
REINFORCE term's CE(yhat, z_uw); the student still learns on x_us.
Soft labels: g_T = grad(loss_sup + lambda*loss_uda) + f * d/d theta_T [ loss_student_l(theta'_S(theta_T)) ],
the last term computed here by reverse-mode differentiation of the *unrolled* student update (through the
soft labels, g_u and the actual SGD step: jax.value_and_grad in the teacher's logits, then the teacher's VJP;
`unrolled_student_labeled_loss` is the same objective as a function of theta_T). docs/STEP.md writes it as -f*eta_eff*grad F with F = <g_l, grad_S CE(softmax(z_us/tau), S(x_us))>
(a VJP of a JVP); `soft_feedback_gradient_jvp` computes that form and the tests check both agree. The output h
is eta_eff <g_l, g_u> in every mode (STEP.md 8: "for information" with soft labels).
BatchNorm: every pass of the step is a training pass (batch mean and biased variance, differentiated through);
the running averages move once per network and step, from the teacher's pass over all rows and from the
student's pass over x_us (avg <- (1-m) avg + m stop_gradient(stat), the variance unbiased), as STEP.md says.

CLI
===
    mpl_jax.py --spec model.json --checkpoint in.safetensors --batches DIR --steps N \
               --out out.safetensors --losses losses.jsonl [--x64] [--decisions OUT.json] [--flip DECISIONS.json]
    mpl_jax.py --make-example OUTDIR --spec model.json [--seed S] [--steps N] [--images normal|pixels]

Replay layout (the same as `mplc-run replay`, docs/RUNNER.md): DIR/step_000000/x.npy (float32
[B_l+2B_u, H, W, C] or [B_l+2B_u, H*W*C]), y.npy (int [B_l] or one-hot [B_l, K]),
scalars.npy (float32 [4]: lr_teacher, lr_student, uda_weight, feedback_scale), optional uniform.npy [B_u],
optional dropout masks named after the input with "/" replaced by "__" (dropout/teacher/all/dropout9 ->
dropout__teacher__all__dropout9.npy). --make-example writes OUTDIR/init.safetensors, OUTDIR/spec.json and
OUTDIR/step_000000 ... in that layout. With --x64 the step runs (and the output checkpoint is written) in float64.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Callable

import numpy as np

import jax
import jax.numpy as jnp
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpl_io import (  # noqa: E402,F401  (re-exported: the spec, names, safetensors, replay layout, examples)
    OUTPUT_NAMES, SCALAR_NAMES, Layer, Optim, Recipe, Spec, check_state, dropout_inputs, is_statistic, is_weight,
    load_batch, load_spec, make_example, parse_spec, random_batch, random_state, read_safetensors, save_batch,
    state_shapes, step_dir, walk, write_safetensors)

__all__ = [
    # from mpl_io
    "OUTPUT_NAMES", "SCALAR_NAMES", "Layer", "Optim", "Recipe", "Spec", "check_state", "dropout_inputs", "is_weight",
    "is_statistic", "load_batch", "load_spec", "make_example", "parse_spec", "random_batch", "random_state",
    "read_safetensors", "save_batch", "state_shapes", "step_dir", "walk", "write_safetensors",
    # the step
    "dense", "conv2d", "max_pool", "avg_pool", "batch_norm", "apply_layer", "forward", "cross_entropy",
    "smooth", "uda_loss", "hard_pseudo_labels", "sgd_update", "tree_vdot", "split_state", "split_statistics",
    "join_state", "update_statistics", "make_context",
    "unrolled_student_labeled_loss", "soft_feedback_gradient_jvp", "mpl_step", "enable_x64", "replay",
    "find_decisions", "flipped_decisions",
]

# ----------------------------------------------------------------------------------------------------------
# Layers and networks (pure jax.numpy; params keyed "<layer>/weight" relative to the network)
# ----------------------------------------------------------------------------------------------------------

_HI = lax.Precision.HIGHEST


def dense(x, w, b):
    return jnp.matmul(x, w, precision=_HI) + b


def conv2d(x, w, b, stride: int, padding: int):
    """Cross-correlation of NHWC x with HWIO w, zero padding."""
    y = lax.conv_general_dilated(x, w, window_strides=(stride, stride),
                                 padding=((padding, padding), (padding, padding)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HI)
    return y + b


def max_pool(x, size: int, stride: int):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID")


def avg_pool(x, size: int, stride: int):
    s = lax.reduce_window(x, np.array(0, x.dtype), lax.add, (1, size, size, 1), (1, stride, stride, 1), "VALID")
    return s / (size * size)


def batch_norm(x, scale, offset, epsilon: float):
    """Training-mode BatchNorm over the last axis: (normalised x, batch mean, biased batch variance)."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - mean), axis=axes)
    return (x - mean) * scale * lax.rsqrt(var + epsilon) + offset, mean, var


# ----------------------------------------------------------------------------------------------------------
# Decisions near their threshold. A float32 step meets ReLU decisions whose pre-activation is within rounding of 0;
# float32 libraries may take such a decision the other way from float64, which moves a few gradients by ~1e-3. The
# benchmark's check (Benchmarks/bench.py) lists them in float64 (find_decisions) and, when mplc misses float64,
# reruns float64 with some of them forced the other way (--flip) to see whether that is the whole difference.
# ----------------------------------------------------------------------------------------------------------

class _Decisions:
    flips: dict = {}            # (pass, layer name) -> bool array shaped like the layer's input: decisions to flip
    record: list | None = None  # while find_decisions runs: receives (pass, layer name, input) of eager passes


def _rectifier(layer: Layer, x, alpha: float, pass_: str | None):
    """ReLU (alpha 0) or LeakyReLU: x where x > 0, else alpha x (derivative 0 or alpha at 0), with the decisions
    of _Decisions.flips for this pass and layer taken the other way."""
    if _Decisions.record is not None:
        _Decisions.record.append((pass_, layer.name, np.asarray(x)))
    flips = _Decisions.flips.get((pass_, layer.name))
    if flips is None and alpha == 0.0:
        return jax.nn.relu(x)  # as the peers always ran it (XLA's own ReLU)
    on = x > 0 if flips is None else (x > 0) != flips
    return jnp.where(on, x, alpha * x)


def apply_layer(layer: Layer, params: dict, x, mask=None, masks: dict | None = None, stats: dict | None = None,
                pass_: str | None = None):
    """One layer. masks: every dropout mask of the pass (a residual block's body needs its own); stats, if a
    dict, receives each BatchNorm's (batch mean, unbiased batch variance), as constants; pass_ names the pass
    ("teacher", "student_u", "student_l") for the decisions above."""
    k = layer.kind
    if k == "dense":
        return dense(x, params[f"{layer.name}/weight"], params[f"{layer.name}/bias"])
    if k == "conv2d":
        return conv2d(x, params[f"{layer.name}/weight"], params[f"{layer.name}/bias"],
                      layer.attr("stride"), layer.attr("padding"))
    if k == "maxpool":
        return max_pool(x, layer.attr("size"), layer.attr("stride"))
    if k == "avgpool":
        return avg_pool(x, layer.attr("size"), layer.attr("stride"))
    if k == "globalavgpool":
        return jnp.mean(x, axis=(1, 2))
    if k == "flatten":
        return x.reshape(x.shape[0], -1)
    if k == "relu":
        return _rectifier(layer, x, 0.0, pass_)
    if k == "leakyrelu":
        return _rectifier(layer, x, layer.attr("alpha"), pass_)
    if k == "tanh":
        return jnp.tanh(x)
    if k == "sigmoid":
        return jax.nn.sigmoid(x)
    if k == "gelu":
        return jax.nn.gelu(x, approximate=False)  # the erf form, as mplc computes it
    if k == "dropout":
        return x if mask is None else x * mask.reshape(x.shape)
    if k == "batchnorm":
        y, mean, var = batch_norm(x, params[f"{layer.name}/scale"], params[f"{layer.name}/offset"],
                                  layer.attr("epsilon"))
        if stats is not None:
            count = x.size // x.shape[-1]
            unbiased = count / (count - 1) if count > 1 else 1.0
            stats[layer.name] = (lax.stop_gradient(mean), lax.stop_gradient(var) * unbiased)
        return y
    if k == "residual":
        body = forward(layer.body, params, x, masks, stats, pass_)
        shortcut = layer.attr("shortcut")
        if shortcut == "conv":
            return body + conv2d(x, params[f"{layer.name}/shortcut/weight"], 0.0, layer.attr("stride"), 0)
        if shortcut == "matrix":
            return body + jnp.matmul(x, params[f"{layer.name}/shortcut/weight"], precision=_HI)
        return body + x
    raise AssertionError(k)


def forward(layers: tuple, params: dict, x, masks: dict | None = None, stats: dict | None = None,
            pass_: str | None = None):
    """Logits of a Sequential. masks: layer name -> [rows, features] dropout mask (missing: no dropout);
    stats, pass_: see apply_layer."""
    masks = masks or {}
    for layer in layers:
        x = apply_layer(layer, params, x, masks.get(layer.name), masks, stats, pass_)
    return x


# ----------------------------------------------------------------------------------------------------------
# Losses, pseudo labels, optimiser
# ----------------------------------------------------------------------------------------------------------

def cross_entropy(q, z):
    """CE(q, z) = -(1/N) sum_i sum_k q_ik log_softmax(z)_ik."""
    return -jnp.mean(jnp.sum(q * jax.nn.log_softmax(z, axis=-1), axis=-1))


def smooth(y, eps: float):
    return (1.0 - eps) * y + eps / y.shape[-1]


def uda_loss(z_uw, z_us, temperature: float, threshold: float):
    """(masked UDA loss, mask rate); the target and the mask are constants."""
    q = lax.stop_gradient(jax.nn.softmax(z_uw / temperature, axis=-1))
    m = (jnp.max(q, axis=-1) >= threshold).astype(z_us.dtype)
    per_row = -jnp.sum(q * jax.nn.log_softmax(z_us, axis=-1), axis=-1)
    return jnp.mean(m * per_row), jnp.mean(m)


def hard_pseudo_labels(z_us, mode: str, uniform=None):
    """One-hot pseudo labels (constants): first argmax, or inverse-CDF sample with the given U(0,1) draws."""
    k = z_us.shape[-1]
    if mode == "hard-argmax":
        idx = jnp.argmax(z_us, axis=-1)
    else:
        cdf = jnp.cumsum(jax.nn.softmax(z_us, axis=-1), axis=-1)
        # smallest k with cdf_k > u is the number of k with cdf_k <= u (cdf is non-decreasing); K-1 if none
        idx = jnp.minimum(jnp.sum(cdf <= uniform[:, None], axis=-1), k - 1)
    return lax.stop_gradient(jax.nn.one_hot(idx, k, dtype=z_us.dtype))


def sgd_update(params: dict, momenta: dict, grads: dict, lr, opt: Optim):
    """SGD with momentum (Nesterov or heavy ball) and weight decay on weights only. Returns (params', momenta')."""
    new_p, new_m = {}, {}
    for name, p in params.items():
        g = grads[name] + opt.weight_decay * p if is_weight(name) else grads[name]
        v = opt.momentum * momenta[name] + g
        d = g + opt.momentum * v if opt.nesterov else v
        new_p[name] = p - lr * d
        new_m[name] = v
    return new_p, new_m


def tree_vdot(a: dict, b: dict):
    return sum(jnp.vdot(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------------------------------------
# The step
# ----------------------------------------------------------------------------------------------------------

def split_state(state: dict) -> tuple[dict, dict, dict, dict]:
    """(teacher params, student params, teacher momenta, student momenta), keyed "<layer>/<suffix>"; the trained
    tensors only (split_statistics has BatchNorm's running averages)."""
    parts: dict[str, dict] = {"teacher": {}, "student": {}, "teacher_momentum": {}, "student_momentum": {}}
    for name, value in state.items():
        if not is_statistic(name):
            prefix, rest = name.split("/", 1)
            parts[prefix][rest] = value
    return parts["teacher"], parts["student"], parts["teacher_momentum"], parts["student_momentum"]


def split_statistics(state: dict) -> tuple[dict, dict]:
    """(teacher's, student's) BatchNorm running averages, keyed "<layer>/running_mean|running_var"."""
    parts: dict[str, dict] = {"teacher": {}, "student": {}}
    for name, value in state.items():
        if is_statistic(name):
            prefix, rest = name.split("/", 1)
            parts[prefix][rest] = value
    return parts["teacher"], parts["student"]


def join_state(tp: dict, sp: dict, tm: dict, sm: dict, t_stats: dict | None = None,
               s_stats: dict | None = None) -> dict:
    out = {}
    for prefix, part in (("teacher", tp), ("student", sp), ("teacher_momentum", tm), ("student_momentum", sm),
                         ("teacher", t_stats or {}), ("student", s_stats or {})):
        for rest, value in part.items():
            out[f"{prefix}/{rest}"] = value
    return out


def update_statistics(layers: tuple, running: dict, batch: dict) -> dict:
    """The running averages after one pass: avg <- (1 - m) avg + m stat for each BatchNorm that saw a batch."""
    out = dict(running)
    for layer in walk(layers):
        if layer.kind == "batchnorm" and layer.name in batch:
            m = layer.attr("momentum")
            for suffix, stat in zip(("running_mean", "running_var"), batch[layer.name]):
                key = f"{layer.name}/{suffix}"
                out[key] = (1 - m) * running[key] + m * stat
    return out


def _masks(batch: dict, net: str, p: str) -> dict:
    prefix = f"dropout/{net}/{p}/"
    return {k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix)}


@dataclasses.dataclass
class _Ctx:
    """The pieces of one step's inputs, sliced and typed."""
    spec: Spec
    x_l: Any
    x_us: Any
    x: Any
    y: Any                   # one-hot [B_l, K]
    uniform: Any
    lr_teacher: Any
    lr_student: Any
    uda_weight: Any
    feedback_scale: Any
    feedback_baseline: Any   # subtracted from h (hard pseudo labels; 0 when the batch has none: the paper's rule)
    masks_t: dict
    masks_u: dict
    masks_l: dict


def _context(spec: Spec, batch: dict, dtype) -> _Ctx:
    r = spec.recipe
    bl, bu = r.labeled_batch, r.unlabeled_batch
    x = jnp.asarray(batch["x"], dtype)
    x = x.reshape((x.shape[0],) + spec.input_shape)       # accepts [N, H, W, C], [N, H*W*C] or [N, 1, 1, D]
    if x.shape[0] != bl + 2 * bu:
        raise ValueError(f"x has {x.shape[0]} rows, expected B_l + 2 B_u = {bl + 2 * bu}")
    y = jnp.asarray(batch["y"])
    if y.ndim == 1:
        y = jax.nn.one_hot(y, spec.classes, dtype=dtype)
    y = y.astype(dtype)
    uniform = batch.get("uniform")
    if r.pseudo_labels == "hard-sampled":
        if uniform is None:
            raise ValueError("hard-sampled pseudo labels need the 'uniform' input")
        uniform = jnp.asarray(uniform, dtype)
    scal = {k: jnp.asarray(batch[k], dtype).reshape(()) for k in
            ("lr_teacher", "lr_student", "uda_weight", "feedback_scale")}
    scal["feedback_baseline"] = jnp.asarray(batch.get("feedback_baseline", 0.0), dtype).reshape(())
    cast = lambda d: {k: jnp.asarray(v, dtype) for k, v in d.items()}
    return _Ctx(spec, x[:bl], x[bl + bu:], x, y, uniform, masks_t=cast(_masks(batch, "teacher", "all")),
                masks_u=cast(_masks(batch, "student", "u")), masks_l=cast(_masks(batch, "student", "l")), **scal)


def _teacher_forward(c: _Ctx, tp: dict):
    """((z_l, z_uw, z_us), BatchNorm batch statistics) from one teacher pass over all rows."""
    bl, bu = c.spec.recipe.labeled_batch, c.spec.recipe.unlabeled_batch
    stats: dict = {}
    z = forward(c.spec.teacher, tp, c.x, c.masks_t, stats, "teacher")
    return (z[:bl], z[bl:bl + bu], z[bl + bu:]), stats


def _teacher_logits(c: _Ctx, tp: dict):
    """(z_l, z_uw, z_us) from one teacher pass over all rows."""
    return _teacher_forward(c, tp)[0]


def _teacher_losses(c: _Ctx, z_l, z_uw, z_us):
    r = c.spec.recipe
    loss_sup = cross_entropy(smooth(c.y, r.label_smoothing), z_l)
    loss_uda, mask_rate = uda_loss(z_uw, z_us, r.uda_temperature, r.uda_threshold)
    return loss_sup, loss_uda, mask_rate


def _student_loss_u_stats(c: _Ctx, sp: dict, yhat):
    """(loss_student_u, the pass's BatchNorm batch statistics): the pass that moves the student's averages."""
    stats: dict = {}
    return cross_entropy(yhat, forward(c.spec.student, sp, c.x_us, c.masks_u, stats, "student_u")), stats


def _student_loss_u(c: _Ctx, sp: dict, yhat):
    return _student_loss_u_stats(c, sp, yhat)[0]


def _student_loss_l(c: _Ctx, sp: dict):
    return cross_entropy(c.y, forward(c.spec.student, sp, c.x_l, c.masks_l, pass_="student_l"))


def _student_step(c: _Ctx, sp: dict, sm: dict, yhat):
    """Steps 5-6: the student's loss on the pseudo labels, its gradient g_u, the updated student and the pass's
    BatchNorm batch statistics."""
    (loss_u, stats), g_u = jax.value_and_grad(_student_loss_u_stats, argnums=1, has_aux=True)(c, sp, yhat)
    new_sp, new_sm = sgd_update(sp, sm, g_u, c.lr_student, c.spec.recipe.student)
    return loss_u, g_u, new_sp, new_sm, stats


def _eta_eff(c: _Ctx):
    return c.lr_student * c.spec.recipe.student.step_factor


def _labeled_view(c: _Ctx, z_uw, z_us):
    """The teacher logits the pseudo labels come from: z_us (MPL.md), or z_uw with pseudo_label_view "weak"."""
    return z_uw if c.spec.recipe.pseudo_label_view == "weak" else z_us


def _soft_labels(c: _Ctx, z):
    return jax.nn.softmax(z / c.spec.recipe.soft_temperature, axis=-1)


def _unrolled_from_logits(c: _Ctx, z, sp: dict, sm: dict):
    """z (the labeled view's logits) -> loss_student_l(theta'_S) through soft labels, g_u and the actual SGD update.
    (value, aux)."""
    loss_u, g_u, new_sp, new_sm, stats = _student_step(c, sp, sm, _soft_labels(c, z))
    return _student_loss_l(c, new_sp), (loss_u, g_u, new_sp, new_sm, stats)


def unrolled_student_labeled_loss(c: _Ctx, tp: dict, sp: dict, sm: dict):
    """theta_T -> loss_student_l(theta'_S(theta_T)) with soft pseudo labels: the objective whose gradient
    is the soft-label teacher feedback (docs/STEP.md, "Why soft labels give the exact meta-gradient")."""
    _, z_uw, z_us = _teacher_logits(c, tp)
    return _unrolled_from_logits(c, _labeled_view(c, z_uw, z_us), sp, sm)[0]


def soft_feedback_gradient_jvp(c: _Ctx, tp: dict, sp: dict, g_l: dict):
    """-eta_eff * grad_T F, F(theta_T) = <g_l, grad_S CE(softmax(z_us/tau), S(x_us; theta_S))>: the VJP (in theta_T)
    of a JVP (in theta_S, tangent g_l), i.e. docs/STEP.md's formulation. Used only to cross-check."""
    def feedback(tp_):
        _, z_uw, z_us = _teacher_logits(c, tp_)
        yhat = _soft_labels(c, _labeled_view(c, z_uw, z_us))
        return jax.jvp(lambda s: _student_loss_u(c, s, yhat), (sp,), (g_l,))[1]
    grad_f = jax.grad(feedback)(tp)
    return jax.tree_util.tree_map(lambda g: -_eta_eff(c) * g, grad_f)


def _diagnostics(g_l: dict, g_u: dict, h) -> dict:
    """The feedback diagnostics (docs/ABI.md): the norms of g_l and g_u, their cosine, and h > 0."""
    norm_l, norm_u = jnp.sqrt(tree_vdot(g_l, g_l)), jnp.sqrt(tree_vdot(g_u, g_u))
    cosine = tree_vdot(g_l, g_u) / jnp.maximum(norm_l * norm_u, 1e-30)
    return dict(g_l_norm=norm_l, g_u_norm=norm_u, cos_g_l_g_u=cosine, h_positive=(h > 0).astype(norm_l.dtype))


def _part_cotangents(parts: Callable, z) -> list:
    """dJ_k/dz of each part J_k of the teacher's objective (supervised, weighted UDA, scaled feedback), so that the
    teacher's VJP of each gives its part of g_T (the step outputs teacher_grad_*_norm)."""
    return [jax.grad(lambda *zz, k=k: parts(*zz)[k], argnums=(0, 1, 2))(*z) for k in range(3)]


def _soft_step(c: _Ctx, z, sp: dict, sm: dict):
    """Teacher objective as a function of its logits z = (z_l, z_uw, z_us):
    loss_sup + lambda*loss_uda + f*loss_student_l(theta'_S(z_us)). Returns (dJ/dz, new student, outputs)."""
    def objective(z_l, z_uw, z_us):
        loss_sup, loss_uda, mask_rate = _teacher_losses(c, z_l, z_uw, z_us)
        loss_l, student = _unrolled_from_logits(c, _labeled_view(c, z_uw, z_us), sp, sm)
        j = loss_sup + c.uda_weight * loss_uda + c.feedback_scale * loss_l
        return j, (loss_sup, loss_uda, mask_rate, loss_l, student)

    (_, aux), dz = jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True)(*z)
    loss_sup, loss_uda, mask_rate, loss_l, (loss_u, g_u, new_sp, new_sm, s_stats) = aux
    g_l = jax.grad(_student_loss_l, argnums=1)(c, new_sp)
    h = _eta_eff(c) * tree_vdot(g_l, g_u)

    def parts(z_l, z_uw, z_us):
        loss_sup, loss_uda, _ = _teacher_losses(c, z_l, z_uw, z_us)
        feedback = _unrolled_from_logits(c, _labeled_view(c, z_uw, z_us), sp, sm)[0]
        return loss_sup, c.uda_weight * loss_uda, c.feedback_scale * feedback
    return dz, parts, new_sp, new_sm, s_stats, dict(loss_sup=loss_sup, loss_uda=loss_uda, mask_rate=mask_rate,
                                    loss_student_u=loss_u, loss_student_l=loss_l, h=h, **_diagnostics(g_l, g_u, h))


def _hard_step(c: _Ctx, z, sp: dict, sm: dict):
    """Student step on constant hard labels, the feedback h, then dJ/dz of
    J = loss_sup + lambda*loss_uda + f*(h - b)*CE(yhat, z_us) with h, the baseline b and yhat constant."""
    r = c.spec.recipe
    yhat = hard_pseudo_labels(_labeled_view(c, z[1], z[2]), r.pseudo_labels, c.uniform)
    loss_u, g_u, new_sp, new_sm, s_stats = _student_step(c, sp, sm, yhat)
    loss_l, g_l = jax.value_and_grad(_student_loss_l, argnums=1)(c, new_sp)
    if r.feedback == "dot-product":
        h = _eta_eff(c) * tree_vdot(g_l, g_u)
    else:
        h = _student_loss_l(c, sp) - loss_l                     # old - new, same l masks
    h = lax.stop_gradient(h)

    def objective(z_l, z_uw, z_us):
        loss_sup, loss_uda, mask_rate = _teacher_losses(c, z_l, z_uw, z_us)
        reinforce = (h - c.feedback_baseline) * cross_entropy(yhat, _labeled_view(c, z_uw, z_us))
        j = loss_sup + c.uda_weight * loss_uda + c.feedback_scale * reinforce
        return j, (loss_sup, loss_uda, mask_rate)

    (_, (loss_sup, loss_uda, mask_rate)), dz = jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True)(*z)

    def parts(z_l, z_uw, z_us):
        loss_sup, loss_uda, _ = _teacher_losses(c, z_l, z_uw, z_us)
        reinforce = (h - c.feedback_baseline) * cross_entropy(yhat, _labeled_view(c, z_uw, z_us))
        return loss_sup, c.uda_weight * loss_uda, c.feedback_scale * reinforce
    return dz, parts, new_sp, new_sm, s_stats, dict(loss_sup=loss_sup, loss_uda=loss_uda, mask_rate=mask_rate,
                                    loss_student_u=loss_u, loss_student_l=loss_l, h=h, **_diagnostics(g_l, g_u, h))


def mpl_step(state: dict, batch: dict, spec: Spec, gradient_parts: bool = True):
    """One MPL step (docs/STEP.md). state: ABI name -> array; batch: ABI step-input name -> array.
    Returns (new_state, outputs); pure, so `jax.jit(functools.partial(mpl_step, spec=spec))` works.
    The dtype of the state (float32 or float64) is the computation's dtype.

    The teacher runs forward once over all rows; every teacher term is a function of its logits, and
    g_T is the teacher's VJP of dJ/dz (one backward pass). gradient_parts=False leaves out the outputs
    teacher_grad_*_norm and the three more teacher VJPs they cost (mplc computes them only with
    teacherGradientParts(true); the benchmark's JAX peer does without)."""
    tp, sp, tm, sm = split_state(state)
    t_stats, s_stats = split_statistics(state)
    dtype = next(iter(tp.values())).dtype
    c = _context(spec, batch, dtype)
    z, teacher_vjp, t_batch = jax.vjp(lambda p: _teacher_forward(c, p), tp, has_aux=True)
    step = _soft_step if spec.recipe.pseudo_labels == "soft" else _hard_step
    dz, parts, new_sp, new_sm, s_batch, outputs = step(c, z, sp, sm)
    (g_t,) = teacher_vjp(dz)
    if gradient_parts:
        # The three parts each through the teacher's VJP; g_t above is the VJP of their sum, as one pass.
        names = ("teacher_grad_sup_norm", "teacher_grad_uda_norm", "teacher_grad_feedback_norm")
        for name, d in zip(names, _part_cotangents(parts, z)):
            (g,) = teacher_vjp(d)
            outputs[name] = jnp.sqrt(tree_vdot(g, g))
    new_tp, new_tm = sgd_update(tp, tm, g_t, c.lr_teacher, spec.recipe.teacher)
    return join_state(new_tp, new_sp, new_tm, new_sm, update_statistics(spec.teacher, t_stats, t_batch),
                      update_statistics(spec.student, s_stats, s_batch)), outputs


def make_context(spec: Spec, batch: dict, dtype=jnp.float64) -> _Ctx:
    """Public handle on a step's sliced inputs, for tests that call the pieces above."""
    return _context(spec, batch, dtype)


def find_decisions(spec: Spec, state: dict, batch: dict, new_state: dict, below: float = 1e-6,
                   limit: int = 8) -> list[dict]:
    """The ReLU/LeakyReLU decisions of one step whose pre-activation z is nearest its threshold: |z| below `below`
    times the root mean square of the layer's input in that pass, at most `limit` of them, nearest first. Passes:
    the teacher's over all rows (state's teacher), the student's over x_us (state's student) and the updated
    student's over x_l (new_state's student: the pass whose gradient is g_l; loss-difference's pass of the old
    student over x_l is not searched). Each: {"pass", "layer", "index" (into the layer's input), "shape", "z",
    "relative"}; --flip takes a list of them. Runs the passes eagerly in the state's dtype."""
    tp, sp, _, _ = split_state(state)
    new_sp = split_state(new_state)[1]
    dtype = next(iter(tp.values())).dtype
    c = _context(spec, batch, dtype)
    _Decisions.record = recorded = []
    try:
        forward(spec.teacher, tp, c.x, c.masks_t, pass_="teacher")
        forward(spec.student, sp, c.x_us, c.masks_u, pass_="student_u")
        forward(spec.student, new_sp, c.x_l, c.masks_l, pass_="student_l")
    finally:
        _Decisions.record = None
    found = []
    for pass_, layer, z in recorded:
        z = z.astype(np.float64)
        relative = np.abs(z) / max(float(np.sqrt(np.mean(np.square(z)))), 1e-300)
        for flat in np.flatnonzero(relative < below):
            index = np.unravel_index(flat, z.shape)
            found.append({"pass": pass_, "layer": layer, "index": [int(i) for i in index], "shape": list(z.shape),
                          "z": float(z[index]), "relative": float(relative[index])})
    return sorted(found, key=lambda d: d["relative"])[:limit]


class flipped_decisions:
    """`with flipped_decisions(list of find_decisions' entries):` steps built (traced) inside take those decisions
    the other way; outside, none is flipped."""

    def __init__(self, decisions: list[dict]):
        self.flips: dict = {}
        for d in decisions:
            key = (d["pass"], d["layer"])
            mask = self.flips.setdefault(key, np.zeros(d["shape"], dtype=bool))
            if list(mask.shape) != list(d["shape"]):
                raise ValueError(f"decision {d}: shape differs from another decision of {key}")
            mask[tuple(d["index"])] = True

    def __enter__(self):
        _Decisions.flips = {k: jnp.asarray(v) for k, v in self.flips.items()}
        return self

    def __exit__(self, *exc):
        _Decisions.flips = {}
        return False


# ----------------------------------------------------------------------------------------------------------
# Replay driver and CLI
# ----------------------------------------------------------------------------------------------------------

def enable_x64() -> None:
    jax.config.update("jax_enable_x64", True)


def replay(spec: Spec, state: dict, batches_dir: str, steps: int, dtype, step_fn: Callable | None = None,
           on_step: Callable | None = None) -> dict:
    """Runs `steps` steps from the replay layout; on_step(step, outputs as floats) after each."""
    step_fn = step_fn or jax.jit(lambda s, b: mpl_step(s, b, spec))
    state = {k: jnp.asarray(v, dtype) for k, v in state.items()}
    for s in range(steps):
        d = step_dir(batches_dir, s)
        if not os.path.isdir(d):
            raise FileNotFoundError(f"missing batch directory {d}")
        batch = {k: (jnp.asarray(v) if k == "y" else jnp.asarray(v, dtype)) for k, v in load_batch(d).items()}
        state, outputs = step_fn(state, batch)
        if on_step:
            on_step(s, {k: float(outputs[k]) for k in OUTPUT_NAMES})
    return state


def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="JAX reference of one MPL step (docs/STEP.md).")
    ap.add_argument("--spec", required=True, help="model spec JSON (schema at the top of this file)")
    ap.add_argument("--checkpoint", help="initial state (safetensors, ABI names)")
    ap.add_argument("--batches", help="replay directory holding step_000000, step_000001, ...")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--out", help="output checkpoint (safetensors)")
    ap.add_argument("--losses", help="output JSON lines, one object of step outputs per step")
    ap.add_argument("--x64", action="store_true", help="compute (and write the checkpoint) in float64")
    ap.add_argument("--decisions", metavar="OUT.json",
                    help="write the first step's ReLU decisions nearest their threshold (find_decisions) as JSON")
    ap.add_argument("--flip", metavar="DECISIONS.json",
                    help="take these decisions (a JSON list of --decisions' entries) the other way in every step")
    ap.add_argument("--make-example", metavar="OUTDIR", help="write a random checkpoint and batch(es)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", choices=("normal", "pixels"), default="normal",
                    help="random inputs of --make-example: N(0,1) with per-row contrast U(0.5, 3) (varied teacher "
                         "confidence on small nets), or U(0,1) pixels (tamer for full-size image models)")
    args = ap.parse_args(argv)

    with open(args.spec) as f:
        spec_raw = json.load(f)
    if args.make_example:
        make_example(args.make_example, spec_raw, args.seed, args.steps, images=args.images)
        return 0
    if not (args.checkpoint and args.batches and args.out):
        ap.error("--checkpoint, --batches and --out are required to run steps")
    if args.x64:
        enable_x64()
    dtype = jnp.float64 if args.x64 else jnp.float32
    spec = parse_spec(spec_raw)
    state = read_safetensors(args.checkpoint)
    check_state(spec, state)
    losses = open(args.losses, "w") if args.losses else None

    def on_step(s, outputs):
        if losses:
            losses.write(json.dumps({"step": s, **outputs}) + "\n")

    flips = []
    if args.flip:
        with open(args.flip) as f:
            flips = json.load(f)
    try:
        with flipped_decisions(flips):
            final = replay(spec, state, args.batches, args.steps, dtype, on_step=on_step)
    finally:
        if losses:
            losses.close()
    if args.decisions:
        first = {k: (jnp.asarray(v) if k == "y" else jnp.asarray(v, dtype))
                 for k, v in load_batch(step_dir(args.batches, 0)).items()}
        start = {k: jnp.asarray(v, dtype) for k, v in state.items()}
        after_one = final if args.steps == 1 else replay(spec, state, args.batches, 1, dtype)
        with open(args.decisions, "w") as f:
            json.dump(find_decisions(spec, start, first, after_one), f, indent=1)
    order = list(state_shapes(spec))
    write_safetensors(args.out, {k: np.asarray(final[k]) for k in order})
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
