"""Numpy-only half of the MPL reference: the model spec (schema in mpl_jax.py's docstring), the ABI's state
and input names, a safetensors reader/writer, the replay layout and random examples. Split from mpl_jax.py so
that the PyTorch benchmark peer can use it without importing JAX; mpl_jax re-exports every name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------------------------
# Model spec
# ----------------------------------------------------------------------------------------------------------

_KIND_PREFIX = {
    "dense": "dense", "conv2d": "conv", "maxpool": "maxpool", "avgpool": "avgpool",
    "globalavgpool": "globalavgpool", "flatten": "flatten", "relu": "relu", "leakyrelu": "leakyrelu",
    "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "gelu", "dropout": "dropout", "batchnorm": "bn",
    "residual": "res",
}
_ALIASES = {"maxpool2d": "maxpool", "avgpool2d": "avgpool", "conv": "conv2d", "leaky_relu": "leakyrelu",
            "batch_norm": "batchnorm"}


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of a Sequential, with its input and output feature shapes (no batch dimension)."""
    kind: str                 # canonical kind: dense, conv2d, maxpool, ...
    name: str                 # kind prefix + index in the Sequential: "dense3", "conv0"; inside a residual
                              # block scoped by it: "res3/conv0"
    attrs: tuple              # sorted (key, value) pairs: units, filters, kernel, stride, padding, size, alpha, rate,
                              # momentum, epsilon; a residual's shortcut ("identity", "conv" or "matrix") and stride
    in_shape: tuple
    out_shape: tuple
    body: tuple = ()          # a residual block's layers

    def attr(self, key: str) -> Any:
        return dict(self.attrs)[key]

    @property
    def param_shapes(self) -> dict[str, tuple]:
        """Trained tensors' shapes by suffix, in the ABI order (weight first); a residual block's own tensor is
        its projection shortcut (its body's layers have their own)."""
        if self.kind == "dense":
            return {"weight": (self.in_shape[0], self.attr("units")), "bias": (self.attr("units"),)}
        if self.kind == "conv2d":
            k, f = self.attr("kernel"), self.attr("filters")
            return {"weight": (k, k, self.in_shape[2], f), "bias": (f,)}
        if self.kind == "batchnorm":
            return {"scale": (self.in_shape[-1],), "offset": (self.in_shape[-1],)}
        if self.kind == "residual" and self.attr("shortcut") == "conv":
            return {"shortcut/weight": (1, 1, self.in_shape[2], self.out_shape[2])}
        if self.kind == "residual" and self.attr("shortcut") == "matrix":
            return {"shortcut/weight": (self.in_shape[0], self.out_shape[0])}
        return {}

    @property
    def statistic_shapes(self) -> dict[str, tuple]:
        """BatchNorm's running averages: state that the forward passes update but no optimiser trains."""
        if self.kind == "batchnorm":
            return {"running_mean": (self.in_shape[-1],), "running_var": (self.in_shape[-1],)}
        return {}

    def fan_in(self, suffix: str = "weight") -> int:
        w = self.param_shapes[suffix]
        return int(np.prod(w[:-1]))


@dataclasses.dataclass(frozen=True)
class Optim:
    momentum: float
    nesterov: bool
    weight_decay: float

    @property
    def step_factor(self) -> float:
        """eta_eff / lr: how much of the raw gradient one step applies."""
        return 1.0 + self.momentum if self.nesterov else 1.0


@dataclasses.dataclass(frozen=True)
class Recipe:
    labeled_batch: int
    unlabeled_batch: int
    pseudo_labels: str
    soft_temperature: float
    feedback: str
    uda_temperature: float
    uda_threshold: float
    label_smoothing: float
    teacher: Optim
    student: Optim
    pseudo_label_view: str = "strong"   # the view the teacher labels for the student: "strong" | "weak"


@dataclasses.dataclass(frozen=True)
class Spec:
    input_shape: tuple        # (H, W, C) for images, (D,) for feature vectors
    classes: int
    teacher: tuple            # of Layer
    student: tuple
    recipe: Recipe

    def network(self, net: str) -> tuple:
        return {"teacher": self.teacher, "student": self.student}[net]


def walk(layers: tuple):
    """Every layer, residual blocks' bodies included, in the order of their state tensors (a block's body, then
    the block itself for its shortcut)."""
    for layer in layers:
        yield from walk(layer.body)
        yield layer


def residual_shortcut(in_shape: tuple, out_shape: tuple) -> tuple[str, int]:
    """(kind, stride) of a residual block's shortcut (docs/DSL.md): x itself when the body keeps the shape, else
    a bias-free 1x1 convolution whose stride maps the input's height and width onto the output's, or a matrix."""
    if in_shape == out_shape:
        return "identity", 1
    if len(in_shape) == 1 and len(out_shape) == 1:
        return "matrix", 1
    if len(in_shape) == 3 and len(out_shape) == 3:
        (h, w, _), (oh, ow, _) = in_shape, out_shape
        for s in range(1, max(h, w) + 1):
            if (h - 1) // s + 1 == oh and (w - 1) // s + 1 == ow:
                return "conv", s
    raise ValueError(f"residual body maps {in_shape} to {out_shape}, which no shortcut matches")


def _layer_out_shape(kind: str, a: dict, shape: tuple) -> tuple:
    image = len(shape) == 3
    if kind == "dense":
        if image:
            raise ValueError("dense expects a vector; add flatten or globalavgpool before it")
        return (a["units"],)
    if kind in ("conv2d", "maxpool", "avgpool", "globalavgpool") and not image:
        raise ValueError(f"{kind} expects an image input, got {shape}")
    if kind == "conv2d":
        h, w, _ = shape
        k, s, p = a["kernel"], a["stride"], a["padding"]
        if h + 2 * p < k or w + 2 * p < k:
            raise ValueError("conv2d kernel larger than its padded input")
        return ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, a["filters"])
    if kind in ("maxpool", "avgpool"):
        h, w, c = shape
        k, s = a["size"], a["stride"]
        if k > h or k > w:
            raise ValueError(f"{kind} window larger than its input")
        return ((h - k) // s + 1, (w - k) // s + 1, c)
    if kind == "globalavgpool":
        return (shape[2],)
    if kind == "flatten":
        return (int(np.prod(shape)),)
    return shape


def _parse_layer(raw: dict, index: int, in_shape: tuple, scope: str = "") -> Layer:
    kind = str(raw["layer"]).lower()
    kind = _ALIASES.get(kind, kind)
    if kind not in _KIND_PREFIX:
        raise ValueError(f"unknown layer kind {raw['layer']!r} at index {index}")
    a: dict[str, Any] = {}
    if kind == "dense":
        a["units"] = int(raw["units"])
    elif kind == "conv2d":
        a.update(filters=int(raw["filters"]), kernel=int(raw["kernel"]),
                 stride=int(raw.get("stride", 1)), padding=int(raw.get("padding", 0)))
    elif kind in ("maxpool", "avgpool"):
        a["size"] = int(raw["size"])
        a["stride"] = int(raw.get("stride", a["size"]))
    elif kind == "leakyrelu":
        a["alpha"] = float(raw["alpha"])
    elif kind == "dropout":
        a["rate"] = float(raw["rate"])
    elif kind == "batchnorm":
        a.update(momentum=float(raw.get("momentum", 0.01)), epsilon=float(raw.get("epsilon", 0.001)))
    name = f"{scope}{_KIND_PREFIX[kind]}{index}"
    if kind == "residual":
        body = _parse_layers(raw["body"], in_shape, name + "/")
        if not body:
            raise ValueError(f"residual block {name} has no layers")
        out_shape = body[-1].out_shape
        a["shortcut"], a["stride"] = residual_shortcut(in_shape, out_shape)
        return Layer(kind, name, tuple(sorted(a.items())), in_shape, out_shape, body)
    out_shape = _layer_out_shape(kind, a, in_shape)
    return Layer(kind, name, tuple(sorted(a.items())), in_shape, out_shape)


def _parse_layers(raw_layers: list, input_shape: tuple, scope: str = "") -> tuple:
    layers, shape = [], input_shape
    for i, raw in enumerate(raw_layers):
        layer = _parse_layer(raw, i, shape, scope)
        layers.append(layer)
        shape = layer.out_shape
    return tuple(layers)


def _parse_network(raw_layers: list, input_shape: tuple, classes: int, net: str) -> tuple:
    layers = _parse_layers(raw_layers, input_shape)
    shape = layers[-1].out_shape if layers else input_shape
    if shape != (classes,):
        raise ValueError(f"{net} ends with shape {shape}, expected ({classes},) logits")
    return tuple(layers)


def _parse_optim(raw: dict) -> Optim:
    # mplc's Adam and AdamW (docs/STEP.md) have no reference here yet: refuse rather than run SGD in their place.
    if raw.get("optimizer", "sgd") != "sgd":
        raise ValueError(f"the JAX reference implements SGD only, not {raw['optimizer']!r}")
    return Optim(float(raw.get("momentum", 0.9)), bool(raw.get("nesterov", True)),
                 float(raw.get("weight_decay", 5e-4)))


def parse_spec(raw: dict) -> Spec:
    """Checks and resolves a model spec (the JSON object described at the top of this file)."""
    inp = raw["input"]
    if "features" in inp:
        input_shape = (int(inp["features"]),)
    else:
        input_shape = (int(inp["height"]), int(inp["width"]), int(inp["channels"]))
    classes = int(raw["classes"])
    r = raw["recipe"]
    recipe = Recipe(
        labeled_batch=int(r["labeled_batch"]), unlabeled_batch=int(r["unlabeled_batch"]),
        pseudo_labels=str(r.get("pseudo_labels", "hard-argmax")),
        soft_temperature=float(r.get("soft_temperature", 1.0)),
        feedback=str(r.get("feedback", "dot-product")),
        uda_temperature=float(r.get("uda_temperature", 0.7)), uda_threshold=float(r.get("uda_threshold", 0.6)),
        label_smoothing=float(r.get("label_smoothing", 0.0)),
        teacher=_parse_optim(r.get("teacher", {})), student=_parse_optim(r.get("student", {})),
        pseudo_label_view=str(r.get("pseudo_label_view", "strong")))
    if recipe.pseudo_label_view not in ("strong", "weak"):
        raise ValueError(f"pseudo_label_view must be strong or weak, not {recipe.pseudo_label_view!r}")
    if recipe.pseudo_labels not in ("hard-argmax", "hard-sampled", "soft"):
        raise ValueError(f"pseudo_labels must be hard-argmax, hard-sampled or soft, not {recipe.pseudo_labels!r}")
    if recipe.feedback not in ("dot-product", "loss-difference"):
        raise ValueError(f"feedback must be dot-product or loss-difference, not {recipe.feedback!r}")
    return Spec(input_shape, classes,
                _parse_network(raw["teacher"], input_shape, classes, "teacher"),
                _parse_network(raw["student"], input_shape, classes, "student"), recipe)


def load_spec(path: str) -> Spec:
    with open(path) as f:
        return parse_spec(json.load(f))


def state_shapes(spec: Spec) -> dict[str, tuple]:
    """Every state tensor's name and shape, in the ABI order: trained tensors, their momenta, then BatchNorm's
    running averages."""
    out: dict[str, tuple] = {}
    for prefix, net in (("teacher", "teacher"), ("student", "student"),
                        ("teacher_momentum", "teacher"), ("student_momentum", "student")):
        for layer in walk(spec.network(net)):
            for suffix, shape in layer.param_shapes.items():
                out[f"{prefix}/{layer.name}/{suffix}"] = shape
    for net in ("teacher", "student"):
        for layer in walk(spec.network(net)):
            for suffix, shape in layer.statistic_shapes.items():
                out[f"{net}/{layer.name}/{suffix}"] = shape
    return out


def is_weight(name: str) -> bool:
    """Weight decay applies to weights only (ABI `is_weight`), never to biases or BatchNorm's scale and offset."""
    return name.endswith("/weight")


def is_statistic(name: str) -> bool:
    """BatchNorm's running averages: in the state, but not trained."""
    return name.endswith("/running_mean") or name.endswith("/running_var")


def dropout_inputs(spec: Spec) -> dict[str, tuple]:
    """The dropout mask inputs of mplc_step (ABI names) and their shapes."""
    rl = spec.recipe
    rows = {"teacher": {"all": rl.labeled_batch + 2 * rl.unlabeled_batch},
            "student": {"u": rl.unlabeled_batch, "l": rl.labeled_batch}}
    out = {}
    for net, passes in rows.items():
        for layer in walk(spec.network(net)):
            if layer.kind == "dropout":
                for p, n in passes.items():
                    out[f"dropout/{net}/{p}/{layer.name}"] = (n, int(np.prod(layer.in_shape)))
    return out




OUTPUT_NAMES = ("loss_sup", "loss_uda", "mask_rate", "loss_student_u", "loss_student_l", "h", "g_l_norm", "g_u_norm",
                "cos_g_l_g_u", "h_positive", "teacher_grad_sup_norm", "teacher_grad_uda_norm",
                "teacher_grad_feedback_norm")


# ----------------------------------------------------------------------------------------------------------
# safetensors (own reader/writer) and the replay layout
# ----------------------------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def write_safetensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    """safetensors: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, raw LE data."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, value in tensors.items():
        a = np.asarray(value)
        a = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)
        if a.dtype not in _ST_NAMES:
            raise TypeError(f"{name}: dtype {a.dtype} not supported")
        raw = a.tobytes()
        header[name] = {"dtype": _ST_NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * (-len(hbytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Tensors in file order (the header's key order)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dt = np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[base + begin:base + end], dtype=dt).reshape(tuple(info["shape"])).copy()
    return out


SCALAR_NAMES = ("lr_teacher", "lr_student", "uda_weight", "feedback_scale")


def step_dir(root: str, step: int) -> str:
    return os.path.join(root, f"step_{step:06d}")


def load_batch(directory: str) -> dict[str, np.ndarray]:
    """One step's inputs from the replay layout, keyed by ABI names."""
    batch = {"x": np.load(os.path.join(directory, "x.npy")), "y": np.load(os.path.join(directory, "y.npy"))}
    scalars = np.load(os.path.join(directory, "scalars.npy")).reshape(-1)
    if scalars.shape != (4,):
        raise ValueError("scalars.npy must hold 4 values: lr_teacher, lr_student, uda_weight, feedback_scale")
    batch.update({k: scalars[i] for i, k in enumerate(SCALAR_NAMES)})
    for fname in sorted(os.listdir(directory)):
        if fname == "uniform.npy":
            batch["uniform"] = np.load(os.path.join(directory, fname))
        elif fname.startswith("dropout__") and fname.endswith(".npy"):
            batch[fname[:-4].replace("__", "/")] = np.load(os.path.join(directory, fname))
    return batch


def save_batch(directory: str, batch: dict) -> None:
    os.makedirs(directory, exist_ok=True)
    np.save(os.path.join(directory, "x.npy"), np.asarray(batch["x"], np.float32))
    np.save(os.path.join(directory, "y.npy"), np.asarray(batch["y"]))
    np.save(os.path.join(directory, "scalars.npy"), np.array([batch[k] for k in SCALAR_NAMES], np.float32))
    for name, value in batch.items():
        if name == "uniform":
            np.save(os.path.join(directory, "uniform.npy"), np.asarray(value, np.float32))
        elif name.startswith("dropout/"):
            np.save(os.path.join(directory, name.replace("/", "__") + ".npy"), np.asarray(value, np.float32))


def check_state(spec: Spec, state: dict) -> None:
    want = state_shapes(spec)
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    bad = [k for k in want if k in state and tuple(state[k].shape) != want[k]]
    if missing or extra or bad:
        raise ValueError(f"checkpoint does not match the spec: missing {missing}, unexpected {extra}, "
                         f"wrong shape {[(k, tuple(state[k].shape), want[k]) for k in bad]}")


# ----------------------------------------------------------------------------------------------------------
# Random examples
# ----------------------------------------------------------------------------------------------------------

def random_state(spec: Spec, rng: np.random.Generator, momentum_scale: float = 0.01,
                 bias_scale: float = 0.1) -> dict[str, np.ndarray]:
    """He-uniform weights (bound sqrt(6/fan_in)), U(-bias_scale, bias_scale) biases and BatchNorm offsets,
    BatchNorm scales 1 ± bias_scale, small random momenta, and running averages near (0, 1), so that every
    tensor's path is exercised."""
    state = {}
    for net in ("teacher", "student"):
        for layer in walk(spec.network(net)):
            for suffix, shape in layer.param_shapes.items():
                if suffix.split("/")[-1] == "weight":
                    bound = math.sqrt(6.0 / layer.fan_in(suffix))
                    value = rng.uniform(-bound, bound, shape)
                else:
                    value = rng.uniform(-bias_scale, bias_scale, shape) + (1.0 if suffix == "scale" else 0.0)
                state[f"{net}/{layer.name}/{suffix}"] = value.astype(np.float32)
    for net in ("teacher", "student"):
        for layer in walk(spec.network(net)):
            for suffix, shape in layer.param_shapes.items():
                state[f"{net}_momentum/{layer.name}/{suffix}"] = (
                    rng.uniform(-momentum_scale, momentum_scale, shape).astype(np.float32))
    for net in ("teacher", "student"):
        for layer in walk(spec.network(net)):
            for suffix, shape in layer.statistic_shapes.items():
                value = rng.uniform(-bias_scale, bias_scale, shape) + (1.0 if suffix == "running_var" else 0.0)
                state[f"{net}/{layer.name}/{suffix}"] = value.astype(np.float32)
    return state


def random_images(rng: np.random.Generator, n: int, shape: tuple, kind: str) -> np.ndarray:
    """"normal": N(0, 1) scaled per row by U(0.5, 3) (varied confidence on small test nets);
    "pixels": U(0, 1) values, like images scaled to [0, 1] (for full-size networks)."""
    if kind == "pixels":
        return rng.uniform(0.0, 1.0, (n,) + shape)
    return rng.standard_normal((n,) + shape) * rng.uniform(0.5, 3.0, (n,) + (1,) * len(shape))


def random_batch(spec: Spec, rng: np.random.Generator, scalars: tuple = (0.05, 0.05, 1.0, 1.0),
                 images: str = "normal") -> dict[str, np.ndarray]:
    """Random inputs of one step: images (see random_images), a strong view = weak view + noise, labels,
    scalars, uniform draws and dropout masks as needed."""
    r = spec.recipe
    bl, bu = r.labeled_batch, r.unlabeled_batch
    shape = spec.input_shape if len(spec.input_shape) == 3 else (1, 1, spec.input_shape[0])
    x_l = random_images(rng, bl, shape, images)
    x_uw = random_images(rng, bu, shape, images)
    x_us = x_uw + 0.3 * rng.standard_normal(x_uw.shape)
    if images == "pixels":
        x_us = np.clip(x_us, 0.0, 1.0)
    batch: dict[str, Any] = {
        "x": np.concatenate([x_l, x_uw, x_us]).astype(np.float32),
        "y": rng.integers(0, spec.classes, bl).astype(np.int64),
    }
    batch.update({k: np.float32(v) for k, v in zip(SCALAR_NAMES, scalars)})
    if r.pseudo_labels == "hard-sampled":
        batch["uniform"] = rng.uniform(0, 1, bu).astype(np.float32)
    for name, mshape in dropout_inputs(spec).items():
        rate = _dropout_rate(spec, name)
        keep = rng.uniform(0, 1, mshape) >= rate
        batch[name] = (keep / (1.0 - rate)).astype(np.float32)
    return batch


def _dropout_rate(spec: Spec, mask_name: str) -> float:
    _, net, _, layer_name = mask_name.split("/", 3)
    return next(l.attr("rate") for l in walk(spec.network(net)) if l.name == layer_name)


def make_example(outdir: str, spec_raw: dict, seed: int, steps: int = 1,
                 scalars: tuple = (0.05, 0.05, 1.0, 1.0), images: str = "normal") -> None:
    """OUTDIR/spec.json, OUTDIR/init.safetensors and OUTDIR/step_000000.. with random inputs."""
    spec = parse_spec(spec_raw)
    rng = np.random.default_rng(seed)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "spec.json"), "w") as f:
        json.dump(spec_raw, f, indent=1)
    write_safetensors(os.path.join(outdir, "init.safetensors"), random_state(spec, rng))
    for s in range(steps):
        save_batch(step_dir(outdir, s), random_batch(spec, rng, scalars, images))
