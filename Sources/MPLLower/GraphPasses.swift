// The graph passes: graph in, graph out, every one rebuilding the graph through `Graph.append`, which
// re-infers and checks each shape, so a pass cannot silently produce an ill-typed equation.

import MPLIR

/// Removes work that has no effect: identities (x·1, x+0, x−0, x/1, reshape or broadcast to the same
/// shape, stopGradient, which only matters to autodiff), ops on constants (folded to one constant),
/// and chains (reshape of reshape, broadcast of broadcast, slice of slice) collapsed to one op.
/// x·0 folds to 0: this ignores IEEE inf·0 = NaN, which only an overflowing model would notice.
@Sendable func simplify(_ graph: Graph) -> Graph {
    var simplified = Graph()
    var newValue: [Value] = []
    for equation in graph.equations {
        let op = equation.op.mapOperands { newValue[$0.id] }
        simplified.origin = equation.origin
        newValue.append(simplified.appendSimplified(op, shape: equation.shape))
    }
    simplified.results = graph.results.map { ($0.name, newValue[$0.value.id]) }
    return simplified
}

/// Gives equal equations (same op on the same operands, same shape) one value.
@Sendable func eliminateCommonSubexpressions(_ graph: Graph) -> Graph {
    var deduplicated = Graph()
    var newValue: [Value] = []
    var firstValue: [Equation: Value] = [:]  // looked up, never iterated
    for equation in graph.equations {
        let key = Equation(op: equation.op.mapOperands { newValue[$0.id] }, shape: equation.shape)
        // −0 == 0 for Double equality, but 1/−0 ≠ 1/0: keep negative zeros apart.
        let isNegativeZero = {
            if case .constant(let c) = key.op { return c == 0 && c.sign == .minus }
            return false
        }()
        if let existing = firstValue[key], !isNegativeZero {
            newValue.append(existing)
        } else {
            deduplicated.origin = equation.origin  // the first of equal equations keeps its origin
            let value = deduplicated.append(key.op, shape: key.shape)
            firstValue[key] = value
            newValue.append(value)
        }
    }
    deduplicated.results = graph.results.map { ($0.name, newValue[$0.value.id]) }
    return deduplicated
}

/// Keeps only the equations the results depend on, in their original order.
@Sendable func eliminateDeadCode(_ graph: Graph) -> Graph {
    var isLive = [Bool](repeating: false, count: graph.equations.count)
    for result in graph.results { isLive[result.value.id] = true }
    for id in graph.equations.indices.reversed() where isLive[id] {
        for operand in graph.equations[id].op.operands { isLive[operand.id] = true }
    }
    var live = Graph()
    var newValue = [Value](repeating: Value(-1), count: graph.equations.count)
    for (id, equation) in graph.equations.enumerated() where isLive[id] {
        live.origin = equation.origin
        newValue[id] = live.append(equation.op.mapOperands { newValue[$0.id] }, shape: equation.shape)
    }
    live.results = graph.results.map { ($0.name, newValue[$0.value.id]) }
    return live
}

/// Element-wise values whose only reader is an element-wise op that evaluates each operand element once
/// (and that are not results): form-kernels fuses them into that reader's loop as a scalar, so they never
/// reach memory. Graph passes use this to avoid turning such a value into a view, which would store it.
func fusedScalars(_ graph: Graph) -> [Bool] {
    let uses = graph.useCounts()
    var elementwiseReader = [Bool](repeating: true, count: graph.equations.count)
    for value in graph.values {
        let op = graph.op(of: value)
        for operand in op.operands where op.family != .elementwise { elementwiseReader[operand.id] = false }
    }
    return graph.values.map { value in
        graph.op(of: value).family == .elementwise && uses[value.id] == 1 && elementwiseReader[value.id]
    }
}

/// share-relu-masks: the ReLU derivative step(x) becomes step(relu(x)) (equal for every x) when relu(x) is
/// computed anyway, so the backward pass reads the activation the forward pass keeps and the pre-activation
/// need not be stored at all. And relu(reshape(a)), when the activation is stored, becomes reshape(relu(a)):
/// a convolution's ReLU then runs over [N·OH·OW, F] in the loop of its GEMM and bias (one epilogue).
@Sendable func shareReLUMasks(_ graph: Graph) -> Graph {
    let fused = fusedScalars(graph)
    var rewritten = Graph()
    var newValue: [Value] = []
    var reluOf: [Value: Value] = [:]  // new x → new value equal to relu(x); looked up, never iterated
    for (id, equation) in graph.equations.enumerated() {
        let op = equation.op.mapOperands { newValue[$0.id] }
        rewritten.origin = equation.origin
        let value: Value
        switch op {
        case .unary(.step, let x):
            value = rewritten.append(.unary(.step, reluOf[x] ?? x))
        case .unary(.relu, let x):
            if case .reshape(let a) = rewritten.op(of: x), !fused[id] {
                let inner = reluOf[a] ?? rewritten.append(.unary(.relu, a))
                reluOf[a] = inner
                value = rewritten.append(.reshape(inner), shape: equation.shape)
            } else {
                value = reluOf[x] ?? rewritten.append(.unary(.relu, x))
            }
            reluOf[x] = value
        default:
            value = rewritten.append(op, shape: equation.shape)
        }
        newValue.append(value)
    }
    rewritten.results = graph.results.map { ($0.name, newValue[$0.value.id]) }
    return rewritten
}

/// mask-pooled-cotangents: a ReLU's derivative applied after a max-pool's transpose,
/// step(x) · maxPoolScatter(x, g), becomes maxPoolScatter(x, g · step(maxPool(x))). The scatter puts each
/// window's cotangent at that window's maximum, where x equals maxPool(x), and zeros elsewhere, so both are
/// equal; but the mask is now applied to the pooled cotangent (k·k times smaller for a k×k pool) and reads the
/// pooled activation the forward pass keeps, instead of a pass over the full-size cotangent and activation.
@Sendable func maskPooledCotangents(_ graph: Graph) -> Graph {
    let uses = graph.useCounts()
    var rewritten = Graph()
    var newValue: [Value] = []
    var usesOfNew: [Value: Int] = [:]  // new scatter value → uses of the old one; looked up, never iterated
    for (id, equation) in graph.equations.enumerated() {
        let op = equation.op.mapOperands { newValue[$0.id] }
        rewritten.origin = equation.origin
        var value: Value? = nil
        if case .binary(.mul, let a, let b) = op {
            for (scattered, mask) in [(a, b), (b, a)] where value == nil {
                guard case .maxPoolScatter(let x, let g, let geometry) = rewritten.op(of: scattered),
                    usesOfNew[scattered] == 1, case .unary(.step, let masked) = rewritten.op(of: mask), masked == x
                else { continue }
                let pooledMask = rewritten.append(.unary(.step, rewritten.append(.maxPool(x, geometry))))
                let maskedCotangent = rewritten.append(.binary(.mul, g, pooledMask))
                value = rewritten.append(
                    .maxPoolScatter(source: x, cotangent: maskedCotangent, geometry), shape: equation.shape)
            }
        }
        let new = value ?? rewritten.append(op, shape: equation.shape)
        if case .maxPoolScatter = op { usesOfNew[new] = uses[id] }
        newValue.append(new)
    }
    rewritten.results = graph.results.map { ($0.name, newValue[$0.value.id]) }
    return rewritten
}

extension Op {
    /// The same op with every operand replaced by `transform(operand)`.
    func mapOperands(_ transform: (Value) -> Value) -> Op {
        switch self {
        case .input, .constant: return self
        case .unary(let u, let a): return .unary(u, transform(a))
        case .binary(let b, let x, let y): return .binary(b, transform(x), transform(y))
        case .broadcast(let a, let axes): return .broadcast(transform(a), axes: axes)
        case .reduceSum(let a, let axes): return .reduceSum(transform(a), axes: axes)
        case .reduceMax(let a, let axes): return .reduceMax(transform(a), axes: axes)
        case .reshape(let a): return .reshape(transform(a))
        case .matmul(let a, let b, let ta, let tb):
            return .matmul(transform(a), transform(b), transposeA: ta, transposeB: tb)
        case .im2col(let a, let g): return .im2col(transform(a), g)
        case .col2im(let a, let g): return .col2im(transform(a), g)
        case .maxPool(let a, let g): return .maxPool(transform(a), g)
        case .maxPoolSelect(let s, let t, let g): return .maxPoolSelect(source: transform(s), tangent: transform(t), g)
        case .maxPoolScatter(let s, let c, let g):
            return .maxPoolScatter(source: transform(s), cotangent: transform(c), g)
        case .avgPool(let a, let g): return .avgPool(transform(a), g)
        case .avgPoolTranspose(let a, let g): return .avgPoolTranspose(transform(a), g)
        case .sliceRows(let a, let start): return .sliceRows(transform(a), start: start)
        case .padRows(let a, let start): return .padRows(transform(a), start: start)
        case .oneHotArgmax(let a): return .oneHotArgmax(transform(a))
        case .oneHotSample(let p, let u): return .oneHotSample(probabilities: transform(p), uniform: transform(u))
        case .stopGradient(let a): return .stopGradient(transform(a))
        case .allReduceSum(let a): return .allReduceSum(transform(a))
        }
    }
}

extension Graph {
    /// How often each value is read, by id: once per operand position of every equation, once per result.
    func useCounts() -> [Int] {
        var uses = [Int](repeating: 0, count: equations.count)
        for value in values { for operand in op(of: value).operands { uses[operand.id] += 1 } }
        for result in results { uses[result.value.id] += 1 }
        return uses
    }

    func constantValue(_ value: Value) -> Double? {
        if case .constant(let c) = op(of: value) { return c }
        return nil
    }

    /// Appends `op` (whose operands are already in this graph) or returns a simpler equivalent value.
    mutating func appendSimplified(_ op: Op, shape: Shape) -> Value {
        func constant(_ c: Double) -> Value { append(.constant(c), shape: shape) }
        func isConstant(_ v: Value, _ c: Double) -> Bool { constantValue(v) == c }
        switch op {
        case .input, .im2col, .col2im, .maxPool, .maxPoolSelect, .maxPoolScatter, .avgPool, .avgPoolTranspose,
            .oneHotArgmax, .oneHotSample:
            break
        case .constant:
            break
        case .stopGradient(let a):
            return a
        case .unary(let u, let a):
            if let c = constantValue(a) { return constant(u.evaluate(c)) }
            if u == .neg, case .unary(.neg, let inner) = self.op(of: a) { return inner }
        case .binary(let b, let x, let y):
            if let cx = constantValue(x), let cy = constantValue(y) { return constant(b.evaluate(cx, cy)) }
            switch b {
            case .add:
                if isConstant(y, 0) { return x }
                if isConstant(x, 0) { return y }
            case .sub:
                if isConstant(y, 0) { return x }
                if isConstant(x, 0) { return append(.unary(.neg, y)) }
            case .mul:
                if isConstant(y, 1) { return x }
                if isConstant(x, 1) { return y }
                if isConstant(x, 0) || isConstant(y, 0) { return constant(0) }
            case .div:
                if isConstant(y, 1) { return x }
            case .max, .greaterEqual:
                break
            }
        case .broadcast(let a, let axes):
            if let c = constantValue(a) { return constant(c) }
            if self.shape(of: a) == shape { return a }
            if case .broadcast(let inner, let innerAxes) = self.op(of: a) {
                return append(.broadcast(inner, axes: innerAxes.map { axes[$0] }), shape: shape)
            }
        case .reduceSum(let a, let axes):
            if axes.isEmpty { return a }
            if let c = constantValue(a) { return constant(c * Double(self.shape(of: a).count / max(shape.count, 1))) }
        case .reduceMax(let a, let axes):
            if axes.isEmpty { return a }
            if let c = constantValue(a) { return constant(c) }
        case .reshape(let a):
            if self.shape(of: a) == shape { return a }
            if let c = constantValue(a) { return constant(c) }
            if case .reshape(let inner) = self.op(of: a) { return appendSimplified(.reshape(inner), shape: shape) }
        case .matmul(let a, let b, _, _):
            if isConstant(a, 0) || isConstant(b, 0) { return constant(0) }
        case .sliceRows(let a, let start):
            if self.shape(of: a) == shape { return a }
            if let c = constantValue(a) { return constant(c) }
            if case .sliceRows(let inner, let innerStart) = self.op(of: a) {
                return append(.sliceRows(inner, start: innerStart + start), shape: shape)
            }
        case .padRows(let a, _):
            if self.shape(of: a) == shape { return a }
            if isConstant(a, 0) { return constant(0) }
        case .allReduceSum(let a):
            // Zero on every rank sums to zero; another constant c sums to R·c, so it stays.
            if isConstant(a, 0) { return constant(0) }
        }
        return append(op, shape: shape)
    }
}
