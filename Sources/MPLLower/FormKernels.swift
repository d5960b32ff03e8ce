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

/// The most equations a value read by several loops may take to recompute in each of them
/// (`placements(of:fuseElementwise:recomputeCheapValues:)`).
let recomputedOpsLimit = 4
/// Smaller values are stored as before: a pass over them costs little.
let recomputedMinimumFloats = 1 << 15

/// Where each value lives. With `recomputeCheapValues`, an element-wise value read by several loops or reductions
/// that each evaluate it once per element (and by nothing else) is computed inside each of them instead of being
/// written to memory by a loop of its own and read back, when that takes at most `recomputedOpsLimit` equations
/// from values in memory and the value has at least `recomputedMinimumFloats` elements: BatchNorm's x − mean (read by the variance's sum and by the normalisation) or the
/// scaled cotangent of its backward pass. Each reader applies the same operations to the same operands, so the
/// numbers are the same; a pass over a large tensor is saved per value.
func placements(of graph: Graph, fuseElementwise: Bool, recomputeCheapValues: Bool = false) -> [Placement] {
    let count = graph.equations.count
    var uses = [Int](repeating: 0, count: count)
    var lastConsumer = [Value?](repeating: nil, count: count)
    var onlyLoopReaders = [Bool](repeating: true, count: count)
    var onlyReadersEvaluatingOnce = [Bool](repeating: true, count: count)
    var isResult = [Bool](repeating: false, count: count)
    for consumer in graph.values {
        let op = graph.op(of: consumer)
        for operand in op.operands {
            uses[operand.id] += 1
            lastConsumer[operand.id] = consumer
            if !readsInLoop(op) { onlyLoopReaders[operand.id] = false }
            if !evaluatesOperandsOnce(op) { onlyReadersEvaluatingOnce[operand.id] = false }
        }
    }
    for result in graph.results { isResult[result.value.id] = true }

    var placement = [Placement](repeating: .memory, count: count)
    /// The fused element-wise equations a value's expression evaluates (itself included), for the inline ones.
    var inlineOps = [Set<Value>](repeating: [], count: count)
    for value in graph.values {
        switch graph.op(of: value).family {
        case .input:
            placement[value.id] = .input
        case .view:
            placement[value.id] = .view
        case .fill, .broadcast:
            // Free to recompute anywhere; memory only for readers that need a buffer (a GEMM, a result).
            placement[value.id] = isResult[value.id] || !onlyLoopReaders[value.id] ? .memory : .inline
        case .elementwise:
            guard fuseElementwise && !isResult[value.id] else { break }
            if uses[value.id] == 1 && evaluatesOperandsOnce(graph.op(of: lastConsumer[value.id]!)) {
                placement[value.id] = .inline
            } else if recomputeCheapValues && uses[value.id] > 1 && onlyReadersEvaluatingOnce[value.id]
                && graph.shape(of: value).count >= recomputedMinimumFloats
            {
                var ops: Set<Value> = [value]
                for operand in graph.op(of: value).operands where placement[operand.id] == .inline {
                    ops.formUnion(inlineOps[operand.id])
                }
                // A sum of GEMM products (a gradient over blocks of rows) stays: the last GEMM computes it in its
                // epilogue, where its readers would read both products.
                let readsProduct = ops.contains { op in
                    graph.op(of: op).operands.contains { operand in
                        if case .matmul = graph.op(of: operand) { return true }
                        return false
                    }
                }
                if ops.count <= recomputedOpsLimit && !readsProduct { placement[value.id] = .inline }
            }
            if placement[value.id] == .inline {
                inlineOps[value.id] = [value]
                for operand in graph.op(of: value).operands where placement[operand.id] == .inline {
                    inlineOps[value.id].formUnion(inlineOps[operand.id])
                }
            }
        case .reduction, .structured:
            break
        }
    }
    return placement
}

@Sendable func formKernels(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    let graph = function.graph
    let placement = placements(
        of: graph, fuseElementwise: options.fuseElementwise, recomputeCheapValues: options.recomputeCheapValues)
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
            // A value read twice in the loop (recomputed values may be) is computed once.
            if statements.contains(where: { $0.value == value }) { return .local(value) }
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
