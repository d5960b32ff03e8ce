// The Double-precision reference interpreter: the meaning of every op, written as plainly as possible.
// Finite-difference checks and the generated C are both judged against it. Element-wise ops evaluate
// through ElementwiseOps.swift, which constant folding calls too.

public struct InterpreterError: Error, CustomStringConvertible {
    public var description: String
}

/// Row-major multi-index helpers for NHWC windows.
private struct Window {
    let g: WindowGeometry
    /// Calls body(outputIndex, tap, inputIndex?) for every (output pixel, channel, window tap ky·k+kx);
    /// the input index is nil when the tap falls on padding.
    func forEachTap(_ body: (Int, Int, Int?) -> Void) {
        for n in 0..<g.batch {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    for c in 0..<g.channels {
                        let out = ((n * g.outHeight + oy) * g.outWidth + ox) * g.channels + c
                        for ky in 0..<g.kernel {
                            for kx in 0..<g.kernel {
                                let y = oy * g.stride + ky - g.padding
                                let x = ox * g.stride + kx - g.padding
                                let inside = y >= 0 && y < g.height && x >= 0 && x < g.width
                                body(
                                    out, ky * g.kernel + kx,
                                    inside ? ((n * g.height + y) * g.width + x) * g.channels + c : nil)
                            }
                        }
                    }
                }
            }
        }
    }

    /// For each pooled output, the input index of the first maximum of its window.
    func argmax(_ source: [Double]) -> [Int] {
        var best = [Int](repeating: -1, count: g.pooledShape.count)
        forEachTap { out, _, input in
            guard let input else { return }
            if best[out] < 0 || source[input] > source[best[out]] { best[out] = input }
        }
        return best
    }
}

private func strides(_ shape: Shape) -> [Int] {
    var result = [Int](repeating: 1, count: shape.rank)
    for axis in stride(from: shape.rank - 2, through: 0, by: -1) { result[axis] = result[axis + 1] * shape[axis + 1] }
    return result
}

/// Maps each flat index of `outer` to the flat index of `inner`, whose axes are `axes` of `outer`.
private func projection(outer: Shape, inner: Shape, axes: [Int]) -> [Int] {
    let outerStrides = strides(outer)
    let innerStrides = strides(inner)
    return (0..<outer.count).map { flat in
        var index = 0
        for (i, axis) in axes.enumerated() { index += (flat / outerStrides[axis]) % outer[axis] * innerStrides[i] }
        return index
    }
}

public enum Interpreter {
    /// Evaluates every equation of `graph`; returns all values (index = value id).
    public static func run(_ graph: Graph, inputs: [String: [Double]]) throws -> [[Double]] {
        var values: [[Double]] = []
        values.reserveCapacity(graph.equations.count)
        for equation in graph.equations {
            values.append(try evaluate(equation, graph: graph, values: values, inputs: inputs))
        }
        return values
    }

    /// The named results of `graph`.
    public static func results(_ graph: Graph, inputs: [String: [Double]]) throws -> [String: [Double]] {
        let values = try run(graph, inputs: inputs)
        return Dictionary(uniqueKeysWithValues: graph.results.map { ($0.name, values[$0.value.id]) })
    }

    /// A data-parallel run in lock step: one environment per rank (`inputs[r]`), evaluated equation by equation,
    /// where each `allReduceSum` gives every rank the sum of the ranks' operands (as MPI_Allreduce does, here in
    /// Double and in rank order). Every value of each rank (index = value id).
    public static func run(_ graph: Graph, ranks inputs: [[String: [Double]]]) throws -> [[[Double]]] {
        var values = [[[Double]]](repeating: [], count: inputs.count)
        for equation in graph.equations {
            if case .allReduceSum(let a) = equation.op {
                let sum = values.dropFirst().reduce(values[0][a.id]) { total, rank in
                    zip(total, rank[a.id]).map(+)
                }
                for rank in values.indices { values[rank].append(sum) }
                continue
            }
            for rank in values.indices {
                values[rank].append(
                    try evaluate(equation, graph: graph, values: values[rank], inputs: inputs[rank]))
            }
        }
        return values
    }

    /// The named results of each rank of `run(_:ranks:)`.
    public static func results(_ graph: Graph, ranks inputs: [[String: [Double]]]) throws -> [[String: [Double]]] {
        try run(graph, ranks: inputs).map { rank in
            Dictionary(uniqueKeysWithValues: graph.results.map { ($0.name, rank[$0.value.id]) })
        }
    }

    private static func evaluate(_ equation: Equation, graph: Graph, values: [[Double]], inputs: [String: [Double]])
        throws -> [Double]
    {
        let shape = equation.shape
        func v(_ x: Value) -> [Double] { values[x.id] }
        switch equation.op {
        case .input(let name):
            guard let data = inputs[name] else { throw InterpreterError(description: "no value for input \"\(name)\"") }
            guard data.count == shape.count else {
                throw InterpreterError(
                    description: "input \"\(name)\" has \(data.count) elements, expected \(shape.count)")
            }
            return data
        case .constant(let c):
            return [Double](repeating: c, count: shape.count)
        case .unary(let u, let a):
            return v(a).map(u.evaluate)
        case .binary(let b, let x, let y):
            return zip(v(x), v(y)).map(b.evaluate)
        case .broadcast(let a, let axes):
            let source = v(a)
            return projection(outer: shape, inner: graph.shape(of: a), axes: axes).map { source[$0] }
        case .reduceSum(let a, let axes), .reduceMax(let a, let axes):
            let inShape = graph.shape(of: a)
            let kept = (0..<inShape.rank).filter { !axes.contains($0) }
            let isSum: Bool
            if case .reduceSum = equation.op { isSum = true } else { isSum = false }
            var out = [Double](repeating: isSum ? 0 : -Double.infinity, count: shape.count)
            for (i, target) in projection(outer: inShape, inner: shape, axes: kept).enumerated() {
                out[target] = isSum ? out[target] + v(a)[i] : max(out[target], v(a)[i])
            }
            return out
        case .reshape(let a), .stopGradient(let a):
            return v(a)
        case .allReduceSum(let a):
            // One process: the sum over one rank (`run(_:ranks:)` runs several).
            return v(a)
        case .matmul(let a, let b, let ta, let tb):
            return matmul(v(a), graph.shape(of: a), ta, v(b), graph.shape(of: b), tb)
        case .im2col(let a, let g):
            var out = [Double](repeating: 0, count: shape.count)
            let x = v(a)
            // A row of the columns is (ky, kx, c), matching the HWIO weight reshaped to [k·k·C, O].
            Window(g: g).forEachTap { outIndex, tap, input in
                let pixel = outIndex / g.channels
                let c = outIndex % g.channels
                out[pixel * g.kernel * g.kernel * g.channels + tap * g.channels + c] = input.map { x[$0] } ?? 0
            }
            return out
        case .col2im(let a, let g):
            var out = [Double](repeating: 0, count: shape.count)
            let cols = v(a)
            Window(g: g).forEachTap { outIndex, tap, input in
                let pixel = outIndex / g.channels
                let c = outIndex % g.channels
                if let input { out[input] += cols[pixel * g.kernel * g.kernel * g.channels + tap * g.channels + c] }
            }
            return out
        case .maxPool(let a, let g):
            let x = v(a)
            return Window(g: g).argmax(x).map { x[$0] }
        case .maxPoolSelect(let source, let tangent, let g):
            let t = v(tangent)
            return Window(g: g).argmax(v(source)).map { t[$0] }
        case .maxPoolScatter(let source, let cotangent, let g):
            var out = [Double](repeating: 0, count: shape.count)
            for (i, input) in Window(g: g).argmax(v(source)).enumerated() { out[input] += v(cotangent)[i] }
            return out
        case .avgPool(let a, let g):
            var out = [Double](repeating: 0, count: shape.count)
            let x = v(a)
            let area = Double(g.kernel * g.kernel)
            Window(g: g).forEachTap { o, _, input in if let input { out[o] += x[input] / area } }
            return out
        case .avgPoolTranspose(let a, let g):
            var out = [Double](repeating: 0, count: shape.count)
            let c = v(a)
            let area = Double(g.kernel * g.kernel)
            Window(g: g).forEachTap { o, _, input in if let input { out[input] += c[o] / area } }
            return out
        case .sliceRows(let a, let start):
            let rowSize = shape.count / max(shape[0], 1)
            return Array(v(a)[(start * rowSize)..<((start + shape[0]) * rowSize)])
        case .padRows(let a, let start):
            let rowSize = shape.count / max(shape[0], 1)
            var out = [Double](repeating: 0, count: shape.count)
            out.replaceSubrange((start * rowSize)..<(start * rowSize + v(a).count), with: v(a))
            return out
        case .oneHotArgmax(let a):
            return oneHotRows(shape) { row in row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
            }(v(a))
        case .oneHotSample(let p, let u):
            let draws = v(u)
            var rowIndex = 0
            return oneHotRows(shape) { row in
                defer { rowIndex += 1 }
                var cumulative = 0.0
                for k in row.indices {
                    cumulative += row[k]
                    if cumulative > draws[rowIndex] { return k }
                }
                return row.count - 1
            }(v(p))
        }
    }

    private static func oneHotRows(_ shape: Shape, _ pick: @escaping (ArraySlice<Double>) -> Int) -> ([Double]) ->
        [Double]
    {
        { data in
            let k = shape[shape.rank - 1]
            var out = [Double](repeating: 0, count: data.count)
            for row in 0..<(data.count / k) {
                let slice = data[(row * k)..<((row + 1) * k)]
                out[row * k + (pick(slice) - slice.startIndex)] = 1
            }
            return out
        }
    }

    private static func matmul(_ a: [Double], _ sa: Shape, _ ta: Bool, _ b: [Double], _ sb: Shape, _ tb: Bool)
        -> [Double]
    {
        let (m, k) = ta ? (sa[1], sa[0]) : (sa[0], sa[1])
        let n = tb ? sb[0] : sb[1]
        // Strides of op(a)[i, p] and op(b)[p, j] in the stored arrays: a transpose is only a swap of strides.
        let (aRow, aCol) = ta ? (1, sa[1]) : (sa[1], 1)
        let (bRow, bCol) = tb ? (1, sb[1]) : (sb[1], 1)
        var out = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { out in
                    for i in 0..<m {
                        for p in 0..<k {
                            let aip = a[i * aRow + p * aCol]
                            if aip == 0 { continue }
                            for j in 0..<n { out[i * n + j] += aip * b[p * bRow + j * bCol] }
                        }
                    }
                }
            }
        }
        return out
    }
}
