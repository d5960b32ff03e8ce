// The student in inference form, for `mplc export` (docs/EXPORT.md): dropout off, and every BatchNorm's running
// statistics folded into the weights and bias of the convolution or dense layer before it, so that the exported
// forward pass has no BatchNorm left where one could be folded.

import MPLIR
import MPLModel

/// The student of a model as an exported library computes it. BatchNorm in evaluation form is the per-channel
/// affine map `gain·x + shift` with `gain = scale/√(running_var + ε)` and `shift = offset − running_mean·gain`.
/// It is folded into the layer before it when that layer is linear and its output goes nowhere else:
/// - a Conv2D or Dense: `W[…, c] ← gain[c]·W[…, c]`, `bias[c] ← gain[c]·bias[c] + shift[c]`;
/// - a Residual with a projection shortcut whose body ends in such a layer: body and shortcut are both scaled,
///   the shift goes into the body's bias (gain·(body + shortcut) + shift);
/// skipping Dropout and BatchNorms folded already. Elsewhere (first layer, after an activation or pooling, after a
/// Residual with an identity shortcut) it stays, as `<name>/gain` and `<name>/shift` tensors of the export.
public struct InferenceNetwork {
    public let model: Model
    let parameters: NetworkParameters
    /// The BatchNorm layers folded into the layers before them, by name (`student/res3/bn1`).
    public let folded: Set<String>
    /// The BatchNorm layers kept as `gain` and `shift`, by name, in layer order.
    public let kept: [String]

    public init(model: Model) {
        self.model = model
        parameters = NetworkParameters(network: model.student, prefix: "student", input: model.input.featureShape)
        var walk = FoldingWalk(declared: Set(parameters.infos.map(\.name)))
        walk.visit(model.student.layers, scope: "student")
        folded = walk.folded
        kept = walk.kept
    }

    /// What the export reads from a checkpoint: the student's trained tensors and running averages.
    public var checkpointTensors: [TensorInfo] { parameters.infos + parameters.statistics }

    /// The exported tensors, in the order of the library's weights: the student's parameters, BatchNorm scales
    /// and offsets replaced by the gains and shifts of the BatchNorms kept, and dropped for those folded.
    public var tensors: [TensorInfo] {
        parameters.infos.compactMap { info in
            let (layer, tensor) = split(info.name)
            switch tensor {
            case "scale", "offset":
                guard !folded.contains(layer) else { return nil }
                return TensorInfo(name: layer + (tensor == "scale" ? "/gain" : "/shift"), shape: info.shape)
            default:
                return info
            }
        }
    }

    /// The forward pass of `batch` examples: the input `x` and the result `logits` are pointer arguments, the
    /// exported tensors the state.
    public func entryPoint(name: String, batch: Int) -> EntryPoint {
        var g = Graph()
        var effects = ForwardEffects()
        let weights = g.stateInputs(tensors)
        let inputShape = model.input.featureShape
        let x = g.input("x", inputShape.batch(batch))
        let pass = ForwardPass(dropout: .off, normalization: .folded(folded))
        g.results = [
            (
                "logits",
                g.forward(
                    parameters, weights: weights, x: x, inputShape: inputShape, pass: pass,
                    effects: &effects)
            )
        ]
        var storage = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, Storage.state) })
        storage["x"] = .argument
        return EntryPoint(
            name: name, tableName: name, graph: g, inputStorage: storage, resultStorage: ["logits": .argument])
    }

    /// The values of `tensors` from the student's (by their checkpoint names, `checkpointTensors`), folded in
    /// Double and rounded once to Float.
    public func weights(from student: [String: [Float]]) -> [String: [Float]] {
        var values = student.mapValues { $0.map(Double.init) }
        let walk = FoldingWalk(declared: Set(parameters.infos.map(\.name)))
        func fold(_ layers: [Layer], scope: String) {
            for (index, layer) in layers.enumerated() {
                let name = "\(scope)/\(layerName(layer))\(index)"
                switch layer {
                case .batchNorm(_, let epsilon):
                    let scale = values[name + "/scale"]!
                    let offset = values[name + "/offset"]!
                    let mean = values[name + "/running_mean"]!
                    let variance = values[name + "/running_var"]!
                    let gain = scale.indices.map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
                    let shift = offset.indices.map { offset[$0] - mean[$0] * gain[$0] }
                    guard let targets = walk.linearOutput(of: layers, before: index, scope: scope) else {
                        values[name + "/gain"] = gain
                        values[name + "/shift"] = shift
                        continue
                    }
                    for target in targets {
                        values[target.weight] = scaledColumns(values[target.weight]!, by: gain)
                        if let bias = target.bias {
                            values[bias] = zip(values[bias]!, zip(gain, shift)).map { $0 * $1.0 + $1.1 }
                        }
                    }
                case .residual(let body):
                    fold(body, scope: name)
                default:
                    break
                }
            }
        }
        fold(model.student.layers, scope: "student")
        return Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, values[$0.name]!.map { Float($0) }) })
    }

    private func split(_ name: String) -> (layer: String, tensor: String) {
        let slash = name.lastIndex(of: "/")!
        return (String(name[..<slash]), String(name[name.index(after: slash)...]))
    }
}

/// Which BatchNorms fold, found once by walking the layers in order (a BatchNorm after a folded one folds into
/// the same layer).
private struct FoldingWalk {
    /// The names of the student's trained tensors: a Residual has a projection shortcut iff it has a weight.
    let declared: Set<String>
    var folded: Set<String> = []
    var kept: [String] = []

    mutating func visit(_ layers: [Layer], scope: String) {
        for (index, layer) in layers.enumerated() {
            let name = "\(scope)/\(layerName(layer))\(index)"
            switch layer {
            case .batchNorm:
                if linearOutput(of: layers, before: index, scope: scope) != nil {
                    folded.insert(name)
                } else {
                    kept.append(name)
                }
            case .residual(let body):
                visit(body, scope: name)
            default:
                break
            }
        }
    }

    /// The linear layers whose outputs sum to the output of layers[..<index] (what a BatchNorm at `index` reads),
    /// or nil if it is not such a sum. Exactly one of them has a bias, where the shift goes.
    func linearOutput(of layers: [Layer], before index: Int, scope: String) -> [(weight: String, bias: String?)]? {
        var j = index - 1
        while j >= 0 {
            let name = "\(scope)/\(layerName(layers[j]))\(j)"
            switch layers[j] {
            case .dropout:
                j -= 1
            case .batchNorm:
                guard linearOutput(of: layers, before: j, scope: scope) != nil else { return nil }
                j -= 1  // folded: its layer's output is this one's input
            case .dense, .conv2D:
                return [(name + "/weight", name + "/bias")]
            case .residual(let body):
                let shortcut = name + "/shortcut/weight"
                guard declared.contains(shortcut), let inner = linearOutput(of: body, before: body.count, scope: name)
                else {
                    return nil
                }
                return inner + [(shortcut, nil)]
            case .maxPool2D, .avgPool2D, .globalAvgPool, .flatten, .activation:
                return nil
            }
        }
        return nil
    }
}

/// Every column c (the last axis, output channels of HWIO and [in, out] weights) of `weight` times `gain[c]`.
private func scaledColumns(_ weight: [Double], by gain: [Double]) -> [Double] {
    weight.indices.map { weight[$0] * gain[$0 % gain.count] }
}
