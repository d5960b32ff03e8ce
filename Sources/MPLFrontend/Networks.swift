import MPLModel
import SwiftSyntax

/// How each kind of layer is written: its parameters (the kinds and their names are MPLModel's `Layer.Kind`).
extension Layer.Kind {
    var parameters: [Parameter] {
        switch self {
        case .dense: return [.leading("units")]
        case .conv2D:
            return [.leading("filters"), .labeled("kernel", required: true), .labeled("stride"), .labeled("padding")]
        case .maxPool2D, .avgPool2D: return [.leading("size"), .labeled("stride")]
        case .globalAvgPool, .flatten, .residual: return []
        case .activation(let activation): return activation.argument.map { [.leading($0.label, required: false)] } ?? []
        case .dropout: return [.leading("rate")]
        case .batchNorm: return [.labeled("momentum"), .labeled("epsilon")]
        }
    }

    /// PyTorch's and the official MPL code's choices: averages move 1 % per step; ε as in TensorFlow.
    static let defaultBatchNormMomentum = 0.01
    static let defaultBatchNormEpsilon = 1e-3
}

/// A network as read from the file, with each layer's syntax so that shape errors point at the layer.
struct CheckedNetwork {
    var network: Network
    var layerNodes: [Syntax]
    /// The `Sequential` call, where an empty network is reported.
    var call: Call
    /// False if a layer was left out because of an error: its shapes are then not checked, since
    /// they would be checked against the wrong layers.
    var isComplete: Bool
}

/// Reads `Sequential { layers }` and checks layer arguments; shapes are checked later, once the
/// input is known.
struct NetworkReader {
    let diagnostics: DiagnosticCollector

    func read(name: String, call: Call) -> CheckedNetwork {
        var isComplete = checkCallForm(call)
        var layers: [Layer] = []
        var nodes: [Syntax] = []
        if let block = call.block {
            let (blockLayers, blockNodes, blockIsComplete) = self.layers(in: block)
            (layers, nodes) = (blockLayers, blockNodes)
            isComplete = isComplete && blockIsComplete
            if isComplete && layers.isEmpty {
                diagnostics.error(.shapeMismatch, "`\(name)` has no layers", at: call.nameNode)
                isComplete = false
            }
        }
        return CheckedNetwork(
            network: Network(name: name, layers: layers), layerNodes: nodes, call: call, isComplete: isComplete)
    }

    /// The layers of a `{ ... }` block with each one's syntax; incomplete if any statement is not a layer.
    private func layers(in block: ClosureExprSyntax) -> (layers: [Layer], nodes: [Syntax], isComplete: Bool) {
        var (statements, isComplete) = block.checkedStatements(diagnostics)
        var layers: [Layer] = []
        var nodes: [Syntax] = []
        for statement in statements {
            if let layer = layer(statement) {
                layers.append(layer)
                nodes.append(Syntax(statement))
            } else {
                isComplete = false
            }
        }
        return (layers, nodes, isComplete)
    }

    /// `Residual { layers }`: the body in the block, nothing in parentheses.
    private func residual(_ call: Call) -> Layer? {
        let arguments = Arguments(
            call.arguments, parameters: [], callee: "Residual", at: call.syntax, diagnostics: diagnostics)
        guard let block = call.block else {
            diagnostics.error(.missingArgument, "Residual is missing its `{ ... }` block of layers", at: call.syntax)
            return nil
        }
        if let extra = call.syntax.additionalTrailingClosures.first {
            diagnostics.error(.unsupported, "Residual takes one `{ ... }` block", at: extra)
            return nil
        }
        let (body, _, isComplete) = layers(in: block)
        guard isComplete, arguments.isComplete else { return nil }
        if body.isEmpty {
            diagnostics.error(
                .shapeMismatch, "Residual has no layers: it would only double its input", at: call.nameNode)
            return nil
        }
        return .residual(body)
    }

    /// `Sequential { ... }` takes its layers in the block and nothing in parentheses.
    private func checkCallForm(_ call: Call) -> Bool {
        let arguments = Arguments(
            call.arguments, parameters: [], callee: "Sequential", at: call.syntax, diagnostics: diagnostics)
        var isValid = arguments.isComplete
        if call.block == nil {
            diagnostics.error(.missingArgument, "Sequential is missing its `{ ... }` block of layers", at: call.syntax)
            isValid = false
        }
        if let extra = call.syntax.additionalTrailingClosures.first {
            diagnostics.error(.unsupported, "Sequential takes one `{ ... }` block", at: extra)
            isValid = false
        }
        return isValid
    }

    /// One layer, or nil after reporting why it is not one.
    func layer(_ expression: ExprSyntax) -> Layer? {
        guard let call = Call(expression) else {
            reportNotALayer(expression)
            return nil
        }
        guard let kind = Layer.Kind(name: call.name) else {
            let known = Layer.Kind.allCases.map(\.name)
            let hint =
                closestName(to: call.name, in: known).map { "; did you mean `\($0)`?" } ?? "; layers are \(list(known))"
            diagnostics.error(.unknownLayer, "unknown layer `\(call.name)`\(hint)", at: call.nameNode)
            return nil
        }
        if kind == .residual { return residual(call) }
        let hasBlock = call.rejectBlocks(diagnostics)
        let arguments = Arguments(
            call.arguments, parameters: kind.parameters, callee: kind.name, at: call.syntax,
            diagnostics: diagnostics)
        let layer = build(kind, arguments)
        return hasBlock || !arguments.isComplete ? nil : layer
    }

    private func reportNotALayer(_ expression: ExprSyntax) {
        if let reference = expression.as(DeclReferenceExprSyntax.self),
            let kind = Layer.Kind(name: reference.baseName.text)
        {
            diagnostics.error(.unsupported, "write the layer as a call: `\(kind.name)(...)`", at: expression)
        } else {
            diagnostics.error(
                .unsupported, "expected a layer such as `Dense(10)`; got `\(expression.snippet)`", at: expression)
        }
    }

    /// Every argument is read before any is rejected, so that all bad arguments are reported.
    private func build(_ kind: Layer.Kind, _ arguments: Arguments) -> Layer? {
        switch kind {
        case .dense:
            return arguments.integer("units", in: .size).map { .dense(units: $0) }
        case .conv2D:
            return convolution(arguments)
        case .maxPool2D, .avgPool2D:
            let size = arguments.integer("size", in: .size)
            let stride = arguments.integer("stride", in: .size, default: size)
            guard let size, let stride else { return nil }
            return kind == .maxPool2D ? .maxPool2D(size: size, stride: stride) : .avgPool2D(size: size, stride: stride)
        case .globalAvgPool: return .globalAvgPool
        case .flatten: return .flatten
        case .activation(let activation):
            guard let argument = activation.argument else { return .activation(activation.activation(nil)) }
            return arguments.real(argument.label, in: .openUnit, default: argument.defaultValue).map {
                .activation(activation.activation($0))
            }
        case .dropout:
            return arguments.real("rate", in: .fraction).map { .dropout(rate: $0) }
        case .batchNorm:
            let momentum = arguments.real("momentum", in: .openUnit, default: Layer.Kind.defaultBatchNormMomentum)
            let epsilon = arguments.real("epsilon", in: .openUnit, default: Layer.Kind.defaultBatchNormEpsilon)
            guard let momentum, let epsilon else { return nil }
            return .batchNorm(momentum: momentum, epsilon: epsilon)
        case .residual:
            preconditionFailure("read by residual(_:)")
        }
    }

    private func convolution(_ arguments: Arguments) -> Layer? {
        let filters = arguments.integer("filters", in: .size)
        let kernel = arguments.integer("kernel", in: .size)
        let stride = arguments.integer("stride", in: .size, default: 1)
        let padding = arguments.integer("padding", in: .between(0, IntegerRange.maxSize), default: 0)
        guard let filters, let kernel, let stride, let padding else { return nil }
        // More padding than half the kernel would make outputs that see only zeros.
        if padding > kernel / 2, let node = arguments["padding"] {
            diagnostics.error(
                .outOfRange,
                "Conv2D padding must be at most half the kernel (\(kernel / 2) for kernel \(kernel)); got \(padding)",
                at: node)
            return nil
        }
        return .conv2D(filters: filters, kernel: kernel, stride: stride, padding: padding)
    }
}

/// Shape checks: each layer must accept its input, and the last must give one score per class.
struct ShapeChecker {
    let diagnostics: DiagnosticCollector

    func check(_ checked: CheckedNetwork, input: FeatureShape, classes: Int?) {
        switch checked.network.shapes(input: input) {
        case .failure(let failure):
            diagnostics.error(.shapeMismatch, failure.error.message, at: checked.layerNodes[failure.layerIndex])
        case .success(let shapes):
            guard let classes, let last = shapes.last, let lastNode = checked.layerNodes.last else { return }
            if last != .vector(classes) {
                diagnostics.error(.shapeMismatch, finalShapeMessage(checked.network.name, last, classes), at: lastNode)
            }
        }
    }

    private func finalShapeMessage(_ network: String, _ shape: FeatureShape, _ classes: Int) -> String {
        switch shape {
        case .vector(let width):
            return
                "the last layer of `\(network)` gives \(width) outputs but classes is \(classes); end it with Dense(\(classes))"
        case .image:
            return
                "the last layer of `\(network)` gives an image \(shape) but must give \(classes) class scores; end it with Flatten() and Dense(\(classes))"
        }
    }
}
