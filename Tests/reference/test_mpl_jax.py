"""Self-tests of the JAX reference (mpl_jax.py), in float64: the soft-label meta-gradient against finite
differences of the unrolled student update, the hard-label feedback against the loss difference, the layers
against naive numpy loops, and the safetensors reader/writer.

Run: python3 -m pytest Tests/reference -q
"""

import functools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpl_jax as M  # noqa: E402

M.enable_x64()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# A small model that uses every layer kind: conv (stride 1 and 2, with and without padding), both pools,
# global pooling, flatten, dense, every activation and dropout in both networks.
SPEC_RAW = {
    "input": {"height": 8, "width": 8, "channels": 2},
    "classes": 5,
    "teacher": [
        {"layer": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": 1}, {"layer": "relu"},
        {"layer": "maxpool", "size": 2},
        {"layer": "conv2d", "filters": 6, "kernel": 3, "stride": 2, "padding": 0}, {"layer": "leakyrelu", "alpha": 0.1},
        {"layer": "flatten"}, {"layer": "dense", "units": 12}, {"layer": "tanh"}, {"layer": "dropout", "rate": 0.25},
        {"layer": "dense", "units": 5},
    ],
    "student": [
        {"layer": "conv2d", "filters": 3, "kernel": 3, "padding": 1}, {"layer": "sigmoid"},
        {"layer": "avgpool", "size": 2}, {"layer": "dropout", "rate": 0.2}, {"layer": "globalavgpool"},
        {"layer": "dense", "units": 7}, {"layer": "relu"}, {"layer": "gelu"}, {"layer": "dense", "units": 5},
    ],
    "recipe": {
        "labeled_batch": 4, "unlabeled_batch": 8, "pseudo_labels": "soft", "soft_temperature": 0.8,
        "feedback": "dot-product", "uda_temperature": 0.7, "uda_threshold": 0.4, "label_smoothing": 0.1,
        "teacher": {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        "student": {"momentum": 0.8, "nesterov": True, "weight_decay": 1e-3},
    },
}


# BatchNorm and residual blocks of every shortcut kind (a strided 1x1 projection, identity, a matrix), a dropout
# inside a block (mask named dropout/teacher/all/res4/dropout3) and a BatchNorm on vectors.
SPEC_BN_RAW = {
    "input": {"height": 8, "width": 8, "channels": 2},
    "classes": 5,
    "teacher": [
        {"layer": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": 1},
        {"layer": "batchnorm"}, {"layer": "leakyrelu", "alpha": 0.1},
        {"layer": "residual", "body": [
            {"layer": "conv2d", "filters": 6, "kernel": 3, "stride": 2, "padding": 1},
            {"layer": "batchnorm", "momentum": 0.1, "epsilon": 1e-3}, {"layer": "relu"},
            {"layer": "conv2d", "filters": 6, "kernel": 3, "stride": 1, "padding": 1}]},
        {"layer": "residual", "body": [
            {"layer": "batchnorm"}, {"layer": "relu"},
            {"layer": "conv2d", "filters": 6, "kernel": 3, "stride": 1, "padding": 1},
            {"layer": "dropout", "rate": 0.25}]},
        {"layer": "globalavgpool"},
        {"layer": "residual", "body": [{"layer": "dense", "units": 7}, {"layer": "batchnorm"}, {"layer": "tanh"}]},
        {"layer": "dense", "units": 5},
    ],
    "student": [
        {"layer": "conv2d", "filters": 3, "kernel": 3, "padding": 1}, {"layer": "batchnorm", "momentum": 0.2},
        {"layer": "relu"},
        {"layer": "residual", "body": [{"layer": "conv2d", "filters": 3, "kernel": 3, "padding": 1}]},
        {"layer": "globalavgpool"}, {"layer": "dense", "units": 5},
    ],
    "recipe": SPEC_RAW["recipe"],
}


def spec_with(base=SPEC_RAW, **recipe):
    raw = json.loads(json.dumps(base))
    for k, v in recipe.items():
        raw["recipe"][k] = v
    return raw


def example(raw, seed=0, scalars=(0.3, 0.4, 0.7, 1.0)):
    spec = M.parse_spec(raw)
    rng = np.random.default_rng(seed)
    state = {k: jnp.asarray(v, jnp.float64) for k, v in M.random_state(spec, rng).items()}
    batch = M.random_batch(spec, rng, scalars)
    batch = {k: (jnp.asarray(v) if k == "y" else jnp.asarray(v, jnp.float64)) for k, v in batch.items()}
    return spec, state, batch


@functools.lru_cache(maxsize=None)
def jitted_step(spec):
    return jax.jit(functools.partial(M.mpl_step, spec=spec))


def step(spec, state, batch, **scalars):
    b = dict(batch)
    b.update({k: jnp.asarray(v, jnp.float64) for k, v in scalars.items()})
    return jitted_step(spec)(state, b)


def rel(a, b):
    return float(jnp.abs(a - b) / jnp.maximum(jnp.abs(b), 1e-300))


def tree_rel(a: dict, b: dict):
    num = sum(float(jnp.sum((a[k] - b[k]) ** 2)) for k in b)
    den = sum(float(jnp.sum(b[k] ** 2)) for k in b)
    return (num / den) ** 0.5


def teacher_gradient_from_step(spec, state, batch, lr_teacher, **scalars):
    """g_T read back from the step's teacher update: d = (1+mu) g + mu^2 v (Nesterov), so the difference of two
    runs that differ only in g_T is -lr (1+mu) (g1 - g0)."""
    new, out = step(spec, state, batch, lr_teacher=lr_teacher, **scalars)
    tp, _, _, _ = M.split_state(state)
    ntp, _, _, _ = M.split_state(new)
    return ntp, out


# ---------------------------------------------------------------------------------------------------------
# (a) soft labels: the exact meta-gradient
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["strong", "weak"])
@pytest.mark.parametrize("seed", [0, 1])
def test_soft_meta_gradient_matches_finite_differences(seed, view):
    """Also with the soft labels of the weak view (pseudo_label_view "weak"), which the student learns on x_us."""
    spec, state, batch = example(spec_with(pseudo_label_view=view), seed)
    tp, sp, tm, sm = M.split_state(state)
    c = M.make_context(spec, batch)
    opt = spec.recipe.teacher
    lr_t = 1.0

    # The step's feedback term, isolated: runs with feedback_scale 1 and 0 differ only by f * meta-gradient.
    with_f, out = teacher_gradient_from_step(spec, state, batch, lr_t, feedback_scale=1.0)
    without_f, _ = teacher_gradient_from_step(spec, state, batch, lr_t, feedback_scale=0.0)
    meta = {k: (without_f[k] - with_f[k]) / (lr_t * opt.step_factor) for k in tp}

    # docs/STEP.md's form: -eta_eff * grad F (VJP of a JVP) must be the same vector.
    new_sp = M.split_state(step(spec, state, batch)[0])[1]
    g_l = jax.jit(jax.grad(lambda s: M._student_loss_l(c, s)))(new_sp)
    jvp_form = jax.jit(lambda t: M.soft_feedback_gradient_jvp(c, t, sp, g_l))(tp)
    assert tree_rel(jvp_form, meta) < 1e-10

    unrolled = jax.jit(lambda t: M.unrolled_student_labeled_loss(c, t, sp, sm))
    assert abs(float(unrolled(tp)) - out["loss_student_l"]) < 1e-12

    rng = np.random.default_rng(100 + seed)
    eps = 1e-6
    errors = []
    for _ in range(4):
        d = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in tp.items()}
        plus = unrolled({k: tp[k] + eps * d[k] for k in tp})
        minus = unrolled({k: tp[k] - eps * d[k] for k in tp})
        fd = (plus - minus) / (2 * eps)
        ad = M.tree_vdot(meta, d)
        errors.append(rel(ad, fd))
    print(f"\nsoft meta-gradient ({view} view) vs central FD (seed {seed}): relative errors "
          + ", ".join(f"{e:.2e}" for e in errors) + f"; |JVP form - unrolled| rel {tree_rel(jvp_form, meta):.1e}")
    assert max(errors) <= 1e-6


def test_soft_meta_gradient_sign_descends_student_loss():
    """A small teacher step along the feedback term alone lowers loss_student_l(theta'_S(theta_T))."""
    spec, state, batch = example(SPEC_RAW, 3)
    tp, sp, tm, sm = M.split_state(state)
    c = M.make_context(spec, batch)
    loss = jax.jit(lambda t: M.unrolled_student_labeled_loss(c, t, sp, sm))
    meta = jax.jit(jax.grad(lambda t: M.unrolled_student_labeled_loss(c, t, sp, sm)))(tp)
    before, after = loss(tp), loss({k: tp[k] - 1e-2 * meta[k] for k in tp})
    assert after < before


# ---------------------------------------------------------------------------------------------------------
# (b) hard labels: h
# ---------------------------------------------------------------------------------------------------------

def test_hard_dot_product_h_matches_loss_difference(pseudo="hard-argmax"):
    """h = eta_eff <g_l, g_u> is the first-order Taylor value of old - new; with no weight decay and zero
    momentum the update is exactly -eta_eff g_u, so the two agree up to O(lr^2)."""
    no_wd = {"momentum": 0.9, "nesterov": True, "weight_decay": 0.0}
    results = {}
    for feedback in ("dot-product", "loss-difference"):
        raw = spec_with(pseudo_labels=pseudo, feedback=feedback, student=no_wd)
        spec, state, batch = example(raw, 5)
        state = {k: (jnp.zeros_like(v) if k.startswith("student_momentum/") else v) for k, v in state.items()}
        for lr in (1e-3, 1e-4):
            _, out = step(spec, state, batch, lr_student=lr)
            results[feedback, lr] = float(out["h"])
    for lr in (1e-3, 1e-4):
        dot, diff = results["dot-product", lr], results["loss-difference", lr]
        print(f"\n{pseudo} lr_student={lr:g}: h dot-product {dot:.6e}, old-new {diff:.6e}, rel {abs(dot - diff) / abs(diff):.2e}")
        assert np.sign(dot) == np.sign(diff) != 0
        assert abs(dot - diff) <= 2e-2 * abs(diff)
    # second-order remainder: the relative gap shrinks about 10x when lr does
    gap = lambda lr: abs(results["dot-product", lr] / results["loss-difference", lr] - 1)
    assert gap(1e-4) < 0.2 * gap(1e-3)


@pytest.mark.parametrize("base, view", [("plain", "strong"), ("batchnorm", "strong"), ("plain", "weak")])
def test_hard_teacher_gradient_matches_finite_differences(base, view):
    """With hard labels g_T = grad(loss_sup + lambda loss_uda + f h CE(yhat, z_us)), h, yhat, q and the mask
    constant: checked against FD of that objective written out independently from the step's pieces (with
    BatchNorm: through the batch statistics of the teacher's pass over all rows). With the weak view, yhat and the
    CE term are of z_uw."""
    raw = spec_with({"plain": SPEC_RAW, "batchnorm": SPEC_BN_RAW}[base], pseudo_labels="hard-argmax",
                    feedback="dot-product", uda_threshold=0.6, pseudo_label_view=view)
    spec, state, batch = example(raw, 7, scalars=(0.3, 0.4, 0.7, 1.0))
    tp, sp, tm, sm = M.split_state(state)
    c = M.make_context(spec, batch)
    opt = spec.recipe.teacher
    lam, f, lr_t = 0.7, 2.5, 1.0
    new_a, out = teacher_gradient_from_step(spec, state, batch, lr_t, uda_weight=lam, feedback_scale=f)
    new_b, _ = teacher_gradient_from_step(spec, state, batch, lr_t, uda_weight=0.0, feedback_scale=0.0)
    # new_b uses g_T of loss_sup alone; the difference isolates lambda*uda + f*h*CE
    g_extra = {k: (new_b[k] - new_a[k]) / (lr_t * opt.step_factor) for k in tp}

    z_l, z_uw, z_us = M._teacher_logits(c, tp)
    q = jax.nn.softmax(z_uw / spec.recipe.uda_temperature, axis=-1)
    m = (jnp.max(q, axis=-1) >= spec.recipe.uda_threshold).astype(jnp.float64)
    labeled = 1 if view == "weak" else 2       # which of (z_l, z_uw, z_us) the labels come from
    yhat = jax.nn.one_hot(jnp.argmax((z_l, z_uw, z_us)[labeled], axis=-1), spec.classes, dtype=jnp.float64)
    if view == "weak":
        assert not jnp.array_equal(yhat, jax.nn.one_hot(jnp.argmax(z_us, axis=-1), spec.classes)), \
            "the views' labels should differ for this test to tell them apart"
    h = out["h"]
    assert 0 < float(jnp.mean(m)) < 1, "the UDA mask should be mixed for this test to mean something"

    def extra(t):
        z = M._teacher_logits(c, t)
        ls = jax.nn.log_softmax(z[2], axis=-1)
        uda = jnp.mean(m * -jnp.sum(q * ls, axis=-1))
        ce = -jnp.mean(jnp.sum(yhat * jax.nn.log_softmax(z[labeled], axis=-1), axis=-1))
        return lam * uda + f * h * ce

    extra = jax.jit(extra)
    rng = np.random.default_rng(8)
    eps = 1e-6
    for _ in range(3):
        d = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in tp.items()}
        fd = (extra({k: tp[k] + eps * d[k] for k in tp}) - extra({k: tp[k] - eps * d[k] for k in tp})) / (2 * eps)
        assert rel(M.tree_vdot(g_extra, d), fd) < 1e-6


@pytest.mark.parametrize("pseudo", ["hard-argmax", "soft"])
def test_teacher_gradient_parts(pseudo):
    """teacher_grad_*_norm are the norms of the parts of g_T: the supervised part against jax.grad of loss_sup
    alone, the UDA and feedback parts against the updates that switching on the UDA weight and the feedback
    scale add to the step's teacher."""
    raw = spec_with(pseudo_labels=pseudo, feedback="dot-product", uda_threshold=0.6)
    spec, state, batch = example(raw, 7, scalars=(0.3, 0.4, 0.7, 1.0))
    tp = M.split_state(state)[0]
    c = M.make_context(spec, batch)
    lam, f, lr_t = 0.7, 2.5, 1.0
    factor = lr_t * spec.recipe.teacher.step_factor
    full, out = teacher_gradient_from_step(spec, state, batch, lr_t, uda_weight=lam, feedback_scale=f)
    no_feedback, _ = teacher_gradient_from_step(spec, state, batch, lr_t, uda_weight=lam, feedback_scale=0.0)
    alone, _ = teacher_gradient_from_step(spec, state, batch, lr_t, uda_weight=0.0, feedback_scale=0.0)
    norm = lambda g: float(jnp.sqrt(M.tree_vdot(g, g)))
    uda = {k: (alone[k] - no_feedback[k]) / factor for k in tp}
    feedback = {k: (no_feedback[k] - full[k]) / factor for k in tp}
    sup = jax.grad(lambda t: M._teacher_losses(c, *M._teacher_logits(c, t))[0])(tp)
    for name, part in [("sup", sup), ("uda", uda), ("feedback", feedback)]:
        assert norm(part) > 1e-8, name
        assert rel(float(out[f"teacher_grad_{name}_norm"]), norm(part)) < 1e-6, name


def test_hard_sampled_labels_follow_the_inverse_cdf():
    z = jnp.asarray(np.random.default_rng(0).standard_normal((50, 4)))
    u = jnp.asarray(np.concatenate([np.random.default_rng(1).uniform(size=49), [1.0]]))
    got = np.argmax(np.asarray(M.hard_pseudo_labels(z, "hard-sampled", u)), axis=-1)
    p = np.exp(np.asarray(z)) / np.exp(np.asarray(z)).sum(-1, keepdims=True)
    for i in range(50):
        cdf = np.cumsum(p[i])
        want = next((k for k in range(4) if cdf[k] > u[i]), 3)
        assert got[i] == want
    ties = jnp.asarray([[1.0, 3.0, 3.0, 0.0]])
    assert int(jnp.argmax(M.hard_pseudo_labels(ties, "hard-argmax"))) == 1


# ---------------------------------------------------------------------------------------------------------
# (c) layers against naive numpy
# ---------------------------------------------------------------------------------------------------------

def np_conv2d(x, w, b, stride, pad):
    n, h, wd, cin = x.shape
    k, _, _, cout = w.shape
    xp = np.zeros((n, h + 2 * pad, wd + 2 * pad, cin))
    xp[:, pad:pad + h, pad:pad + wd, :] = x
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(n):
        for r in range(oh):
            for s in range(ow):
                for o in range(cout):
                    acc = b[o]
                    for dy in range(k):
                        for dx in range(k):
                            for ci in range(cin):
                                acc += xp[i, r * stride + dy, s * stride + dx, ci] * w[dy, dx, ci, o]
                    out[i, r, s, o] = acc
    return out


def np_pool(x, k, stride, reduce):
    n, h, w, c = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, oh, ow, c))
    for r in range(oh):
        for s in range(ow):
            out[:, r, s, :] = reduce(x[:, r * stride:r * stride + k, s * stride:s * stride + k, :], axis=(1, 2))
    return out


def np_dense(x, w, b):
    out = np.zeros((x.shape[0], w.shape[1]))
    for i in range(x.shape[0]):
        for o in range(w.shape[1]):
            out[i, o] = b[o] + sum(x[i, j] * w[j, o] for j in range(w.shape[0]))
    return out


def np_flatten(x):
    n = x.shape[0]
    out = np.zeros((n, int(np.prod(x.shape[1:]))))
    for i in range(n):
        j = 0
        for r in range(x.shape[1]):
            for s in range(x.shape[2]):
                for ch in range(x.shape[3]):
                    out[i, j] = x[i, r, s, ch]
                    j += 1
    return out


def np_forward(layers, params, x, masks, stats=None):
    """stats, if a dict, receives each BatchNorm's (batch mean, unbiased batch variance)."""
    for layer in layers:
        k, a = layer.kind, dict(layer.attrs)
        if k == "dense":
            x = np_dense(x, params[layer.name + "/weight"], params[layer.name + "/bias"])
        elif k == "conv2d":
            x = np_conv2d(x, params[layer.name + "/weight"], params[layer.name + "/bias"], a["stride"], a["padding"])
        elif k == "maxpool":
            x = np_pool(x, a["size"], a["stride"], np.max)
        elif k == "avgpool":
            x = np_pool(x, a["size"], a["stride"], np.mean)
        elif k == "globalavgpool":
            x = x.mean(axis=(1, 2))
        elif k == "flatten":
            x = np_flatten(x)
        elif k == "relu":
            x = np.maximum(x, 0)
        elif k == "leakyrelu":
            x = np.where(x > 0, x, a["alpha"] * x)
        elif k == "tanh":
            x = np.tanh(x)
        elif k == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif k == "gelu":
            x = x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        elif k == "dropout" and layer.name in masks:
            x = x * masks[layer.name].reshape(x.shape)
        elif k == "batchnorm":
            rows = x.reshape(-1, x.shape[-1])
            mean = rows.sum(axis=0) / len(rows)
            var = ((rows - mean) ** 2).sum(axis=0) / len(rows)
            if stats is not None:
                stats[layer.name] = (mean, var * len(rows) / (len(rows) - 1))
            x = (x - mean) / np.sqrt(var + a["epsilon"]) * params[layer.name + "/scale"] + params[layer.name + "/offset"]
        elif k == "residual":
            body = np_forward(layer.body, params, x, masks, stats)
            if a["shortcut"] == "conv":
                w = params[layer.name + "/shortcut/weight"]
                x = np_conv2d(x, w, np.zeros(w.shape[-1]), a["stride"], 0)
            elif a["shortcut"] == "matrix":
                x = x @ params[layer.name + "/shortcut/weight"]
            x = body + x
    return x


def test_layers_match_naive_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal(4)
    for stride, pad in ((1, 1), (2, 0), (2, 1)):
        got = np.asarray(M.conv2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride, pad))
        np.testing.assert_allclose(got, np_conv2d(x, w, b, stride, pad), rtol=1e-12, atol=1e-12)
    for k, s in ((2, 2), (3, 1), (3, 2)):
        np.testing.assert_allclose(np.asarray(M.max_pool(jnp.asarray(x), k, s)), np_pool(x, k, s, np.max), atol=1e-14)
        np.testing.assert_allclose(np.asarray(M.avg_pool(jnp.asarray(x), k, s)), np_pool(x, k, s, np.mean), atol=1e-14)
    xd, wd, bd = rng.standard_normal((3, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    np.testing.assert_allclose(np.asarray(M.dense(jnp.asarray(xd), jnp.asarray(wd), jnp.asarray(bd))),
                               np_dense(xd, wd, bd), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("net", ["teacher", "student"])
def test_networks_match_naive_numpy(net):
    spec, state, batch = example(SPEC_RAW, 2)
    tp, sp, _, _ = M.split_state(state)
    params = tp if net == "teacher" else sp
    c = M.make_context(spec, batch)
    masks = c.masks_t if net == "teacher" else c.masks_u
    x = c.x if net == "teacher" else c.x_us
    got = np.asarray(M.forward(spec.network(net), params, x, masks))
    want = np_forward(spec.network(net), {k: np.asarray(v) for k, v in params.items()}, np.asarray(x),
                      {k: np.asarray(v) for k, v in masks.items()})
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)


def test_batchnorm_and_residual_state_names():
    """The ABI's names, shapes and order (docs/ABI.md): trained tensors (a block's body before its projection),
    momenta, then the running averages; scale, offset and the averages have no weight decay."""
    names = M.state_shapes(M.parse_spec(SPEC_BN_RAW))
    teacher = [k for k in names if k.startswith("teacher/")]
    assert teacher[:8] == ["teacher/conv0/weight", "teacher/conv0/bias", "teacher/bn1/scale", "teacher/bn1/offset",
                           "teacher/res3/conv0/weight", "teacher/res3/conv0/bias", "teacher/res3/bn1/scale",
                           "teacher/res3/bn1/offset"]
    assert names["teacher/res3/shortcut/weight"] == (1, 1, 4, 6)
    assert names["teacher/res6/shortcut/weight"] == (6, 7)
    assert "teacher/res4/shortcut/weight" not in names                      # identity shortcut
    assert list(names)[-2:] == ["student/bn1/running_mean", "student/bn1/running_var"]
    assert list(names).index("student_momentum/dense5/bias") < list(names).index("teacher/bn1/running_mean")
    assert [k for k in M.dropout_inputs(M.parse_spec(SPEC_BN_RAW))] == [
        "dropout/teacher/all/res4/dropout3"]
    assert not any(M.is_weight(k) for k in names if "/bn" in k)


@pytest.mark.parametrize("net", ["teacher", "student"])
def test_batchnorm_and_residual_networks_match_naive_numpy(net):
    """Training-mode BatchNorm (batch mean, biased variance; the unbiased variance for the averages), residual
    blocks with each kind of shortcut, and a dropout mask inside a block, against numpy."""
    spec, state, batch = example(SPEC_BN_RAW, 2)
    tp, sp, _, _ = M.split_state(state)
    params = tp if net == "teacher" else sp
    c = M.make_context(spec, batch)
    masks = c.masks_t if net == "teacher" else c.masks_u
    assert net == "student" or "res4/dropout3" in masks
    x = c.x if net == "teacher" else c.x_us
    got_stats, want_stats = {}, {}
    got = np.asarray(M.forward(spec.network(net), params, x, masks, got_stats))
    want = np_forward(spec.network(net), {k: np.asarray(v) for k, v in params.items()}, np.asarray(x),
                      {k: np.asarray(v) for k, v in masks.items()}, want_stats)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)
    assert set(got_stats) == set(want_stats) == {l.name for l in M.walk(spec.network(net)) if l.kind == "batchnorm"}
    for name, (mean, var) in want_stats.items():
        np.testing.assert_allclose(np.asarray(got_stats[name][0]), mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got_stats[name][1]), var, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pseudo", ["hard-argmax", "soft"])
def test_batchnorm_running_averages_move_once_per_network(pseudo):
    """docs/STEP.md: the teacher's averages move towards the statistics of its pass over all B_l + 2 B_u rows, the
    student's towards those of its pass over x_us with theta_S (step 5), not of the x_l pass (step 7)."""
    spec, state, batch = example(spec_with(SPEC_BN_RAW, pseudo_labels=pseudo), 3)
    c = M.make_context(spec, batch)
    tp, sp, _, _ = M.split_state(state)
    new, _ = step(spec, state, batch)
    numpy = lambda d: {k: np.asarray(v) for k, v in d.items()}
    for net, params, x, masks in (("teacher", tp, c.x, c.masks_t), ("student", sp, c.x_us, c.masks_u)):
        stats = {}
        np_forward(spec.network(net), numpy(params), np.asarray(x), numpy(masks), stats)
        for layer in M.walk(spec.network(net)):
            if layer.kind != "batchnorm":
                continue
            m = layer.attr("momentum")
            for suffix, stat in zip(("running_mean", "running_var"), stats[layer.name]):
                key = f"{net}/{layer.name}/{suffix}"
                want = (1 - m) * np.asarray(state[key]) + m * stat
                np.testing.assert_allclose(np.asarray(new[key]), want, rtol=1e-10, atol=1e-12, err_msg=key)


def test_losses_match_numpy():
    spec, state, batch = example(SPEC_RAW, 4)
    tp, _, _, _ = M.split_state(state)
    c = M.make_context(spec, batch)
    z_l, z_uw, z_us = (np.asarray(z) for z in M._teacher_logits(c, tp))
    sup, uda, rate = (float(v) for v in M._teacher_losses(c, *M._teacher_logits(c, tp)))
    lsm = lambda z: z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
    y = np.asarray(c.y)
    eps, k = spec.recipe.label_smoothing, spec.classes
    assert abs(sup - np.mean(-np.sum(((1 - eps) * y + eps / k) * lsm(z_l), -1))) < 1e-12
    q = np.exp(lsm(z_uw / spec.recipe.uda_temperature))
    m = q.max(-1) >= spec.recipe.uda_threshold
    assert abs(rate - m.mean()) < 1e-15
    assert abs(uda - np.sum(m * -np.sum(q * lsm(z_us), -1)) / len(m)) < 1e-12


def test_student_update_rule():
    """Nesterov and heavy ball, weight decay on weights only."""
    p = {"dense0/weight": jnp.asarray([1.0, -2.0]), "dense0/bias": jnp.asarray([0.5])}
    v = {"dense0/weight": jnp.asarray([0.1, 0.2]), "dense0/bias": jnp.asarray([-0.3])}
    g = {"dense0/weight": jnp.asarray([0.01, 0.02]), "dense0/bias": jnp.asarray([0.04])}
    for nesterov in (True, False):
        opt = M.Optim(momentum=0.9, nesterov=nesterov, weight_decay=0.1)
        new_p, new_v = M.sgd_update(p, v, g, 0.5, opt)
        gw = np.array([0.01, 0.02]) + 0.1 * np.array([1.0, -2.0])
        vw = 0.9 * np.array([0.1, 0.2]) + gw
        vb = 0.9 * -0.3 + 0.04
        dw = gw + 0.9 * vw if nesterov else vw
        db = 0.04 + 0.9 * vb if nesterov else vb
        np.testing.assert_allclose(new_v["dense0/weight"], vw, rtol=1e-14)
        np.testing.assert_allclose(new_v["dense0/bias"], [vb], rtol=1e-14)
        np.testing.assert_allclose(new_p["dense0/weight"], np.array([1.0, -2.0]) - 0.5 * dw, rtol=1e-14)
        np.testing.assert_allclose(new_p["dense0/bias"], [0.5 - 0.5 * db], rtol=1e-14)


# ---------------------------------------------------------------------------------------------------------
# (d) safetensors, the replay layout and the CLI
# ---------------------------------------------------------------------------------------------------------

def test_safetensors_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "teacher/conv0/weight": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
        "teacher/conv0/bias": rng.standard_normal(4).astype(np.float32),
        "x64": rng.standard_normal((2, 5)),
        "scalar": np.float32(1.5),
        "labels": rng.integers(0, 10, 7).astype(np.int64),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "bytes": np.arange(5, dtype=np.uint8),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "t.safetensors"
    M.write_safetensors(str(path), tensors, metadata={"format": "mplc"})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"] == {"format": "mplc"}
    assert header["teacher/conv0/weight"] == {"dtype": "F32", "shape": [3, 3, 2, 4], "data_offsets": [0, 288]}
    back = M.read_safetensors(str(path))
    assert list(back) == list(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == np.asarray(v).dtype and back[k].shape == np.asarray(v).shape
        np.testing.assert_array_equal(back[k], v)
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return
    for k, v in load_file(str(path)).items():
        np.testing.assert_array_equal(v, tensors[k])


def test_cli_replay_float64_and_float32(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec_with(pseudo_labels="hard-sampled")))
    ex = tmp_path / "ex"
    script = os.path.join(HERE, "mpl_jax.py")
    assert M._main(["--make-example", str(ex), "--spec", str(spec_path), "--seed", "3", "--steps", "2"]) == 0
    assert sorted(os.listdir(ex / "step_000000")) == [
        "dropout__student__l__dropout3.npy", "dropout__student__u__dropout3.npy",
        "dropout__teacher__all__dropout8.npy", "scalars.npy", "uniform.npy", "x.npy", "y.npy"]
    outs = {}
    for tag, extra in (("f64", ["--x64"]), ("f32", [])):
        out, losses = tmp_path / f"{tag}.safetensors", tmp_path / f"{tag}.jsonl"
        args = ["--spec", str(spec_path), "--checkpoint", str(ex / "init.safetensors"), "--batches", str(ex),
                "--steps", "2", "--out", str(out), "--losses", str(losses)] + extra
        if tag == "f64":    # the real command line once; float32 in-process (x64 mode leaves float32 state alone)
            subprocess.run([sys.executable, script] + args, check=True)
        else:
            assert M._main(args) == 0
        lines = [json.loads(l) for l in losses.read_text().splitlines()]
        assert [l["step"] for l in lines] == [0, 1]
        assert set(lines[0]) == {"step", *M.OUTPUT_NAMES}
        outs[tag] = (M.read_safetensors(str(out)), lines)
    spec = M.parse_spec(json.loads(spec_path.read_text()))
    assert list(outs["f64"][0]) == list(M.state_shapes(spec))
    assert outs["f64"][0]["teacher/conv0/weight"].dtype == np.float64
    assert outs["f32"][0]["teacher/conv0/weight"].dtype == np.float32
    for k, v in outs["f64"][0].items():
        np.testing.assert_allclose(outs["f32"][0][k], v, rtol=1e-4, atol=1e-5)
    for a, b in zip(outs["f32"][1], outs["f64"][1]):
        for k in M.OUTPUT_NAMES:
            assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(b[k]))


def test_spec_errors_are_reported():
    bad = spec_with()
    bad["student"] = [{"layer": "dense", "units": 5}]
    with pytest.raises(ValueError, match="dense expects a vector"):
        M.parse_spec(bad)
    bad = spec_with(pseudo_labels="hard")
    with pytest.raises(ValueError, match="pseudo_labels"):
        M.parse_spec(bad)
    with pytest.raises(ValueError, match="pseudo_label_view must be strong or weak"):
        M.parse_spec(spec_with(pseudo_label_view="both"))


def test_near_threshold_decision_is_found_and_flipped(tmp_path):
    """find_decisions lists a ReLU pre-activation planted at 1e-12, nearest first; taking it the other way
    (flipped_decisions, --flip) changes the teacher's gradient only in that unit's column, by that row's term:
    the one-decision difference the benchmark's check allows mplc (Benchmarks/bench.py, check)."""
    raw = json.loads(json.dumps(SPEC_RAW))
    raw["teacher"] = [{"layer": "flatten"}, {"layer": "dense", "units": 8}, {"layer": "relu"},
                      {"layer": "dense", "units": 5}]
    spec, state, batch = example(raw, seed=4)
    c = M.make_context(spec, batch)
    x = np.asarray(c.x).reshape(c.x.shape[0], -1)
    z = x @ np.asarray(state["teacher/dense1/weight"]) + np.asarray(state["teacher/dense1/bias"])
    row, unit = 2, 5
    bias = np.asarray(state["teacher/dense1/bias"]).copy()
    bias[unit] += 1e-12 - z[row, unit]
    state = dict(state, **{"teacher/dense1/bias": jnp.asarray(bias)})

    plain = jax.jit(functools.partial(M.mpl_step, spec=spec))(state, batch)[0]
    found = M.find_decisions(spec, state, batch, plain)
    assert found, "the planted decision was not found"
    assert (found[0]["pass"], found[0]["layer"], found[0]["index"]) == ("teacher", "relu2", [row, unit])
    assert abs(found[0]["z"] - 1e-12) < 1e-13
    assert all(d["relative"] < 1e-6 for d in found) and found == sorted(found, key=lambda d: d["relative"])

    with M.flipped_decisions(found[:1]):
        flipped = jax.jit(functools.partial(M.mpl_step, spec=spec))(state, batch)[0]
    again = jax.jit(functools.partial(M.mpl_step, spec=spec))(state, batch)[0]   # outside: no flip
    np.testing.assert_array_equal(np.asarray(again["teacher/dense1/weight"]), np.asarray(plain["teacher/dense1/weight"]))
    diff = np.asarray(flipped["teacher/dense1/weight"]) - np.asarray(plain["teacher/dense1/weight"])
    others = np.delete(diff, unit, axis=1)
    assert np.abs(diff[:, unit]).max() > 1e-6, "flipping the decision did not change its unit's gradient"
    assert np.abs(others).max() < 1e-12 * max(1.0, np.abs(np.asarray(plain["teacher/dense1/weight"])).max())
    np.testing.assert_allclose(np.asarray(flipped["teacher/dense3/weight"]), np.asarray(plain["teacher/dense3/weight"]),
                               rtol=0, atol=1e-10)

    # The command line: --decisions writes the list, --flip takes it back.
    ex = tmp_path / "ex"
    M.write_safetensors(str(tmp_path / "init.safetensors"), {k: np.asarray(v) for k, v in state.items()})
    M.save_batch(str(ex / "step_000000"), {k: np.asarray(v) for k, v in batch.items()})
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    common = ["--spec", str(tmp_path / "spec.json"), "--checkpoint", str(tmp_path / "init.safetensors"),
              "--batches", str(ex), "--steps", "1", "--x64"]
    assert M._main(common + ["--out", str(tmp_path / "plain.safetensors"), "--decisions", str(tmp_path / "d.json")]) == 0
    listed = json.loads((tmp_path / "d.json").read_text())
    assert listed[0]["index"] == [row, unit]
    (tmp_path / "flip.json").write_text(json.dumps(listed[:1]))
    assert M._main(common + ["--out", str(tmp_path / "flip.safetensors"), "--flip", str(tmp_path / "flip.json")]) == 0
    np.testing.assert_allclose(M.read_safetensors(str(tmp_path / "flip.safetensors"))["teacher/dense1/weight"],
                               np.asarray(flipped["teacher/dense1/weight"]), rtol=0, atol=1e-12)
