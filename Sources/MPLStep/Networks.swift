// A `Sequential` network as IR: parameters are graph inputs bound to the state arena,
// activations are channels-last so that every convolution is im2col followed by one GEMM.

import MPLIR
import MPLModel

/// The state tensors of one network, in layer order, named `<prefix>/<kind><index>/<tensor>`; layers inside a
/// `Residual` are scoped by it: `student/res2/conv0/weight`, `student/res2/shortcut/weight`.
struct NetworkParameters {
    var network: Network
    var prefix: String
    /// What the optimiser trains: weights, biases, BatchNorm scales and offsets.
    var infos: [TensorInfo]
    /// BatchNorm running averages: state that the forward passes update but that is not trained.
    var statistics: [TensorInfo]

    init(network: Network, prefix: String, input: FeatureShape) {
        self.network = network
        self.prefix = prefix
        var declared = DeclaredTensors()
        declared.declare(network.layers, scope: prefix, input: input)
        infos = declared.parameters
        statistics = declared.statistics
    }

    /// The trained tensors under another prefix (the optimiser's momentum buffers).
    func renamed(to newPrefix: String) -> [TensorInfo] {
        infos.map { info in
            var copy = info
            copy.name = newPrefix + info.name.dropFirst(prefix.count)
            return copy
        }
    }
}

private struct DeclaredTensors {
    var parameters: [TensorInfo] = []
    var statistics: [TensorInfo] = []

    mutating func declare(_ layers: [Layer], scope: String, input: FeatureShape) {
        var shape = input
        for (index, layer) in layers.enumerated() {
            let name = "\(scope)/\(layerName(layer))\(index)"
            let next = try! layer.outputShape(for: shape).get()
            switch layer {
            case .dense(let units):
                weight(name + "/weight", [shape.count, units], fanIn: shape.count)
                parameters.append(TensorInfo(name: name + "/bias", shape: Shape([units])))
            case .conv2D(let filters, let k, _, _):
                let channels = shape.channels
                weight(name + "/weight", [k, k, channels, filters], fanIn: k * k * channels)
                parameters.append(TensorInfo(name: name + "/bias", shape: Shape([filters])))
            case .batchNorm:
                let channels = Shape([shape.channels])
                parameters += [
                    TensorInfo(name: name + "/scale", shape: channels),
                    TensorInfo(name: name + "/offset", shape: channels),
                ]
                statistics += [
                    TensorInfo(name: name + "/running_mean", shape: channels),
                    TensorInfo(name: name + "/running_var", shape: channels),
                ]
            case .residual(let body):
                declare(body, scope: name, input: shape)
                switch try! Residual.shortcut(from: shape, to: next).get() {
                case .identity: break
                case .convolution(_, let inChannels, let outChannels):
                    weight(name + "/shortcut/weight", [1, 1, inChannels, outChannels], fanIn: inChannels)
                case .matrix(let inFeatures, let outFeatures):
                    weight(name + "/shortcut/weight", [inFeatures, outFeatures], fanIn: inFeatures)
                }
            case .maxPool2D, .avgPool2D, .globalAvgPool, .flatten, .activation, .dropout:
                break
            }
            shape = next
        }
    }

    private mutating func weight(_ name: String, _ dims: [Int], fanIn: Int) {
        parameters.append(TensorInfo(name: name, shape: Shape(dims), fanIn: fanIn, isWeight: true))
    }
}

extension FeatureShape {
    /// The last axis: what BatchNorm normalises per entry and a bias adds to.
    var channels: Int {
        switch self {
        case .image(_, _, let c): return c
        case .vector(let d): return d
        }
    }

    /// The shape of a batch of `rows` examples: [rows, H, W, C] or [rows, D].
    func batch(_ rows: Int) -> Shape {
        switch self {
        case .image(let h, let w, let c): return Shape([rows, h, w, c])
        case .vector(let d): return Shape([rows, d])
        }
    }
}

/// How one forward pass runs.
struct ForwardPass {
    /// Dropout: off, or masks that are inputs named `dropout/<network>/<pass>/dropout<index>`.
    enum Dropout {
        case off
        case masks(pass: String)
    }
    /// BatchNorm: the batch's own statistics (training; optionally moving the running averages towards
    /// them), the running averages (evaluation), or folded into the weights (an exported library,
    /// `InferenceNetwork`): the layers in the set are gone, the others a per-channel `gain` and `shift`.
    enum Normalization {
        case batchStatistics(updatingAverages: Bool)
        case runningAverages
        case folded(Set<String>)
    }
    var dropout: Dropout
    var normalization: Normalization
    /// The processes that share the batch: BatchNorm's batch statistics are those of all their rows.
    var ranks = 1

    static let evaluation = ForwardPass(dropout: .off, normalization: .runningAverages)
    /// A training pass with masks for `pass`; `updatingAverages` for the one pass per step whose batch
    /// statistics the running averages follow.
    static func training(_ pass: String, updatingAverages: Bool, ranks: Int) -> ForwardPass {
        ForwardPass(
            dropout: .masks(pass: pass), normalization: .batchStatistics(updatingAverages: updatingAverages),
            ranks: ranks)
    }
}

/// What a forward pass declares beyond its logits: dropout masks to draw, running averages to store.
struct ForwardEffects {
    var masks: [TensorInfo] = []
    var averages: [(name: String, value: Value)] = []
}

extension Graph {
    /// Declares (or reuses) the state inputs of `parameters`, returning them by name.
    mutating func stateInputs(_ infos: [TensorInfo]) -> [String: Value] {
        var values: [String: Value] = [:]
        for info in infos { values[info.name] = input(named: info.name) ?? input(info.name, info.shape) }
        return values
    }

    /// Applies the network to `x` ([N, H, W, C] or [N, D]); returns the logits [N, classes]. `weights` holds
    /// the network's tensors by name (running averages too, when the pass reads or updates them).
    mutating func forward(
        _ net: NetworkParameters, weights: [String: Value], x: Value, inputShape: FeatureShape,
        pass: ForwardPass, effects: inout ForwardEffects
    ) -> Value {
        var layers = LayerApplication(weights: weights, pass: pass, effects: effects)
        let logits = layers.apply(net.network.layers, scope: net.prefix, to: x, shape: inputShape, in: &self)
        effects = layers.effects
        return logits
    }
}

/// Builds the equations of a list of layers, recursing into residual blocks.
private struct LayerApplication {
    let weights: [String: Value]
    let pass: ForwardPass
    var effects: ForwardEffects

    mutating func apply(
        _ layers: [Layer], scope: String, to x: Value, shape inputShape: FeatureShape,
        in g: inout Graph
    ) -> Value {
        var h = x
        var shape = inputShape
        let rows = g.shape(of: x)[0]
        let outer = g.origin
        defer { g.origin = outer }
        for (index, layer) in layers.enumerated() {
            let name = "\(scope)/\(layerName(layer))\(index)"
            let next = try! layer.outputShape(for: shape).get()
            g.origin = Origin(name, .forward)
            switch layer {
            case .dense:
                h = g.addBias(g.matmul(h, weights[name + "/weight"]!), weights[name + "/bias"]!)
            case .conv2D(let filters, let k, let stride, let padding):
                let product = convolution(
                    h, shape: shape, kernel: k, stride: stride, padding: padding,
                    weight: weights[name + "/weight"]!, filters: filters, in: &g)
                h = g.reshape(g.addBias(product, weights[name + "/bias"]!), next.batch(rows))
            case .maxPool2D(let k, let stride), .avgPool2D(let k, let stride):
                guard case .image(let height, let width, let channels) = shape else { preconditionFailure("checked") }
                let geometry = WindowGeometry(
                    batch: rows, height: height, width: width, channels: channels,
                    kernel: k, stride: stride, padding: 0)
                if case .maxPool2D = layer {
                    h = g.append(.maxPool(h, geometry))
                } else {
                    h = g.append(.avgPool(h, geometry))
                }
            case .globalAvgPool:
                guard case .image(let height, let width, let channels) = shape else { preconditionFailure("checked") }
                let pixels = g.reshape(h, Shape([rows, height * width, channels]))
                h = g.scale(g.reduceSum(pixels, axes: [1]), 1 / Double(height * width))
            case .flatten:
                h = g.reshape(h, Shape([rows, shape.count]))
            case .activation(let activation):
                h = activate(activation, h, in: &g)
            case .dropout(let rate):
                guard case .masks(let passName) = pass.dropout, rate > 0 else { break }
                // dropout/<network>/<pass>/<layer path>: `dropout/teacher/all/res2/dropout1` inside a block.
                let path = scope.split(separator: "/", maxSplits: 1).map(String.init)
                let maskName = (["dropout", path[0], passName] + path.dropFirst() + ["dropout\(index)"]).joined(
                    separator: "/")
                let maskShape = g.shape(of: h)
                let mask = g.input(named: maskName) ?? g.input(maskName, maskShape)
                if !effects.masks.contains(where: { $0.name == maskName }) {
                    effects.masks.append(TensorInfo(name: maskName, shape: maskShape, dropoutRate: rate))
                }
                h = g.mul(h, mask)
            case .batchNorm(let momentum, let epsilon):
                h = batchNorm(h, name: name, momentum: momentum, epsilon: epsilon, in: &g)
            case .residual(let body):
                let bodyOutput = apply(body, scope: name, to: h, shape: shape, in: &g)
                g.origin = Origin(name, .forward)
                h = g.add(bodyOutput, shortcut(h, name: name, from: shape, to: next, in: &g))
            }
            shape = next
        }
        return h
    }

    /// im2col followed by one GEMM with the reshaped HWIO kernel: [rows·OH·OW, filters].
    private func convolution(
        _ x: Value, shape: FeatureShape, kernel k: Int, stride: Int, padding: Int, weight: Value,
        filters: Int, in g: inout Graph
    ) -> Value {
        guard case .image(let height, let width, let channels) = shape else { preconditionFailure("checked") }
        let geometry = WindowGeometry(
            batch: g.shape(of: x)[0], height: height, width: width, channels: channels,
            kernel: k, stride: stride, padding: padding)
        let columns = g.append(.im2col(x, geometry))
        return g.matmul(columns, g.reshape(weight, Shape([k * k * channels, filters])))
    }

    private func shortcut(
        _ x: Value, name: String, from input: FeatureShape, to output: FeatureShape,
        in g: inout Graph
    ) -> Value {
        switch try! Residual.shortcut(from: input, to: output).get() {
        case .identity:
            return x
        case .convolution(let stride, _, let outChannels):
            let product = convolution(
                x, shape: input, kernel: 1, stride: stride, padding: 0,
                weight: weights[name + "/shortcut/weight"]!, filters: outChannels, in: &g)
            return g.reshape(product, output.batch(g.shape(of: x)[0]))
        case .matrix:
            return g.matmul(x, weights[name + "/shortcut/weight"]!)
        }
    }

    /// BatchNorm over the last axis, with the pass's choice of statistics (Graph.normalizeColumns).
    private mutating func batchNorm(
        _ x: Value, name: String, momentum: Double, epsilon: Double,
        in g: inout Graph
    ) -> Value {
        let shape = g.shape(of: x)
        if case .folded(let folded) = pass.normalization {
            if folded.contains(name) { return x }
            let gain = g.broadcast(weights[name + "/gain"]!, to: shape, axes: [shape.rank - 1])
            return g.addBias(g.mul(x, gain), weights[name + "/shift"]!)
        }
        let channels = shape.dims.last!
        let count = shape.count / channels
        let rows = g.reshape(x, Shape([count, channels]))
        let mean: Value
        let variance: Value
        switch pass.normalization {
        case .folded:
            preconditionFailure("handled above")
        case .runningAverages:
            mean = weights[name + "/running_mean"]!
            variance = weights[name + "/running_var"]!
        case .batchStatistics(let updatingAverages):
            (mean, variance) = g.columnMoments(rows, ranks: pass.ranks)
            if updatingAverages {
                // The running variance is the unbiased estimate, as in PyTorch and TensorFlow, over every rank's rows.
                let total = count * pass.ranks
                let unbiased = total > 1 ? Double(total) / Double(total - 1) : 1
                moveAverage(name + "/running_mean", towards: mean, by: momentum, factor: 1, in: &g)
                moveAverage(name + "/running_var", towards: variance, by: momentum, factor: unbiased, in: &g)
            }
        }
        let normalized = g.normalizeColumns(
            rows, mean: mean, variance: variance, scale: weights[name + "/scale"]!,
            offset: weights[name + "/offset"]!, epsilon: epsilon)
        return g.reshape(normalized, shape)
    }

    /// average ← (1 − momentum)·average + momentum·factor·batch, with no gradient through the statistics.
    private mutating func moveAverage(
        _ name: String, towards batch: Value, by momentum: Double, factor: Double,
        in g: inout Graph
    ) {
        let old = weights[name]!
        let target = g.scale(g.append(.stopGradient(batch)), momentum * factor)
        effects.averages.append((name, g.add(g.scale(old, 1 - momentum), target)))
    }
}

/// The equations of each activation (the rest of its definition is in MPLModel/Activation.swift).
func activate(_ activation: Activation, _ x: Value, in g: inout Graph) -> Value {
    switch activation {
    case .relu: return g.unary(.relu, x)
    case .leakyReLU(let alpha): return g.binary(.max, x, g.scale(x, alpha))
    case .tanh: return g.unary(.tanh, x)
    case .sigmoid: return g.unary(.sigmoid, x)
    case .gelu: return g.unary(.gelu, x)
    }
}

/// The kind part of a layer's name, followed by its index: `dense3`, `conv0`, `bn1`, `res4` name tensors, and
/// every layer names the origin of its equations (`relu2`, `max_pool1`).
func layerName(_ layer: Layer) -> String {
    switch layer {
    case .dense: return "dense"
    case .conv2D: return "conv"
    case .batchNorm: return "bn"
    case .residual: return "res"
    case .maxPool2D: return "max_pool"
    case .avgPool2D: return "avg_pool"
    case .globalAvgPool: return "global_avg_pool"
    case .flatten: return "flatten"
    case .activation(let activation): return activation.exportName
    case .dropout: return "dropout"
    }
}
