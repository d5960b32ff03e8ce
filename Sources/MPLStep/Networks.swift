// A `Sequential` network as IR: parameters are graph inputs bound to the state arena,
// activations are channels-last so that every convolution is im2col followed by one GEMM.

import MPLIR
import MPLModel

/// The parameter tensors of one network, in layer order, named `<prefix>/<kind><index>/weight|bias`.
struct NetworkParameters {
    var network: Network
    var prefix: String
    var infos: [TensorInfo]

    init(network: Network, prefix: String, input: FeatureShape) {
        self.network = network
        self.prefix = prefix
        var infos: [TensorInfo] = []
        var shape = input
        for (index, layer) in network.layers.enumerated() {
            switch layer {
            case .dense(let units):
                infos.append(TensorInfo(name: "\(prefix)/dense\(index)/weight", shape: Shape([shape.count, units]),
                                        fanIn: shape.count, isWeight: true))
                infos.append(TensorInfo(name: "\(prefix)/dense\(index)/bias", shape: Shape([units])))
            case .conv2D(let filters, let k, _, _):
                guard case .image(_, _, let channels) = shape else { preconditionFailure("checked by the front end") }
                infos.append(TensorInfo(name: "\(prefix)/conv\(index)/weight", shape: Shape([k, k, channels, filters]),
                                        fanIn: k * k * channels, isWeight: true))
                infos.append(TensorInfo(name: "\(prefix)/conv\(index)/bias", shape: Shape([filters])))
            case .maxPool2D, .avgPool2D, .globalAvgPool, .flatten, .relu, .leakyReLU, .tanh, .sigmoid, .dropout:
                break
            }
            shape = try! layer.outputShape(for: shape).get()
        }
        self.infos = infos
    }

    /// The same tensors under another prefix (the optimiser's momentum buffers).
    func renamed(to newPrefix: String) -> [TensorInfo] {
        infos.map { info in
            var copy = info
            copy.name = newPrefix + info.name.dropFirst(prefix.count)
            return copy
        }
    }
}

/// How one forward pass treats dropout: masks are inputs named `dropout/<net>/<pass>/<layer>`.
enum DropoutMode {
    case off
    case masks(pass: String)
}

extension Graph {
    /// Declares (or reuses) the state inputs of `parameters`, returning them by name.
    mutating func stateInputs(_ infos: [TensorInfo]) -> [String: Value] {
        var values: [String: Value] = [:]
        for info in infos { values[info.name] = input(named: info.name) ?? input(info.name, info.shape) }
        return values
    }

    /// Applies the network to `x` ([N, H, W, C] or [N, D]); returns the logits [N, classes].
    /// Dropout mask inputs are declared on first use; their infos are appended to `masks`.
    mutating func forward(_ net: NetworkParameters, weights: [String: Value], x: Value, inputShape: FeatureShape,
                          dropout: DropoutMode, masks: inout [TensorInfo]) -> Value {
        var h = x
        var shape = inputShape
        let rows = self.shape(of: x)[0]
        for (index, layer) in net.network.layers.enumerated() {
            let name = "\(net.prefix)/\(layerName(layer))\(index)"
            let next = try! layer.outputShape(for: shape).get()
            switch layer {
            case .dense:
                h = addBias(matmul(h, weights[name + "/weight"]!), weights[name + "/bias"]!)
            case .conv2D(let filters, let k, let stride, let padding):
                guard case .image(let height, let width, let channels) = shape,
                      case .image(let oh, let ow, _) = next else { preconditionFailure("checked by the front end") }
                let geometry = WindowGeometry(batch: rows, height: height, width: width, channels: channels,
                                              kernel: k, stride: stride, padding: padding)
                let columns = append(.im2col(h, geometry))
                let kernel = reshape(weights[name + "/weight"]!, Shape([k * k * channels, filters]))
                h = reshape(addBias(matmul(columns, kernel), weights[name + "/bias"]!), Shape([rows, oh, ow, filters]))
            case .maxPool2D(let k, let stride), .avgPool2D(let k, let stride):
                guard case .image(let height, let width, let channels) = shape else { preconditionFailure("checked") }
                let geometry = WindowGeometry(batch: rows, height: height, width: width, channels: channels,
                                              kernel: k, stride: stride, padding: 0)
                if case .maxPool2D = layer { h = append(.maxPool(h, geometry)) } else { h = append(.avgPool(h, geometry)) }
            case .globalAvgPool:
                guard case .image(let height, let width, let channels) = shape else { preconditionFailure("checked") }
                let pixels = reshape(h, Shape([rows, height * width, channels]))
                h = scale(reduceSum(pixels, axes: [1]), 1 / Double(height * width))
            case .flatten:
                h = reshape(h, Shape([rows, shape.count]))
            case .relu:
                h = unary(.relu, h)
            case .leakyReLU(let alpha):
                h = binary(.max, h, scale(h, alpha))
            case .tanh:
                h = unary(.tanh, h)
            case .sigmoid:
                h = unary(.sigmoid, h)
            case .dropout(let rate):
                guard case .masks(let pass) = dropout, rate > 0 else { break }
                let maskName = "dropout/\(net.prefix)/\(pass)/dropout\(index)"
                let maskShape = self.shape(of: h)
                let mask = input(named: maskName) ?? input(maskName, maskShape)
                if !masks.contains(where: { $0.name == maskName }) {
                    masks.append(TensorInfo(name: maskName, shape: maskShape, dropoutRate: rate))
                }
                h = mul(h, mask)
            }
            shape = next
        }
        return h
    }
}

/// The kind part of a layer's parameter name: `dense3`, `conv0`; other layers are named for dropout masks only.
func layerName(_ layer: Layer) -> String {
    switch layer {
    case .dense: return "dense"
    case .conv2D: return "conv"
    case .maxPool2D, .avgPool2D, .globalAvgPool, .flatten, .relu, .leakyReLU, .tanh, .sigmoid, .dropout: return "layer"
    }
}
