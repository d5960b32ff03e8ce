// The student in inference form as plain data, for `mplc export --format onnx` (docs/EXPORT.md): the layer list
// with the names of the exported tensors, which Templates/onnx_export.py turns into an ONNX graph.

import MPLModel

extension InferenceNetwork {
    /// The student's layers as JSON-ready dictionaries, in order: `op` (conv2d, dense, max_pool, avg_pool,
    /// global_avg_pool, flatten, an activation's `exportName` with its argument, batch_norm, residual), the
    /// layer's `name` (the prefix of its tensors in `tensors`) and its sizes. Dropout, the identity at inference, is left out; a
    /// BatchNorm says whether it is `folded` (nothing to compute) or kept (`<name>/gain`, `<name>/shift`); a
    /// Residual has its `body` and its `shortcut`: identity, convolution (1×1, with its `stride`, no bias) or matrix.
    public var layerDescription: [[String: Any]] {
        func describe(_ layers: [Layer], scope: String, input: FeatureShape) -> [[String: Any]] {
            var shape = input
            var list: [[String: Any]] = []
            for (index, layer) in layers.enumerated() {
                let name = "\(scope)/\(layerName(layer))\(index)"
                let next = try! layer.outputShape(for: shape).get()
                switch layer {
                case .dense(let units):
                    list.append(["op": "dense", "name": name, "units": units])
                case .conv2D(let filters, let kernel, let stride, let padding):
                    list.append([
                        "op": "conv2d", "name": name, "filters": filters, "kernel": kernel, "stride": stride,
                        "padding": padding,
                    ])
                case .maxPool2D(let size, let stride):
                    list.append(["op": "max_pool", "size": size, "stride": stride])
                case .avgPool2D(let size, let stride):
                    list.append(["op": "avg_pool", "size": size, "stride": stride])
                case .globalAvgPool:
                    list.append(["op": "global_avg_pool"])
                case .flatten:
                    list.append(["op": "flatten"])
                case .activation(let activation):
                    var entry: [String: Any] = ["op": activation.exportName]
                    if let label = activation.kind.argument?.label, let value = activation.argument {
                        entry[label] = value
                    }
                    list.append(entry)
                case .dropout:
                    break
                case .batchNorm:
                    list.append(["op": "batch_norm", "name": name, "folded": folded.contains(name)])
                case .residual(let body):
                    let shortcut: [String: Any]
                    switch try! Residual.shortcut(from: shape, to: next).get() {
                    case .identity: shortcut = ["kind": "identity"]
                    case .convolution(let stride, _, _): shortcut = ["kind": "convolution", "stride": stride]
                    case .matrix: shortcut = ["kind": "matrix"]
                    }
                    list.append([
                        "op": "residual", "name": name, "body": describe(body, scope: name, input: shape),
                        "shortcut": shortcut,
                    ])
                }
                shape = next
            }
            return list
        }
        return describe(model.student.layers, scope: "student", input: model.input.featureShape)
    }
}
