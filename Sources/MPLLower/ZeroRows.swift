// skip-zero-rows: a value built by `padRows` is zero outside the rows it pads, and work on those rows is
// wasted. In the MPL step the teacher's logits cotangent is pad_rows(labeled) + pad_rows(strong) over all
// B_l + 2·B_u rows, with the B_u weak-view rows zero (their loss is under stopGradient), so the teacher's
// whole backward pass would run on 47 % zero rows. This pass carries such a value as its non-zero row
// blocks through the ops that keep zero rows zero (row-wise matmuls, element-wise products, reductions,
// reshapes, the pooling and im2col transposes) and sums the blocks where rows are contracted (xᵀ·dy, column
// sums), so that every GEMM and loop runs on the non-zero rows only. A blocked value that reaches any other
// op (or a result) is materialised as the original sum of pad_rows. Like `simplify`, this takes 0·x = 0,
// which only an overflowing model (x infinite or NaN) would notice.

import MPLIR

/// Rows [start, start + rows of value) of a tensor that is zero elsewhere.
private struct RowBlock {
    var start: Int
    /// In the new graph: [rows, rest of the shape].
    var value: Value
}

private enum Rewritten {
    case dense(Value)
    /// Zero outside the blocks, which are sorted and disjoint.
    case blocks([RowBlock])
}

@Sendable func skipZeroRows(_ graph: Graph) -> Graph {
    var rewriter = ZeroRowRewriter(graph)
    return rewriter.run()
}

private struct SliceKey: Hashable {
    var value: Value
    var start: Int
    var rows: Int
}

private struct ZeroRowRewriter {
    let old: Graph
    var new = Graph()
    var map: [Rewritten] = []
    /// Old values whose only reader is an element-wise op that evaluates it once: such a value is a fused
    /// scalar, so slicing it means recomputing it on the rows (free), not reading it from memory.
    var isFusedScalar: [Bool]
    var materialized: [Int: Value] = [:]  // old id → dense new value; looked up, never iterated
    var slices: [SliceKey: Value] = [:]  // looked up, never iterated

    init(_ graph: Graph) {
        old = graph
        isFusedScalar = fusedScalars(graph)
    }

    mutating func run() -> Graph {
        for value in old.values {
            new.origin = old.origin(of: value)
            map.append(rewrite(value))
        }
        new.results = old.results.map { ($0.name, dense($0.value)) }
        return new
    }

    // MARK: Old values in the new graph

    /// The value as one dense tensor (blocks summed back into a full tensor, once).
    mutating func dense(_ value: Value) -> Value {
        switch map[value.id] {
        case .dense(let v):
            return v
        case .blocks(let blocks):
            if let done = materialized[value.id] { return done }
            let outer = new.origin
            new.origin = old.origin(of: value)
            defer { new.origin = outer }
            let shape = old.shape(of: value)
            var total: Value?
            for block in blocks {
                let padded = new.appendSimplified(.padRows(block.value, start: block.start), shape: shape)
                total = total.map { new.append(.binary(.add, $0, padded)) } ?? padded
            }
            let result = total ?? new.append(.constant(0), shape: shape)
            materialized[value.id] = result
            return result
        }
    }

    private func blocks(_ value: Value) -> [RowBlock]? {
        if case .blocks(let b) = map[value.id] { return b }
        return nil
    }

    private func rows(_ v: Value) -> Int { new.shape(of: v)[0] }

    /// `shape` with its first dimension replaced.
    private func withRows(_ shape: Shape, _ rows: Int) -> Shape { Shape([rows] + shape.dims.dropFirst()) }

    /// Rows [start, start + rows) of the new-graph value `v`, as cheaply as possible: a view of memory, or the
    /// same fused element-wise computation on fewer rows.
    mutating func rowSlice(_ v: Value, _ start: Int, _ rows: Int) -> Value {
        let shape = new.shape(of: v)
        if start == 0 && rows == shape[0] { return v }
        let key = SliceKey(value: v, start: start, rows: rows)
        if let done = slices[key] { return done }
        let out = withRows(shape, rows)
        let result: Value
        switch new.op(of: v) {
        case .constant(let c):
            result = new.append(.constant(c), shape: out)
        case .broadcast(let a, let axes):
            if axes.first == 0 {
                result = new.append(.broadcast(rowSlice(a, start, rows), axes: axes), shape: out)
            } else {
                result = new.append(.broadcast(a, axes: axes), shape: out)
            }
        case .unary(let u, let a) where fusedInNew(v):
            result = new.append(.unary(u, rowSlice(a, start, rows)))
        case .binary(let b, let x, let y) where fusedInNew(v):
            result = new.append(.binary(b, rowSlice(x, start, rows), rowSlice(y, start, rows)))
        case .reshape(let a):
            let rowFloats = shape.count / max(shape[0], 1)
            let innerShape = new.shape(of: a)
            let innerRowFloats = innerShape.count / max(innerShape[0], 1)
            if innerShape.rank > 0, innerRowFloats > 0, (start * rowFloats) % innerRowFloats == 0,
                (rows * rowFloats) % innerRowFloats == 0
            {
                let inner = rowSlice(a, start * rowFloats / innerRowFloats, rows * rowFloats / innerRowFloats)
                result = new.append(.reshape(inner), shape: out)
            } else {
                result = new.append(.sliceRows(v, start: start), shape: out)
            }
        case .sliceRows(let a, let innerStart):
            result = rowSlice(a, innerStart + start, rows)
        case .im2col(let a, let g)
        where start % max(g.outHeight * g.outWidth, 1) == 0 && rows % max(g.outHeight * g.outWidth, 1) == 0:
            // The columns of fewer images: im2col is streamed into its GEMMs, so this costs no memory.
            let pixels = g.outHeight * g.outWidth
            result = new.append(.im2col(rowSlice(a, start / pixels, rows / pixels), batch(g, rows / pixels)))
        default:
            result = new.append(.sliceRows(v, start: start), shape: out)
        }
        slices[key] = result
        return result
    }

    /// New-graph values that this pass created as a fused computation (see `isFusedScalar`).
    private var fusedNew: Set<Value> = []
    private func fusedInNew(_ v: Value) -> Bool { fusedNew.contains(v) }

    // MARK: One equation

    mutating func rewrite(_ value: Value) -> Rewritten {
        let op = old.op(of: value)
        let shape = old.shape(of: value)
        if let result = rewriteBlocked(op, shape) { return result }
        let v = new.append(op.mapOperands { dense($0) }, shape: shape)
        if isFusedScalar[value.id] { fusedNew.insert(v) }
        return .dense(v)
    }

    /// The op on blocked operands, or nil when no operand is blocked or the op cannot keep them blocked.
    private mutating func rewriteBlocked(_ op: Op, _ shape: Shape) -> Rewritten? {
        switch op {
        case .padRows(let a, let start):
            if let inner = blocks(a) {
                return .blocks(inner.map { RowBlock(start: $0.start + start, value: $0.value) })
            }
            return .blocks([RowBlock(start: start, value: dense(a))])
        case .stopGradient(let a):
            return blocks(a).map { .blocks($0) }
        case .unary(let u, let a):
            guard let bs = blocks(a), u.keepsZero else { return nil }
            return .blocks(bs.map { RowBlock(start: $0.start, value: new.append(.unary(u, $0.value))) })
        case .binary(let b, let x, let y):
            return binary(b, x, y)
        case .broadcast(let a, let axes):
            guard let bs = blocks(a), axes.first == 0 else { return nil }
            return .blocks(
                bs.map {
                    RowBlock(
                        start: $0.start,
                        value: new.append(.broadcast($0.value, axes: axes), shape: withRows(shape, rows($0.value))))
                })
        case .reduceSum(let a, let axes):
            guard let bs = blocks(a) else { return nil }
            if axes.contains(0) {
                return .dense(sum(bs.map { new.append(.reduceSum($0.value, axes: axes)) }, shape))
            }
            return .blocks(bs.map { RowBlock(start: $0.start, value: new.append(.reduceSum($0.value, axes: axes))) })
        case .reshape(let a):
            guard let bs = blocks(a) else { return nil }
            let from = old.shape(of: a)
            let fromRow = from.count / max(from[0], 1)
            guard shape.rank > 0, shape[0] > 0 else { return nil }
            let toRow = shape.count / shape[0]
            guard toRow > 0,
                bs.allSatisfy({ ($0.start * fromRow) % toRow == 0 && (rows($0.value) * fromRow) % toRow == 0 })
            else { return nil }
            return .blocks(
                bs.map {
                    RowBlock(
                        start: $0.start * fromRow / toRow,
                        value: new.append(.reshape($0.value), shape: withRows(shape, rows($0.value) * fromRow / toRow)))
                })
        case .matmul(let a, let b, let ta, let tb):
            return matmul(a, b, ta, tb, shape)
        case .maxPoolScatter(let source, let cotangent, let g):
            guard let bs = blocks(cotangent) else { return nil }
            let s = dense(source)
            return .blocks(
                bs.map { block in
                    let n = rows(block.value)
                    return RowBlock(
                        start: block.start,
                        value: new.append(
                            .maxPoolScatter(source: rowSlice(s, block.start, n), cotangent: block.value, batch(g, n))))
                })
        case .maxPoolSelect(let source, let tangent, let g):
            guard let bs = blocks(tangent) else { return nil }
            let s = dense(source)
            return .blocks(
                bs.map { block in
                    let n = rows(block.value)
                    return RowBlock(
                        start: block.start,
                        value: new.append(
                            .maxPoolSelect(source: rowSlice(s, block.start, n), tangent: block.value, batch(g, n))))
                })
        case .avgPoolTranspose(let a, let g), .maxPool(let a, let g), .avgPool(let a, let g):
            guard let bs = blocks(a) else { return nil }
            return .blocks(
                bs.map { block in
                    let geometry = batch(g, rows(block.value))
                    let blockOp: Op
                    switch op {
                    case .maxPool: blockOp = .maxPool(block.value, geometry)
                    case .avgPool: blockOp = .avgPool(block.value, geometry)
                    default: blockOp = .avgPoolTranspose(block.value, geometry)
                    }
                    return RowBlock(start: block.start, value: new.append(blockOp))
                })
        case .col2im(let a, let g):
            // Rows of the columns are (image, output pixel): a block must hold whole images.
            guard let bs = blocks(a) else { return nil }
            let pixels = g.outHeight * g.outWidth
            guard pixels > 0, bs.allSatisfy({ $0.start % pixels == 0 && rows($0.value) % pixels == 0 }) else {
                return nil
            }
            return .blocks(
                bs.map {
                    RowBlock(
                        start: $0.start / pixels,
                        value: new.append(.col2im($0.value, batch(g, rows($0.value) / pixels))))
                })
        case .im2col(let a, let g):
            guard let bs = blocks(a) else { return nil }
            let pixels = g.outHeight * g.outWidth
            return .blocks(
                bs.map {
                    RowBlock(start: $0.start * pixels, value: new.append(.im2col($0.value, batch(g, rows($0.value)))))
                })
        case .sliceRows(let a, let start):
            guard let bs = blocks(a) else { return nil }
            let end = start + shape[0]
            var inside: [RowBlock] = []
            for block in bs {
                let lo = max(block.start, start)
                let hi = min(block.start + rows(block.value), end)
                if lo < hi {
                    inside.append(RowBlock(start: lo - start, value: rowSlice(block.value, lo - block.start, hi - lo)))
                }
            }
            if inside.isEmpty { return .dense(new.append(.constant(0), shape: shape)) }
            return .blocks(inside)
        case .input, .constant, .reduceMax, .oneHotArgmax, .oneHotSample, .allReduceSum:
            return nil
        }
    }

    private func batch(_ g: WindowGeometry, _ n: Int) -> WindowGeometry {
        var geometry = g
        geometry.batch = n
        return geometry
    }

    private mutating func sum(_ values: [Value], _ shape: Shape) -> Value {
        guard var total = values.first else { return new.append(.constant(0), shape: shape) }
        for v in values.dropFirst() { total = new.append(.binary(.add, total, v)) }
        return total
    }

    private mutating func binary(_ b: BinaryOp, _ x: Value, _ y: Value) -> Rewritten? {
        let bx = blocks(x)
        let by = blocks(y)
        if bx == nil && by == nil { return nil }
        switch b.zeroRows {
        case .ofEither:
            // Zero rows of either operand are zero rows of the result.
            if let bx, let by {
                guard sameRanges(bx, by) else { return nil }
                return .blocks(
                    zip(bx, by).map { RowBlock(start: $0.start, value: new.append(.binary(b, $0.value, $1.value))) })
            }
            let (bs, other, blockedFirst) = bx != nil ? (bx!, dense(y), true) : (by!, dense(x), false)
            return .blocks(
                bs.map { block in
                    let slice = rowSlice(other, block.start, rows(block.value))
                    return RowBlock(
                        start: block.start,
                        value: new.append(
                            .binary(b, blockedFirst ? block.value : slice, blockedFirst ? slice : block.value)))
                })
        case .ofBoth:
            guard let bx, let by else { return nil }
            if sameRanges(bx, by) {
                return .blocks(
                    zip(bx, by).map { RowBlock(start: $0.start, value: new.append(.binary(b, $0.value, $1.value))) })
            }
            // Blocks in disjoint rows add up to their union (a difference would need the second negated).
            guard b == .add, let merged = disjointUnion(bx, by) else { return nil }
            return .blocks(merged)
        case .none:
            return nil
        }
    }

    private func sameRanges(_ a: [RowBlock], _ b: [RowBlock]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.start == $1.start && rows($0.value) == rows($1.value) }
    }

    private func disjointUnion(_ a: [RowBlock], _ b: [RowBlock]) -> [RowBlock]? {
        let all = (a + b).sorted { $0.start < $1.start }
        for (first, second) in zip(all, all.dropFirst()) where first.start + rows(first.value) > second.start {
            return nil
        }
        return all
    }

    private mutating func matmul(_ a: Value, _ b: Value, _ ta: Bool, _ tb: Bool, _ shape: Shape) -> Rewritten? {
        let ba = blocks(a)
        let bb = blocks(b)
        if ba == nil && bb == nil { return nil }
        if let ba, !ta, bb == nil {
            // Rows of a are rows of the product.
            let w = dense(b)
            return .blocks(
                ba.map {
                    RowBlock(
                        start: $0.start, value: new.append(.matmul($0.value, w, transposeA: false, transposeB: tb)))
                })
        }
        if ta, !tb, (ba == nil) != (bb == nil) {
            // aᵀ·b contracts over the rows of both: only the blocks' rows contribute.
            let bs = ba ?? bb!
            let other = ba == nil ? dense(a) : dense(b)
            let products = bs.map { block -> Value in
                let slice = rowSlice(other, block.start, rows(block.value))
                return ba == nil
                    ? new.append(.matmul(slice, block.value, transposeA: true, transposeB: false))
                    : new.append(.matmul(block.value, slice, transposeA: true, transposeB: false))
            }
            return .dense(sum(products, shape))
        }
        return nil
    }
}
