// form-kernels: decides which values live in memory and builds one kernel per value that does, in graph
// order. Element-wise values with a single element-wise consumer are fused into that consumer's loop.

import MPLIR

/// Where a value's elements come from when something reads it.
enum Placement: Equatable {
    /// An entry point input, in its arena or argument.
    case input
    /// The same memory as its operand (reshape, stopGradient) or a row range of it (sliceRows): no copy.
    case view
    /// Computed inside each consumer's loop: a constant literal, a broadcast read, or a fused scalar.
    case inline
    /// Written to memory by its own kernel.
    case memory
}

/// Whether `op` reads its operands element by element inside a loop (so they may be fused into it).
private func readsInLoop(_ op: Op) -> Bool {
    switch op.family {
    case .elementwise, .broadcast, .reduction: return true
    case .input, .fill, .view, .structured: return false
    }
}

/// Whether `op` evaluates each operand element exactly once, at its own index (so a fused producer is not
/// recomputed). A broadcast reads each operand element many times, so it does not qualify.
private func evaluatesOperandsOnce(_ op: Op) -> Bool {
    switch op.family {
    case .elementwise, .reduction: return true
    case .input, .fill, .broadcast, .view, .structured: return false
    }
}

func placements(of graph: Graph, fuseElementwise: Bool) -> [Placement] {
    let count = graph.equations.count
    var uses = [Int](repeating: 0, count: count)
    var lastConsumer = [Value?](repeating: nil, count: count)
    var onlyLoopReaders = [Bool](repeating: true, count: count)
    var isResult = [Bool](repeating: false, count: count)
    for consumer in graph.values {
        let op = graph.op(of: consumer)
        for operand in op.operands {
            uses[operand.id] += 1
            lastConsumer[operand.id] = consumer
            if !readsInLoop(op) { onlyLoopReaders[operand.id] = false }
        }
    }
    for result in graph.results { isResult[result.value.id] = true }

    return graph.values.map { value in
        switch graph.op(of: value).family {
        case .input:
            return .input
        case .view:
            return .view
        case .fill, .broadcast:
            // Free to recompute anywhere; memory only for readers that need a buffer (a GEMM, a result).
            return isResult[value.id] || !onlyLoopReaders[value.id] ? .memory : .inline
        case .elementwise:
            let fusable =
                fuseElementwise && !isResult[value.id] && uses[value.id] == 1
                && evaluatesOperandsOnce(graph.op(of: lastConsumer[value.id]!))
            return fusable ? .inline : .memory
        case .reduction, .structured:
            return .memory
        }
    }
}

@Sendable func formKernels(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    let graph = function.graph
    let placement = placements(of: graph, fuseElementwise: options.fuseElementwise)
    var next = function
    next.kernels = graph.values.filter { placement[$0.id] == .memory }.map { kernel(computing: $0, graph, placement) }
    return next
}

/// The kernel that writes `value` (placed in memory) and everything fused into it.
private func kernel(computing value: Value, _ graph: Graph, _ placement: [Placement]) -> Kernel {
    var loop = LoopBuilder(graph: graph, placement: placement)
    let shape = graph.shape(of: value)
    func windowKernel(_ op: WindowOp, _ operands: [Value], _ geometry: WindowGeometry) -> Kernel {
        Kernel(
            body: .window(WindowKernel(op: op, operands: operands, geometry: geometry, output: value)),
            equations: [value])
    }
    func single(_ body: KernelBody) -> Kernel { Kernel(body: body, equations: [value]) }

    switch graph.op(of: value) {
    case .input, .reshape, .sliceRows, .stopGradient:
        preconditionFailure("\(graph.text(of: value)) has no kernel: it is an input or a view")
    case .constant, .unary, .binary, .broadcast:
        loop.appendStatement(computing: value, isStored: true)
        return Kernel(body: .loop(LoopNest(dims: shape.dims, statements: loop.statements)), equations: loop.equations)
    case .reduceSum(let operand, let axes), .reduceMax(let operand, let axes):
        let isSum: Bool = {
            if case .reduceSum = graph.op(of: value) { return true }
            return false
        }()
        let input = loop.expression(of: operand, axes: Array(0..<graph.shape(of: operand).rank))
        let reduction = Reduction(
            kind: isSum ? .sum : .max, dims: graph.shape(of: operand).dims, reducedAxes: axes.sorted(),
            statements: loop.statements, input: input, output: value)
        return Kernel(body: .reduction(reduction), equations: (loop.equations + [value]).sorted())
    case .matmul(let a, let b, let transposeA, let transposeB):
        let k = transposeA ? graph.shape(of: a)[0] : graph.shape(of: a)[1]
        return single(
            .gemm(
                GEMM(
                    a: a, b: b, transposeA: transposeA, transposeB: transposeB, m: shape[0], n: shape[1], k: k,
                    product: value, epilogue: [], output: value)))
    case .im2col(let a, let g): return windowKernel(.im2col, [a], g)
    case .col2im(let a, let g): return windowKernel(.col2im, [a], g)
    case .maxPool(let a, let g): return windowKernel(.maxPool, [a], g)
    case .maxPoolSelect(let source, let tangent, let g): return windowKernel(.maxPoolSelect, [source, tangent], g)
    case .maxPoolScatter(let source, let cotangent, let g):
        return windowKernel(.maxPoolScatter, [source, cotangent], g)
    case .avgPool(let a, let g): return windowKernel(.avgPool, [a], g)
    case .avgPoolTranspose(let a, let g): return windowKernel(.avgPoolTranspose, [a], g)
    case .padRows(let a, let start): return single(.padRows(operand: a, start: start, output: value))
    case .oneHotArgmax(let a): return single(.oneHotArgmax(operand: a, output: value))
    case .oneHotSample(let p, let u): return single(.oneHotSample(probabilities: p, uniform: u, output: value))
    case .allReduceSum(let a): return single(.allReduceSum(operand: a, output: value))
    }
}

/// Builds the statements of one loop: fused producers first (as scalars), in dependency order.
private struct LoopBuilder {
    let graph: Graph
    let placement: [Placement]
    var statements: [Statement] = []
    private var computed: [Value] = []

    init(graph: Graph, placement: [Placement]) {
        self.graph = graph
        self.placement = placement
    }

    /// The IR equations this loop evaluates, including the constants and broadcasts it reads through.
    var equations: [Value] { computed.sorted() }

    private mutating func note(_ value: Value) {
        if !computed.contains(value) { computed.append(value) }
    }

    /// How to read `value` at the loop index where value axis k is loop dimension `axes[k]`.
    mutating func expression(of value: Value, axes: [Int]) -> ScalarExpr {
        switch graph.op(of: value) {
        case .constant(let c):
            note(value)
            return .constant(c)
        case .broadcast(let operand, let broadcastAxes):
            // Operand axis i is broadcast axis broadcastAxes[i], which is loop dimension axes[broadcastAxes[i]].
            note(value)
            return expression(of: operand, axes: broadcastAxes.map { axes[$0] })
        case .unary, .binary:
            guard placement[value.id] == .inline else { return .load(value, axes: axes) }
            precondition(axes == Array(0..<axes.count), "a fused value is read at the loop's own index")
            appendStatement(computing: value, isStored: false)
            return .local(value)
        case .input, .reduceSum, .reduceMax, .reshape, .matmul, .im2col, .col2im, .maxPool, .maxPoolSelect,
            .maxPoolScatter,
            .avgPool, .avgPoolTranspose, .sliceRows, .padRows, .oneHotArgmax, .oneHotSample, .stopGradient,
            .allReduceSum:
            return .load(value, axes: axes)
        }
    }

    /// Appends `value = op(operands)` after the statements of its fused operands.
    mutating func appendStatement(computing value: Value, isStored: Bool) {
        let identity = Array(0..<graph.shape(of: value).rank)
        let expression: ScalarExpr
        switch graph.op(of: value) {
        case .constant(let c):
            expression = .constant(c)
        case .unary(let u, let a):
            expression = .unary(u, self.expression(of: a, axes: identity))
        case .binary(let b, let x, let y):
            let left = self.expression(of: x, axes: identity)
            expression = .binary(b, left, self.expression(of: y, axes: identity))
        case .broadcast(let operand, let axes):
            expression = self.expression(of: operand, axes: axes)
        case .input, .reduceSum, .reduceMax, .reshape, .matmul, .im2col, .col2im, .maxPool, .maxPoolSelect,
            .maxPoolScatter,
            .avgPool, .avgPoolTranspose, .sliceRows, .padRows, .oneHotArgmax, .oneHotSample, .stopGradient,
            .allReduceSum:
            preconditionFailure("\(graph.text(of: value)) is not element-wise")
        }
        note(value)
        statements.append(Statement(value: value, expression: expression, isStored: isStored))
    }
}
