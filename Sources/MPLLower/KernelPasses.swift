// Kernel-to-kernel passes: fold a matmul's element-wise consumer into its kernel, and run adjacent
// element-wise loops over the same shape as one loop.

import MPLIR

/// The value whose memory `value` occupies: itself, or the operand a view (reshape, slice) looks into.
func memoryRoot(of value: Value, in graph: Graph) -> (root: Value, offset: Int) {
    guard case .view(let operand, let startRow) = graph.op(of: value).family else { return (value, 0) }
    let shape = graph.shape(of: value)
    let rowFloats = shape.rank == 0 || shape[0] == 0 ? 0 : shape.count / shape[0]
    let (root, offset) = memoryRoot(of: operand, in: graph)
    return (root, offset + startRow * rowFloats)
}

/// Floats per chunk of a streamed convolution: about 1 MiB (the L2 cache of the machines we measure on), so
/// that im2col writes a chunk and sgemm reads it back from cache. Measured on W2 (docs/PERFORMANCE.md):
/// 2^18 beat 2^16, 2^17, 2^19 and 2^20 at one and two threads.
public let streamChunkFloats = 1 << 18

/// stream-convolutions: im2col, whose columns are k·k times the size of its image batch, is never stored
/// whole when every kernel that reads it is a GEMM taking it as its left operand (the forward convolution and
/// ∂W = colsᵀ·∂y): each of those GEMMs rebuilds the columns a chunk of images at a time (`GEMM.im2colA`).
/// Likewise a GEMM whose product (∂cols = ∂y·Wᵀ) only feeds col2im writes it a chunk at a time and col2im's
/// that chunk (`GEMM.col2imOutput`). The columns then never leave the cache, and the scratch arena holds none.
@Sendable func streamConvolutions(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.streamConvolutions else { return function }
    let graph = function.graph
    let results = graph.results.map { memoryRoot(of: $0.value, in: graph).root }
    var kernels = function.kernels
    /// Images per chunk: the chunk's columns and the rows of the GEMM's other [rows, width] matrix (its output,
    /// or ∂y for ∂W) both about `streamChunkFloats`, at least one image.
    func chunkImages(_ g: WindowGeometry, width: Int) -> Int {
        let perImage = g.outHeight * g.outWidth * max(g.kernel * g.kernel * g.channels, width)
        return max(1, min(g.batch, options.streamChunkFloats / max(perImage, 1)))
    }
    /// What each kernel reads, as memory roots, kept beside `kernels` (recomputing every kernel's reads for each
    /// im2col made this pass a third of a WRN-28-2's compile).
    func roots(_ kernel: Kernel) -> Set<Value> { Set(kernel.reads.map { memoryRoot(of: $0, in: graph).root }) }
    var readRoots = kernels.map(roots)
    /// Kernels (other than `except`) reading `value` or a view of it.
    func readers(of value: Value, except: Int) -> [Int] {
        readRoots.indices.filter { $0 != except && readRoots[$0].contains(value) }
    }

    var index = 0
    while index < kernels.count {
        guard case .window(let w) = kernels[index].body, w.op == .im2col, !results.contains(w.output) else {
            index += 1
            continue
        }
        let users = readers(of: w.output, except: index)
        let streamable =
            !users.isEmpty
            && users.allSatisfy { i in
                guard case .gemm(let g) = kernels[i].body, g.im2colA == nil, g.col2imOutput == nil, g.a == w.output,
                    g.b != w.output
                else { return false }
                return kernels[i].reads.filter { memoryRoot(of: $0, in: graph).root == w.output } == [w.output]
            }
        guard streamable else {
            index += 1
            continue
        }
        for i in users {
            guard case .gemm(var g) = kernels[i].body else { continue }
            g.im2colA = WindowedImages(
                images: w.operands[0], geometry: w.geometry, chunkImages: chunkImages(w.geometry, width: g.n))
            kernels[i].body = .gemm(g)
            kernels[i].equations = (kernels[i].equations + kernels[index].equations).sorted()
            readRoots[i] = roots(kernels[i])
        }
        kernels.remove(at: index)
        readRoots.remove(at: index)
    }

    index = 0
    while index < kernels.count {
        guard case .window(let w) = kernels[index].body, w.op == .col2im else {
            index += 1
            continue
        }
        let columns = w.operands[0]
        guard !results.contains(columns),
            let producer = kernels.indices.first(where: { kernels[$0].outputs.contains(columns) }),
            case .gemm(var g) = kernels[producer].body, g.output == columns, g.product == columns, g.epilogue.isEmpty,
            g.im2colA == nil, g.col2imOutput == nil, readers(of: columns, except: producer) == [index]
        else {
            index += 1
            continue
        }
        g.col2imOutput = WindowedImages(
            images: w.output, geometry: w.geometry, chunkImages: chunkImages(w.geometry, width: g.k))
        g.output = w.output
        fold(index, into: producer, as: g, &kernels)
        readRoots.remove(at: index)
        let fused = producer < index ? producer : producer - 1  // where the producer is after the removal
        readRoots[fused] = roots(kernels[fused])
    }
    var next = function
    next.kernels = kernels
    return next
}

/// pool-in-convolutions: a pooling window over a streamed forward convolution's output (conv, bias and ReLU in
/// the epilogue, then max pool) runs inside the convolution's kernel, on each chunk of images right after the
/// epilogue, while those rows are still in cache, instead of in a kernel of its own that reads the whole
/// activation back from memory. The activation itself is still stored: the pool's derivative reads it.
@Sendable func poolInConvolutions(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.poolInConvolutions else { return function }
    let graph = function.graph
    var kernels = function.kernels
    var index = 0
    while index < kernels.count {
        guard case .window(let w) = kernels[index].body, w.op == .maxPool || w.op == .avgPool,
            case (let source, let offset) = memoryRoot(of: w.operands[0], in: graph), offset == 0,
            let producer = kernels[..<index].lastIndex(where: { $0.outputs.contains(source) }),
            case .gemm(var g) = kernels[producer].body, g.output == source, g.pool == nil, !g.transposeA,
            let columns = g.im2colA, columns.geometry.batch == w.geometry.batch
        else {
            index += 1
            continue
        }
        g.pool = w
        fold(index, into: producer, as: g, &kernels)
    }
    var next = function
    next.kernels = kernels
    return next
}

/// winograd-convolutions: the GEMMs of a streamed 3×3 stride-1 pad-1 convolution run as Winograd's F(2×2, 3×3)
/// on 4×4 tiles (Templates/runtime): the forward cols·W and ∂x = col2im(∂y·Wᵀ) (the same convolution with the
/// filters turned by 180° and transposed) as 16 GEMMs [tiles, in]·[in, out], and ∂W = colsᵀ·∂y as their
/// transpose, 16 GEMMs [in, tiles]·[tiles, out]: 2.25 times fewer multiplies than im2col's GEMM each. The
/// forward and ∂x use F(4×4, 3×3) instead (36 GEMMs, 4 times fewer) where `GEMM.winogradTile` says it does less.
/// Convolutions with fewer than `winogradMinimumChannels` channels in or out keep im2col + sgemm: their GEMMs
/// would be too thin to gain.
@Sendable func winogradConvolutions(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.winogradConvolutions else { return function }
    var next = function
    for index in next.kernels.indices {
        guard case .gemm(var g) = next.kernels[index].body, let channels = g.winogradChannels,
            let w = g.im2colA ?? g.col2imOutput, w.geometry.kernel == 3, w.geometry.stride == 1,
            w.geometry.padding == 1,
            g.col2imOutput == nil ? !g.transposeB : !g.transposeA && g.transposeB,
            min(channels.in, channels.out) >= winogradMinimumChannels
        else { continue }
        g.strategy = .winograd
        next.kernels[index].body = .gemm(g)
    }
    return next
}

/// choose-gemm-strategies: how every GEMM that is not Winograd's runs (`GEMMStrategy`), from its shape and
/// whether it streams its columns.
@Sendable func chooseGEMMStrategies(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    var next = function
    for index in next.kernels.indices {
        guard case .gemm(var g) = next.kernels[index].body, g.strategy != .winograd else { continue }
        if g.im2colA != nil {
            let isSmall = (g.transposeA ? g.m : g.k) <= smallContraction && !g.transposeB && g.n <= smallWidth
            g.strategy = isSmall ? (g.transposeA ? .smallOuterProducts : .smallGEMM) : .blasOnColumns
        } else {
            g.strategy = g.col2imOutput != nil ? .blasIntoCol2im : .blas
        }
        next.kernels[index].body = .gemm(g)
    }
    return next
}

/// The fewest channels in and out for which a convolution runs as Winograd (`winogradConvolutions`).
let winogradMinimumChannels = 8

/// Kernel `producer` becomes `gemm`, which now also does the work of kernel `absorbed` (a later kernel), and
/// `absorbed` is removed.
private func fold(_ absorbed: Int, into producer: Int, as gemm: GEMM, _ kernels: inout [Kernel]) {
    kernels[producer].body = .gemm(gemm)
    kernels[producer].equations = (kernels[producer].equations + kernels[absorbed].equations).sorted()
    kernels.remove(at: absorbed)
}

/// fold-gemm-epilogues: when a matmul's only consumer is element-wise over the same [m, n] (bias add,
/// activation, dropout mask...), that consumer's loop runs right after sgemm in the same kernel, in place
/// on the product, instead of writing the product and reading it back in a second kernel. (The other
/// design, pre-filling C with the bias and calling sgemm with beta = 1, only covers the bias.)
/// Not done when the consumer updates a state tensor: that loop can then overwrite the tensor in place,
/// which it could not do after sgemm had already written there.
@Sendable func foldGEMMEpilogues(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.foldGEMMEpilogues else { return function }
    let graph = function.graph
    let uses = graph.useCounts()  // a result counts as a use, so a product that is a result is never folded
    let results = Set(graph.results.map(\.value))
    let stateResults = Set(
        graph.results.filter { function.bindings.resultStorage[$0.name] == .state }.map(\.value))

    // The kernels that read each value, in order, computed once: looking them up kernel by kernel made this pass
    // quadratic in the depth of the network (RELIABILITY.md, "Known limits"). A fold keeps them right: the fused
    // kernel takes the consumer's place and reads what the consumer read, and the GEMM it absorbs read only values
    // made before it, whose GEMMs this loop has already passed.
    var kernels = function.kernels
    var readers: [Value: [Int]] = [:]
    for (index, kernel) in kernels.enumerated() {
        for value in kernel.reads { readers[value, default: []].append(index) }
    }
    var absorbed = Set<Int>()
    for index in kernels.indices {
        guard case .gemm(let gemm) = kernels[index].body, gemm.epilogue.isEmpty, gemm.col2imOutput == nil,
            uses[gemm.product.id] == 1, !results.contains(gemm.product),
            let consumerIndex = readers[gemm.product]?.first(where: { $0 != index }),
            case .loop(let loop) = kernels[consumerIndex].body,
            loop.dims == graph.shape(of: gemm.product).dims,
            kernels[consumerIndex].readsOnlyPointwise(gemm.product),
            let stored = loop.statements.last, loop.statements.filter(\.isStored).count == 1, stored.isStored,
            !stateResults.contains(stored.value)
        else { continue }
        var folded = gemm
        folded.epilogue = loop.statements
        folded.output = stored.value
        // The fused kernel runs where the consumer ran: all of the consumer's other operands exist by then.
        kernels[consumerIndex] = Kernel(
            body: .gemm(folded), equations: (kernels[index].equations + kernels[consumerIndex].equations).sorted())
        absorbed.insert(index)
    }
    var next = function
    next.kernels = kernels.indices.filter { !absorbed.contains($0) }.map { kernels[$0] }
    return next
}

/// merge-sibling-loops: adjacent loops over the same dims become one loop when the later one reads the
/// earlier one's outputs only at the element being computed (then as a scalar, not from memory). An
/// optimiser update g' = g + wd·θ; v' = μv + g'; θ' = θ − lr·(g' + μv') becomes one pass over θ, v and g.
/// A loop over [m, n] right after a GEMM epilogue joins the epilogue (z = xW + b kept for the backward
/// pass, relu(z) computed in the same pass). Afterwards a value is still stored only if something outside
/// its loop (or a result) needs it.
@Sendable func mergeSiblingLoops(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.mergeSiblingLoops else { return function }
    let graph = function.graph
    var merged: [Kernel] = []
    for kernel in function.kernels {
        if let previous = merged.last, let combined = merge(previous, kernel, graph) {
            merged[merged.count - 1] = combined
        } else {
            merged.append(kernel)
        }
    }

    var neededInMemory = Set(graph.results.map { memoryRoot(of: $0.value, in: graph).root })
    for kernel in merged { for read in kernel.reads { neededInMemory.insert(memoryRoot(of: read, in: graph).root) } }
    func keepNeeded(_ statements: [Statement], alwaysStored: Value? = nil) -> [Statement] {
        statements.map { statement in
            var s = statement
            s.isStored = s.isStored && (neededInMemory.contains(s.value) || s.value == alwaysStored)
            return s
        }
    }
    for index in merged.indices {
        switch merged[index].body {
        case .loop(var loop):
            loop.statements = keepNeeded(loop.statements)
            merged[index].body = .loop(loop)
        case .gemm(var gemm):
            gemm.epilogue = keepNeeded(gemm.epilogue, alwaysStored: gemm.output)  // sgemm writes there
            merged[index].body = .gemm(gemm)
        case .reduction, .window, .padRows, .oneHotArgmax, .oneHotSample, .allReduceSum:
            break
        }
    }
    var next = function
    next.kernels = merged
    return next
}

/// `second` run inside `first`'s loop, if that is legal; nil otherwise.
private func merge(_ first: Kernel, _ second: Kernel, _ graph: Graph) -> Kernel? {
    guard case .loop(let b) = second.body else { return nil }
    let (dims, statements): ([Int], [Statement])
    switch first.body {
    case .loop(let a): (dims, statements) = (a.dims, a.statements)
    case .gemm(let g) where !g.epilogue.isEmpty: (dims, statements) = ([g.m, g.n], g.epilogue)
    case .gemm, .reduction, .window, .padRows, .oneHotArgmax, .oneHotSample, .allReduceSum: return nil
    }
    let written = first.outputs
    let count = dims.reduce(1, *)
    /// The first loop's output that `value` is, or a reshape of whole (the same elements in the same order).
    func writtenRoot(_ value: Value) -> Value? {
        let (root, offset) = memoryRoot(of: value, in: graph)
        guard written.contains(root), offset == 0, graph.shape(of: value).count == graph.shape(of: root).count
        else { return nil }
        return root
    }
    if dims != b.dims {
        // A loop over another shape with as many elements (a BatchNorm's normalisation over [N·H·W, C], then the
        // activation over [N, H, W, C]) joins when it reads nothing but the first loop's outputs, whole and at its
        // own index, and scalars: element i of both loops is the same element in memory.
        guard b.dims.reduce(1, *) == count else { return nil }
        let bIdentity = Array(b.dims.indices)
        for statement in b.statements {
            for load in statement.expression.loads where !load.axes.isEmpty {
                guard load.axes == bIdentity, writtenRoot(load.value) != nil else { return nil }
            }
        }
    }
    let identity = Array(b.dims.indices)
    for statement in b.statements {
        for load in statement.expression.loads where written.contains(memoryRoot(of: load.value, in: graph).root) {
            // Another element of the first loop's output (or a view of it) is not computed yet in this iteration.
            guard load.axes == identity, dims == b.dims ? written.contains(load.value) : writtenRoot(load.value) != nil
            else { return nil }
        }
    }
    let computed = Set(statements.map(\.value))
    // A fused value both loops compute (recomputed in each) is computed once.
    let rewritten = b.statements.filter { !computed.contains($0.value) }.map { statement in
        var s = statement
        s.expression = s.expression.replacingLoads { value, _ in
            if written.contains(value) { return .local(value) }
            if dims != b.dims, let root = writtenRoot(value) { return .local(root) }
            return nil
        }
        return s
    }
    var equations = first.equations
    for e in second.equations where !equations.contains(e) { equations.append(e) }
    var body = first.body
    switch first.body {
    case .gemm(var g):
        g.epilogue = statements + rewritten
        body = .gemm(g)
    case .loop, .reduction, .window, .padRows, .oneHotArgmax, .oneHotSample, .allReduceSum:
        body = .loop(LoopNest(dims: dims, statements: statements + rewritten))
    }
    return Kernel(body: body, equations: equations.sorted())
}

/// merge-sibling-reductions: a column sum (BatchNorm's statistics and gradients: a sum over the N·H·W rows per
/// channel) joins an earlier one over the same rows when nothing it reads is written in between, and both run in
/// one pass over the rows: BatchNorm's backward pass sums ∂y, (x − mean)·∂y and −∂y·scale over the same tensors
/// in three kernels. Each sum adds the same terms in the same order as before, so the numbers do not change.
@Sendable func mergeSiblingReductions(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.mergeSiblingReductions else { return function }
    let graph = function.graph
    var kernels = function.kernels
    var index = 0
    while index < kernels.count {
        guard case .reduction(let r) = kernels[index].body, r.isColumnReduction else {
            index += 1
            continue
        }
        // Roots of what it reads: the later sum may not read anything written from the earlier one on.
        let reads = Set(kernels[index].reads.map { memoryRoot(of: $0, in: graph).root })
        var target: Int? = nil
        for j in stride(from: index - 1, through: 0, by: -1) {
            if case .reduction(let earlier) = kernels[j].body, earlier.isColumnReduction, earlier.kind == r.kind,
                earlier.dims == r.dims, earlier.reducedAxes == r.reducedAxes,
                earlier.parts.count < maximumSiblingReductions
            {
                target = j
                break
            }
            if kernels[j].outputs.contains(where: { reads.contains(memoryRoot(of: $0, in: graph).root) }) { break }
        }
        guard let j = target, case .reduction(var merged) = kernels[j].body,
            !kernels[j].outputs.contains(where: { reads.contains(memoryRoot(of: $0, in: graph).root) })
        else {
            index += 1
            continue
        }
        let computed = Set(merged.statements.map(\.value))
        merged.statements += r.statements.filter { !computed.contains($0.value) }
        merged.siblings += r.parts
        kernels[j].body = .reduction(merged)
        kernels[j].equations = Array(Set(kernels[j].equations + kernels[index].equations)).sorted()
        kernels.remove(at: index)
    }
    var next = function
    next.kernels = kernels
    return next
}

/// The most column sums one pass computes (each keeps its partial sums in a local array).
let maximumSiblingReductions = 4

/// Kernels with less work than this many floats run on one thread: waking the other threads costs a few
/// microseconds, about what a loop over this many floats takes.
public let parallelFloats = 1 << 15

/// split-between-threads: marks the kernels that the generated C splits between threads (`mplc_parallel`),
/// each thread taking a contiguous share: element-wise loops and row reductions by their first dimension,
/// column sums by blocks of rows (a row of partial sums each), GEMMs by rows of the product, streamed convolutions and sliding windows by
/// images. One-hot rows and row padding stay serial: they are small.
@Sendable func splitBetweenThreads(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    var next = function
    for index in next.kernels.indices {
        next.kernels[index].isParallel =
            options.splitBetweenThreads
            && worthSplitting(next.kernels[index], function.graph, atLeast: options.parallelFloats)
    }
    return next
}

private func worthSplitting(_ kernel: Kernel, _ graph: Graph, atLeast floats: Int) -> Bool {
    switch kernel.body {
    case .loop(let loop):
        return loop.dims.count > 0 && loop.dims[0] > 1 && loop.dims.reduce(1, *) >= floats
    case .reduction(let r):
        // Rows (reduced trailing axes) split by the first axis, each output element summed by one thread; columns
        // (reduced leading axes) by blocks of the first axis, each summed into its own partials (`Reduction.blocks`).
        let kept = r.dims.count - r.reducedAxes.count
        let isRowReduction = r.reducedAxes == Array(kept..<r.dims.count)
        guard kept > 0, isRowReduction || r.isColumnReduction else { return false }
        return r.dims[0] > 1 && r.dims.reduce(1, *) >= floats
    case .gemm(let g):
        let isStreamed = g.im2colA != nil || g.col2imOutput != nil  // a convolution: always big
        // m·k and n are each at most one value's count, but their product (the GEMM's work) need not fit in an Int.
        return isStreamed || (g.m > 1 && Shape([g.m, g.n, g.k]).checkedCount.map { $0 >= floats * 32 } ?? true)
    case .window(let w):
        return w.geometry.batch > 1 && graph.shape(of: w.output).count >= floats
    case .padRows, .oneHotArgmax, .oneHotSample, .allReduceSum:
        return false
    }
}
