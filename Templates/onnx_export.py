#!/usr/bin/env python3
"""The ONNX model of an exported student (docs/EXPORT.md), for `mplc export --format onnx`.

usage: onnx_export.py DESCRIPTION_DIR OUTPUT.onnx

DESCRIPTION_DIR holds what mplc wrote: model.json (the layer list, see Sources/MPLStep/InferenceDescription.swift,
and the tensors' names, shapes and offsets) and weights.f32 (the folded weights, raw little-endian float32). The
graph takes `images` as mplc does, channels last, [N, H, W, C] float32 (or [N, D] for a Features model), with a
dynamic N, and gives `logits` [N, classes]. Inside, images are NCHW for ONNX's Conv and pooling: one Transpose at
the input, and Flatten transposes back to NHWC first, so that it flattens in mplc's order. Convolution weights go
from mplc's HWIO to ONNX's OIHW. Errors go to stderr as `error: ...` with exit status 1.
"""
import json
import os
import sys

OPSET = 17


def fail(message):
    sys.stderr.write("error: " + message + "\n")
    sys.exit(1)


try:
    import numpy as np
    import onnx
    import onnx.shape_inference
    from onnx import TensorProto, helper, numpy_helper
except ImportError as missing:
    fail("the ONNX export needs the Python package %s (run .ci/install-deps, or pip install onnx numpy): %s"
         % (getattr(missing, "name", None) or "onnx", missing))


class Builder:
    def __init__(self, tensors):
        self.tensors = tensors  # name -> numpy array in mplc's layout (HWIO, [in, out])
        self.nodes = []
        self.initializers = []
        self.count = 0

    def fresh(self, hint):
        self.count += 1
        return "%s_%d" % (hint, self.count)

    def node(self, op, inputs, hint, **attributes):
        output = self.fresh(hint)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def constant(self, name, array):
        """`array` as an initializer named `name` (a name from the description: data, never code)."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def layers(self, layers, h, image):
        """Applies `layers` to `h`; `image` says whether h is NCHW (else [N, D]). Returns (h, image)."""
        for layer in layers:
            op = layer["op"]
            if op == "conv2d":
                k, s, p = layer["kernel"], layer["stride"], layer["padding"]
                weight = self.tensors[layer["name"] + "/weight"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
                h = self.node("Conv", [h, self.constant(layer["name"] + "/weight", weight),
                                       self.constant(layer["name"] + "/bias", self.tensors[layer["name"] + "/bias"])],
                              "conv", kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
            elif op == "dense":
                h = self.node("Gemm", [h, self.constant(layer["name"] + "/weight", self.tensors[layer["name"] + "/weight"]),
                                       self.constant(layer["name"] + "/bias", self.tensors[layer["name"] + "/bias"])],
                              "dense")
            elif op in ("max_pool", "avg_pool"):
                k, s = layer["size"], layer["stride"]
                h = self.node("MaxPool" if op == "max_pool" else "AveragePool", [h], op, kernel_shape=[k, k],
                              strides=[s, s])
            elif op == "global_avg_pool":
                h = self.node("Flatten", [self.node("GlobalAveragePool", [h], "pool")], "flatten", axis=1)
                image = False
            elif op == "flatten":
                if image:  # mplc flattens channels last: NCHW -> NHWC first
                    h = self.node("Flatten", [self.node("Transpose", [h], "nhwc", perm=[0, 2, 3, 1])], "flatten", axis=1)
                image = False
            elif op == "relu":
                h = self.node("Relu", [h], "relu")
            elif op == "leaky_relu":  # alpha in (0, 1): max(x, alpha x) as mplc computes it
                h = self.node("LeakyRelu", [h], "leaky_relu", alpha=float(layer["alpha"]))
            elif op == "tanh":
                h = self.node("Tanh", [h], "tanh")
            elif op == "sigmoid":
                h = self.node("Sigmoid", [h], "sigmoid")
            elif op == "gelu":  # x·Φ(x) = ½·x·(1 + erf(x/√2)), as mplc computes it (ONNX's Gelu needs opset 20)
                scaled = self.node("Mul", [h, self.constant(self.fresh("gelu_sqrt_half"), np.float32(0.5 ** 0.5))], "gelu")
                cdf = self.node("Add", [self.node("Erf", [scaled], "gelu"), self.constant(self.fresh("gelu_one"), np.float32(1))],
                                "gelu")
                h = self.node("Mul", [self.node("Mul", [h, cdf], "gelu"), self.constant(self.fresh("gelu_half"), np.float32(0.5))],
                              "gelu")
            elif op == "batch_norm":
                if not layer["folded"]:  # gain x + shift per channel
                    gain, shift = self.tensors[layer["name"] + "/gain"], self.tensors[layer["name"] + "/shift"]
                    if image:
                        gain, shift = gain.reshape(-1, 1, 1), shift.reshape(-1, 1, 1)
                    h = self.node("Mul", [h, self.constant(layer["name"] + "/gain", gain)], "gain")
                    h = self.node("Add", [h, self.constant(layer["name"] + "/shift", shift)], "shift")
            elif op == "residual":
                body, body_image = self.layers(layer["body"], h, image)
                shortcut = layer["shortcut"]
                if shortcut["kind"] == "convolution":
                    weight = self.tensors[layer["name"] + "/shortcut/weight"].transpose(3, 2, 0, 1)
                    s = shortcut["stride"]
                    h = self.node("Conv", [h, self.constant(layer["name"] + "/shortcut/weight", weight)], "shortcut",
                                  kernel_shape=[1, 1], strides=[s, s], pads=[0, 0, 0, 0])
                elif shortcut["kind"] == "matrix":
                    h = self.node("MatMul", [h, self.constant(layer["name"] + "/shortcut/weight",
                                                              self.tensors[layer["name"] + "/shortcut/weight"])],
                                  "shortcut")
                elif shortcut["kind"] != "identity":
                    fail("unknown shortcut %r" % shortcut["kind"])
                h, image = self.node("Add", [body, h], "residual"), body_image
            else:
                fail("unknown layer %r" % op)
        return h, image


def main():
    if len(sys.argv) != 3:
        fail("usage: onnx_export.py DESCRIPTION_DIR OUTPUT.onnx")
    folder, output = sys.argv[1], sys.argv[2]
    with open(os.path.join(folder, "model.json"), encoding="utf-8") as f:
        description = json.load(f)
    flat = np.fromfile(os.path.join(folder, "weights.f32"), dtype="<f4")
    tensors = {}
    for tensor in description["tensors"]:
        size = int(np.prod(tensor["shape"], dtype=np.int64))
        tensors[tensor["name"]] = flat[tensor["offset"]:tensor["offset"] + size].reshape(tensor["shape"])

    input_shape, classes = description["input"], description["classes"]
    builder = Builder(tensors)
    image = len(input_shape) == 3
    h = "images"
    if image:
        h = builder.node("Transpose", [h], "nchw", perm=[0, 3, 1, 2])
    h, image = builder.layers(description["layers"], h, image)
    if image:
        fail("the student's output is an image, not logits")
    builder.nodes.append(helper.make_node("Identity", [h], ["logits"], name="logits"))

    graph = helper.make_graph(
        builder.nodes, description["name"],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N"] + input_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        builder.initializers,
        doc_string="images: float32 " + ("[N, H, W, C] (channels last, " if len(input_shape) == 3 else "[N, D] (")
        + "normalised as for training; mplc's docs/EXPORT.md)")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mplc",
                              doc_string=description["origin"])
    model.ir_version = 8  # the IR of opset 17: runtimes of its time load it
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        fail("the ONNX model does not check: %s" % error)
    partial = output + ".partial"
    try:
        onnx.save(model, partial)
        os.replace(partial, output)
    except OSError as error:
        if os.path.isfile(partial):
            os.remove(partial)
        fail("cannot write %s: %s" % (output, error.strerror or error))


if __name__ == "__main__":
    main()
