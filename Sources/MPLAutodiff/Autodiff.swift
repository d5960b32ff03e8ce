// Forward mode (JVP) and reverse mode (VJP) over the same graph, as rule tables over the closed `Op`. The
// element-wise ops' derivatives are defined with the ops (MPLIR/ElementwiseOps.swift) and shared by both modes.
// Both append ordinary equations to the graph they differentiate, so they compose freely:
// the VJP of values produced by a JVP is the gradient of a directional derivative (MPL's soft meta-gradient).

import MPLIR

public enum Autodiff {
    /// Forward mode. Given tangents for `wrt`, appends the equations of the tangents of every value that
    /// depends on them and returns the tangents of `outputs` (a zero constant where an output does not depend on `wrt`).
    public static func jvp(_ graph: inout Graph, outputs: [Value], wrt: [Value], tangents: [Value]) -> [Value] {
        precondition(wrt.count == tangents.count, "one tangent per input")
        var tangent: [Value: Value] = [:]
        for (x, t) in zip(wrt, tangents) {
            precondition(graph.shape(of: x) == graph.shape(of: t), "tangent shape must match its input")
            tangent[x] = t
        }
        let last = outputs.map(\.id).max() ?? -1
        let first = wrt.map(\.id).min() ?? 0
        for id in first..<max(first, last + 1) {
            let value = Value(id)
            guard tangent[value] == nil else { continue }
            let op = graph.op(of: value)
            guard op.operands.contains(where: { tangent[$0] != nil }) else { continue }
            let origin = graph.origin(of: value)?.differentiated(.jvp)
            if let t = graph.within(origin, { jvpRule(&$0, value: value, op: op, tangent: tangent) }) {
                tangent[value] = t
            }
        }
        return outputs.map { y in
            tangent[y] ?? graph.within(graph.origin(of: y)?.differentiated(.jvp)) { $0.constant(0, $0.shape(of: y)) }
        }
    }

    /// Reverse mode. Appends the equations of ∂⟨seed, output⟩/∂x for every x in `wrt` and returns them
    /// (a zero constant for an x the output does not depend on). `seed` defaults to 1 for a scalar output.
    public static func vjp(_ graph: inout Graph, output: Value, seed: Value? = nil, wrt: [Value]) -> [Value] {
        let seedValue =
            seed
            ?? graph.within(graph.origin(of: output)?.differentiated(.vjp)) { $0.constant(1, $0.shape(of: output)) }
        precondition(graph.shape(of: seedValue) == graph.shape(of: output), "seed shape must match the output")
        let relevant = valuesBetween(graph, from: wrt, to: output)
        var cotangent: [Value: Value] = [output: seedValue]
        for id in stride(from: output.id, through: 0, by: -1) {
            let value = Value(id)
            guard relevant.contains(value), let c = cotangent[value] else { continue }
            let op = graph.op(of: value)
            let outer = graph.origin
            graph.origin = graph.origin(of: value)?.differentiated(.vjp)
            for (operand, contribution) in vjpRule(&graph, value: value, op: op, cotangent: c)
            where relevant.contains(operand) {
                cotangent[operand] = cotangent[operand].map { graph.add($0, contribution) } ?? contribution
            }
            graph.origin = outer
        }
        return wrt.map { cotangent[$0] ?? graph.constant(0, graph.shape(of: $0)) }
    }

    /// Values on some path from one of `sources` to `target`: the only ones whose cotangent matters.
    static func valuesBetween(_ graph: Graph, from sources: [Value], to target: Value) -> Set<Value> {
        var dependsOnSource = Set(sources)
        for id in 0...target.id where graph.op(of: Value(id)).operands.contains(where: dependsOnSource.contains) {
            dependsOnSource.insert(Value(id))
        }
        var reachesTarget: Set<Value> = [target]
        for id in stride(from: target.id, through: 0, by: -1) where reachesTarget.contains(Value(id)) {
            reachesTarget.formUnion(graph.op(of: Value(id)).operands)
        }
        return dependsOnSource.intersection(reachesTarget)
    }

    // MARK: - Forward rules

    /// The tangent of `value` given its operands' tangents; nil when the op is piecewise constant (zero tangent).
    static func jvpRule(_ g: inout Graph, value y: Value, op: Op, tangent: [Value: Value]) -> Value? {
        let shape = g.shape(of: y)
        /// An operand's tangent, materialising zero where it has none.
        func t(_ x: Value) -> Value { tangent[x] ?? g.constant(0, g.shape(of: x)) }
        switch op {
        case .input, .constant, .reduceMax, .oneHotArgmax, .oneHotSample, .stopGradient:
            return nil
        case .unary(let u, let x):
            let tx = t(x)
            switch u.derivative(&g, x: x, y: y) {
            case .zero: return nil
            case .negated: return g.neg(tx)
            case .times(let d): return g.mul(d, tx)
            case .dividedBy(let d): return g.div(tx, d)
            }
        case .binary(let b, let x1, let x2):
            return b.jvp(&g, x1, x2, y: y, tangent[x1], tangent[x2])
        case .broadcast(let x, let axes): return g.append(.broadcast(t(x), axes: axes), shape: shape)
        case .reduceSum(let x, let axes): return g.reduceSum(t(x), axes: axes)
        case .reshape(let x): return g.append(.reshape(t(x)), shape: shape)
        case .matmul(let a, let b, let ta, let tb):
            return g.addPresent(
                tangent[a].map { g.matmul($0, b, transposeA: ta, transposeB: tb) },
                tangent[b].map { g.matmul(a, $0, transposeA: ta, transposeB: tb) })
        case .im2col(let x, let geometry): return g.append(.im2col(t(x), geometry))
        case .col2im(let x, let geometry): return g.append(.col2im(t(x), geometry))
        case .maxPool(let x, let geometry): return g.append(.maxPoolSelect(source: x, tangent: t(x), geometry))
        case .maxPoolSelect(let source, let x, let geometry):
            return g.append(.maxPoolSelect(source: source, tangent: t(x), geometry))
        case .maxPoolScatter(let source, let x, let geometry):
            return g.append(.maxPoolScatter(source: source, cotangent: t(x), geometry))
        case .avgPool(let x, let geometry): return g.append(.avgPool(t(x), geometry))
        case .avgPoolTranspose(let x, let geometry): return g.append(.avgPoolTranspose(t(x), geometry))
        case .sliceRows(let x, let start): return g.append(.sliceRows(t(x), start: start), shape: shape)
        case .padRows(let x, let start): return g.append(.padRows(t(x), start: start), shape: shape)
        case .allReduceSum(let x): return g.append(.allReduceSum(t(x)))
        }
    }

    // MARK: - Reverse rules

    /// The contributions of `value`'s cotangent to its operands' cotangents (none for piecewise-constant ops).
    static func vjpRule(_ g: inout Graph, value y: Value, op: Op, cotangent c: Value) -> [(Value, Value)] {
        let shape = g.shape(of: y)
        switch op {
        case .input, .constant, .reduceMax, .oneHotArgmax, .oneHotSample, .stopGradient:
            return []
        case .unary(let u, let x):
            switch u.derivative(&g, x: x, y: y) {
            case .zero: return []
            case .negated: return [(x, g.neg(c))]
            case .times(let d): return [(x, g.mul(c, d))]
            case .dividedBy(let d): return [(x, g.div(c, d))]
            }
        case .binary(let b, let x1, let x2):
            return b.vjp(&g, x1, x2, y: y, cotangent: c)
        case .broadcast(let x, let axes):
            let summed = (0..<shape.rank).filter { !axes.contains($0) }
            return [(x, g.reduceSum(c, axes: summed))]
        case .reduceSum(let x, let axes):
            let xShape = g.shape(of: x)
            let kept = (0..<xShape.rank).filter { !axes.contains($0) }
            return [(x, g.append(.broadcast(c, axes: kept), shape: xShape))]
        case .reshape(let x): return [(x, g.append(.reshape(c), shape: g.shape(of: x)))]
        case .matmul(let a, let b, let ta, let tb):
            return matmulVJP(&g, a: a, b: b, ta: ta, tb: tb, c: c)
        case .im2col(let x, let geometry): return [(x, g.append(.col2im(c, geometry)))]
        case .col2im(let x, let geometry): return [(x, g.append(.im2col(c, geometry)))]
        case .maxPool(let x, let geometry):
            return [(x, g.append(.maxPoolScatter(source: x, cotangent: c, geometry)))]
        case .maxPoolSelect(let source, let x, let geometry):
            return [(x, g.append(.maxPoolScatter(source: source, cotangent: c, geometry)))]
        case .maxPoolScatter(let source, let x, let geometry):
            return [(x, g.append(.maxPoolSelect(source: source, tangent: c, geometry)))]
        case .avgPool(let x, let geometry): return [(x, g.append(.avgPoolTranspose(c, geometry)))]
        case .avgPoolTranspose(let x, let geometry): return [(x, g.append(.avgPool(c, geometry)))]
        case .sliceRows(let x, let start): return [(x, g.append(.padRows(c, start: start), shape: g.shape(of: x)))]
        case .padRows(let x, let start): return [(x, g.append(.sliceRows(c, start: start), shape: g.shape(of: x)))]
        // y = Σ_r x_r is seen by every rank, so ∂/∂x_r of Σ_r' ⟨c_r', y⟩ is Σ_r' c_r'.
        case .allReduceSum(let x): return [(x, g.append(.allReduceSum(c)))]
        }
    }

    /// Cotangents of C = op(A)·op(B), written so that no transpose is ever materialised.
    private static func matmulVJP(_ g: inout Graph, a: Value, b: Value, ta: Bool, tb: Bool, c: Value) -> [(
        Value, Value
    )] {
        switch (ta, tb) {
        case (false, false):  // C = A B:  dA = C̄ Bᵀ,  dB = Aᵀ C̄
            return [(a, g.matmul(c, b, transposeB: true)), (b, g.matmul(a, c, transposeA: true))]
        case (true, false):  // C = Aᵀ B:  dA = B C̄ᵀ,  dB = A C̄
            return [(a, g.matmul(b, c, transposeB: true)), (b, g.matmul(a, c))]
        case (false, true):  // C = A Bᵀ:  dA = C̄ B,  dB = C̄ᵀ A
            return [(a, g.matmul(c, b)), (b, g.matmul(c, a, transposeA: true))]
        case (true, true):  // C = Aᵀ Bᵀ:  dA = Bᵀ C̄ᵀ,  dB = C̄ᵀ Aᵀ
            return [
                (a, g.matmul(b, c, transposeA: true, transposeB: true)),
                (b, g.matmul(c, a, transposeA: true, transposeB: true)),
            ]
        }
    }
}
