// Convenience constructors over `Graph.append`, so that rule tables and the step builder read like math.

extension Graph {
    public mutating func input(_ name: String, _ shape: Shape) -> Value { append(.input(name), shape: shape) }
    public mutating func constant(_ c: Double, _ shape: Shape) -> Value { append(.constant(c), shape: shape) }
    public mutating func unary(_ u: UnaryOp, _ a: Value) -> Value { append(.unary(u, a)) }
    public mutating func binary(_ b: BinaryOp, _ x: Value, _ y: Value) -> Value { append(.binary(b, x, y)) }
    public mutating func add(_ x: Value, _ y: Value) -> Value { binary(.add, x, y) }
    public mutating func sub(_ x: Value, _ y: Value) -> Value { binary(.sub, x, y) }
    public mutating func mul(_ x: Value, _ y: Value) -> Value { binary(.mul, x, y) }
    public mutating func div(_ x: Value, _ y: Value) -> Value { binary(.div, x, y) }
    public mutating func neg(_ x: Value) -> Value { unary(.neg, x) }

    /// x · c for a compile-time number c.
    public mutating func scale(_ x: Value, _ c: Double) -> Value { mul(x, constant(c, shape(of: x))) }
    /// x · s for a scalar value s.
    public mutating func scale(_ x: Value, by s: Value) -> Value { mul(x, broadcast(s, to: shape(of: x), axes: [])) }

    public mutating func broadcast(_ x: Value, to shape: Shape, axes: [Int]) -> Value {
        if self.shape(of: x) == shape { return x }
        return append(.broadcast(x, axes: axes), shape: shape)
    }
    public mutating func reduceSum(_ x: Value, axes: [Int]) -> Value { append(.reduceSum(x, axes: axes)) }
    public mutating func sumAll(_ x: Value) -> Value { reduceSum(x, axes: Array(0..<shape(of: x).rank)) }
    public mutating func reshape(_ x: Value, _ shape: Shape) -> Value {
        if self.shape(of: x) == shape { return x }
        return append(.reshape(x), shape: shape)
    }
    public mutating func matmul(_ a: Value, _ b: Value, transposeA: Bool = false, transposeB: Bool = false) -> Value {
        append(.matmul(a, b, transposeA: transposeA, transposeB: transposeB))
    }
    public mutating func sliceRows(_ x: Value, start: Int, count: Int) -> Value {
        var dims = shape(of: x).dims
        dims[0] = count
        return append(.sliceRows(x, start: start), shape: Shape(dims))
    }

    /// Adds a per-column vector [n] to every row of a [m, n] matrix (or the last axis of any tensor).
    public mutating func addBias(_ x: Value, _ bias: Value) -> Value {
        let s = shape(of: x)
        return add(x, broadcast(bias, to: s, axes: [s.rank - 1]))
    }

    /// Row-wise log-softmax over the last axis of [N, K], stabilised by the (non-differentiated) row max.
    public mutating func logSoftmax(_ z: Value) -> Value {
        let s = shape(of: z)
        let rowMax = append(.stopGradient(append(.reduceMax(z, axes: [1]))))
        let shifted = sub(z, broadcast(rowMax, to: s, axes: [0]))
        let logSum = unary(.log, reduceSum(unary(.exp, shifted), axes: [1]))
        return sub(shifted, broadcast(logSum, to: s, axes: [0]))
    }

    public mutating func softmax(_ z: Value) -> Value { unary(.exp, logSoftmax(z)) }

    /// CE(q, z) = −(1/N) Σ_i Σ_k q_ik log softmax(z)_ik.
    public mutating func crossEntropy(targets q: Value, logits z: Value) -> Value {
        let rows = Double(shape(of: z)[0])
        return scale(sumAll(mul(q, logSoftmax(z))), -1 / rows)
    }

    /// The mean and the biased variance of each column of x [M, C], over its M rows, or with `ranks` > 1 over
    /// the M·ranks rows of every rank's x: the column sums are all-reduced, then the sums of squared deviations
    /// from that global mean (two all-reduces, but no cancellation as in E[x²] − E[x]²).
    public mutating func columnMoments(_ x: Value, ranks: Int = 1) -> (mean: Value, variance: Value) {
        let s = shape(of: x)
        func total(_ sums: Value) -> Value { ranks == 1 ? sums : allReduceSum(sums) }
        let rows = Double(s[0] * ranks)
        let mean = scale(total(reduceSum(x, axes: [0])), 1 / rows)
        let deviation = sub(x, broadcast(mean, to: s, axes: [1]))
        return (mean, scale(total(reduceSum(mul(deviation, deviation), axes: [0])), 1 / rows))
    }

    /// The sum of x over every rank (`Op.allReduceSum`).
    public mutating func allReduceSum(_ x: Value) -> Value { append(.allReduceSum(x)) }

    /// BatchNorm's affine normalisation of x [M, C] with per-column statistics, scale and offset [C]:
    /// (x − mean)·scale/√(variance + ε) + offset. 1/√· is exp(−½·log ·), so that it needs no op of its own and
    /// its derivatives of every order come from the rules of exp and log.
    public mutating func normalizeColumns(
        _ x: Value, mean: Value, variance: Value, scale gamma: Value, offset: Value,
        epsilon: Double
    ) -> Value {
        let s = shape(of: x)
        let varianceShape = shape(of: variance)
        let stdInverse = unary(.exp, scale(unary(.log, add(variance, constant(epsilon, varianceShape))), -0.5))
        let centered = sub(x, broadcast(mean, to: s, axes: [1]))
        let gain = broadcast(mul(stdInverse, gamma), to: s, axes: [1])
        return add(mul(centered, gain), broadcast(offset, to: s, axes: [1]))
    }

    /// ⟨a, b⟩ summed over every element.
    public mutating func dot(_ a: Value, _ b: Value) -> Value { sumAll(mul(a, b)) }
}
