// Shape rules for every op. The verifier re-runs them over a whole graph.

public struct TypeError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Graph {
    /// The result shape of `op`. Ops whose result shape is not determined by their operands
    /// (inputs, constants, broadcast, reshape, row slices) take it from `explicit`.
    func inferShape(_ op: Op, explicit: Shape?) throws -> Shape {
        for operand in op.operands where operand.id >= equations.count || operand.id < 0 {
            throw TypeError("operand \(operand) is not defined before its use")
        }
        func need(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw TypeError(message()) }
        }
        func given() throws -> Shape {
            guard let explicit else { throw TypeError("\(op) needs an explicit result shape") }
            return explicit
        }
        func checked(_ inferred: Shape) throws -> Shape {
            if let explicit { try need(explicit == inferred, "declared \(explicit) but the op gives \(inferred)") }
            return inferred
        }
        switch op {
        case .input, .constant:
            return try given()
        case .unary(_, let a), .stopGradient(let a), .oneHotArgmax(let a), .allReduceSum(let a):
            return try checked(shape(of: a))
        case .binary(_, let a, let b):
            try need(shape(of: a) == shape(of: b), "binary operands \(shape(of: a)) and \(shape(of: b)) differ")
            return try checked(shape(of: a))
        case .broadcast(let a, let axes):
            let out = try given()
            let inShape = shape(of: a)
            try need(axes.count == inShape.rank, "broadcast axes \(axes) do not match operand rank \(inShape.rank)")
            try need(axes == axes.sorted() && Set(axes).count == axes.count, "broadcast axes must increase")
            for (i, axis) in axes.enumerated() {
                try need(
                    axis >= 0 && axis < out.rank && out[axis] == inShape[i],
                    "broadcast of \(inShape) to \(out) along \(axes)")
            }
            return out
        case .reduceSum(let a, let axes), .reduceMax(let a, let axes):
            let inShape = shape(of: a)
            try need(
                axes.allSatisfy { $0 >= 0 && $0 < inShape.rank } && Set(axes).count == axes.count,
                "bad reduce axes \(axes)")
            return try checked(Shape(inShape.dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element)))
        case .reshape(let a):
            let out = try given()
            try need(out.count == shape(of: a).count, "reshape of \(shape(of: a)) to \(out) changes the element count")
            return out
        case .matmul(let a, let b, let ta, let tb):
            let sa = shape(of: a)
            let sb = shape(of: b)
            try need(sa.rank == 2 && sb.rank == 2, "matmul needs rank-2 operands, got \(sa) and \(sb)")
            let (m, ka) = ta ? (sa[1], sa[0]) : (sa[0], sa[1])
            let (kb, n) = tb ? (sb[1], sb[0]) : (sb[0], sb[1])
            try need(ka == kb, "matmul inner sizes \(ka) and \(kb) differ")
            return try checked(Shape([m, n]))
        case .im2col(let a, let g):
            try need(shape(of: a) == g.inputShape, "im2col input \(shape(of: a)) is not \(g.inputShape)")
            return try checked(g.columnsShape)
        case .col2im(let a, let g):
            try need(shape(of: a) == g.columnsShape, "col2im input \(shape(of: a)) is not \(g.columnsShape)")
            return try checked(g.inputShape)
        case .maxPool(let a, let g), .avgPool(let a, let g):
            try need(shape(of: a) == g.inputShape, "pool input \(shape(of: a)) is not \(g.inputShape)")
            return try checked(g.pooledShape)
        case .avgPoolTranspose(let a, let g):
            try need(shape(of: a) == g.pooledShape, "pool transpose input \(shape(of: a)) is not \(g.pooledShape)")
            return try checked(g.inputShape)
        case .maxPoolSelect(let source, let tangent, let g):
            try need(shape(of: source) == g.inputShape && shape(of: tangent) == g.inputShape, "maxPoolSelect operands")
            return try checked(g.pooledShape)
        case .maxPoolScatter(let source, let cotangent, let g):
            try need(
                shape(of: source) == g.inputShape && shape(of: cotangent) == g.pooledShape, "maxPoolScatter operands")
            return try checked(g.inputShape)
        case .sliceRows(let a, let start):
            let out = try given()
            let inShape = shape(of: a)
            try need(
                out.rank == inShape.rank && Array(out.dims.dropFirst()) == Array(inShape.dims.dropFirst()),
                "slice shape")
            try need(
                start >= 0 && start + out[0] <= inShape[0], "rows [\(start), \(start + out[0])) outside \(inShape)")
            return out
        case .padRows(let a, let start):
            let out = try given()
            let inShape = shape(of: a)
            try need(
                out.rank == inShape.rank && Array(out.dims.dropFirst()) == Array(inShape.dims.dropFirst()), "pad shape")
            try need(
                start >= 0 && start + inShape[0] <= out[0], "rows [\(start), \(start + inShape[0])) outside \(out)")
            return out
        case .oneHotSample(let p, let u):
            let sp = shape(of: p)
            try need(sp.rank == 2 && shape(of: u) == Shape([sp[0]]), "oneHotSample needs [N,K] and [N]")
            return try checked(sp)
        }
    }

    /// Checks SSA order and every shape; returns the problems found (empty when the graph is well formed).
    public func verify() -> [String] {
        var problems: [String] = []
        var prefix = Graph()
        for (i, equation) in equations.enumerated() {
            do {
                let inferred = try prefix.inferShape(equation.op, explicit: equation.shape)
                if inferred != equation.shape {
                    problems.append("%\(i): shape \(equation.shape) but inferred \(inferred)")
                }
            } catch {
                problems.append("%\(i): \(error)")
            }
            prefix.equations.append(equation)
        }
        for result in results where result.value.id >= equations.count {
            problems.append("result \(result.name) refers to undefined \(result.value)")
        }
        return problems
    }
}
