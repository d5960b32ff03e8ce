// The kernel program: what each generated C function computes, in terms of IR values.
// A kernel reads values from memory (inputs, views, other kernels' outputs) and writes its outputs;
// values fused into a loop never touch memory and exist only as a scalar in the loop body.

import MPLIR

/// A scalar expression evaluated once per loop iteration.
public indirect enum ScalarExpr: Hashable, Sendable {
    /// Element of a value in memory. Axis k of the value is loop dimension `axes[k]`, so a broadcast read
    /// is a plain affine index (no division in the loop); `axes == 0..<rank` is the loop's own index.
    case load(Value, axes: [Int])
    /// A value computed earlier in the same iteration.
    case local(Value)
    case constant(Double)
    case unary(UnaryOp, ScalarExpr)
    case binary(BinaryOp, ScalarExpr, ScalarExpr)

    /// Every load in the expression, in evaluation order.
    public var loads: [(value: Value, axes: [Int])] {
        switch self {
        case .load(let value, let axes): return [(value, axes)]
        case .local, .constant: return []
        case .unary(_, let a): return a.loads
        case .binary(_, let a, let b): return a.loads + b.loads
        }
    }

    /// The expression with `.load(v, axes)` replaced by `replacement(v, axes)` where that is not nil.
    func replacingLoads(_ replacement: (Value, [Int]) -> ScalarExpr?) -> ScalarExpr {
        switch self {
        case .load(let value, let axes): return replacement(value, axes) ?? self
        case .local, .constant: return self
        case .unary(let u, let a): return .unary(u, a.replacingLoads(replacement))
        case .binary(let b, let x, let y):
            return .binary(b, x.replacingLoads(replacement), y.replacingLoads(replacement))
        }
    }
}

/// `value = expression` inside a loop; stored to the value's buffer when something outside the loop needs it.
public struct Statement: Hashable, Sendable {
    public var value: Value
    public var expression: ScalarExpr
    public var isStored: Bool
}

/// A loop nest over `dims` (row-major, the last dimension innermost) running the statements in order.
public struct LoopNest: Hashable, Sendable {
    public var dims: [Int]
    public var statements: [Statement]
}

public enum ReductionKind: Hashable, Sendable { case sum, max }

/// output[kept axes] = Σ or max over `reducedAxes` of `input`, a loop over the operand's shape `dims`
/// whose fused element-wise producers are `statements`.
public struct Reduction: Hashable, Sendable {
    public var kind: ReductionKind
    public var dims: [Int]
    public var reducedAxes: [Int]
    public var statements: [Statement]
    public var input: ScalarExpr
    public var output: Value
    /// Further reductions over the same loop, each of its own input into its own output, computed in the same
    /// pass over the rows (`merge-sibling-reductions`; column sums only).
    public var siblings: [ReductionSibling] = []

    /// Every reduction the kernel computes: (input, output), the first one's first.
    public var parts: [ReductionSibling] { [ReductionSibling(input: input, output: output)] + siblings }

    /// Reduces leading axes, not all (a column sum such as BatchNorm's statistics or a bias gradient): every
    /// output element gathers one element of each row.
    public var isColumnReduction: Bool {
        !reducedAxes.isEmpty && reducedAxes.count < dims.count && reducedAxes == Array(0..<reducedAxes.count)
    }
    /// A column reduction split between threads cuts its first axis into blocks of this many rows; each block
    /// is reduced by whichever thread claims it into its own row of partials, which are then combined in block
    /// order: every thread reads only its rows, and the result does not depend on the number of threads.
    public var blockRows: Int { (dims[0] + columnBlocks - 1) / columnBlocks }
    /// The number of such blocks: enough for the threads to even out their shares.
    public var blocks: Int { (dims[0] + blockRows - 1) / blockRows }
    private var columnBlocks: Int { min(dims[0], 2 * maxThreads) }
    /// Floats of one block's row of partials (whole cache lines, so blocks share none).
    public var partialFloats: Int { alignedFloats(dims[reducedAxes.count...].reduce(1, *)) }
}

/// One reduction of a kernel that computes several over the same loop (`Reduction.siblings`).
public struct ReductionSibling: Hashable, Sendable {
    public var input: ScalarExpr
    public var output: Value
}

/// An image batch seen through a sliding window: im2col(source) or the col2im that writes into an image batch.
public struct WindowedImages: Hashable, Sendable {
    /// The image batch [N, H, W, C]: the im2col operand, or the col2im result.
    public var images: Value
    public var geometry: WindowGeometry
    /// Images per chunk.
    public var chunkImages: Int

    /// Rows of the columns matrix per image.
    public var rowsPerImage: Int { geometry.outHeight * geometry.outWidth }
    /// Floats of one chunk of the columns matrix.
    public var chunkFloats: Int { chunkImages * rowsPerImage * geometry.kernel * geometry.kernel * geometry.channels }
}

/// How a GEMM is computed. Lowering chooses it (`winograd-convolutions`, `choose-gemm-strategies`), model.ir
/// prints it, and the emitter renders it; a kernel that `isParallel` also splits it between threads.
public enum GEMMStrategy: String, Hashable, Sendable {
    /// One cblas_sgemm over the product (split: each thread's rows).
    case blas
    /// cblas_sgemm on the im2col columns of a chunk of images at a time (`im2colA`): rows of the product, or for
    /// ∂W = colsᵀ·∂y a slice of the contraction.
    case blasOnColumns = "blas-on-column-chunks"
    /// cblas_sgemm a chunk of images at a time, each chunk's product summed into its images by col2im.
    case blasIntoCol2im = "blas-into-col2im"
    /// A streamed forward convolution with a tiny contraction (k ≤ `smallContraction`, n ≤ `smallWidth`): plain
    /// loops whose accumulators stay in registers, where sgemm would mostly pack.
    case smallGEMM = "small-gemm"
    /// ∂W of such a convolution (m ≤ `smallContraction`): outer products of the rows, summed in blocks.
    case smallOuterProducts = "small-outer-products"
    /// A streamed 3×3 stride-1 convolution (forward, ∂x or ∂W) by Winograd's F(2×2, 3×3), or F(4×4, 3×3) for
    /// the forward and ∂x (`GEMM.winogradTile`).
    case winograd
}

/// Convolutions whose contraction (k·k·C_in) is at most this, with at most `smallWidth` filters, run as
/// `GEMMStrategy.smallGEMM` (or `.smallOuterProducts` for their ∂W).
public let smallContraction = 16
public let smallWidth = 64

/// One `cblas_sgemm`: product = op(a)·op(b), [m, k]·[k, n], row-major, transposes as BLAS flags.
/// With an epilogue, sgemm writes into `output`'s buffer and the epilogue statements (which read the
/// product as `.load(product, identity)`) then update it in place, e.g. `relu(product + bias)`.
/// A convolution's GEMMs stream their columns: with `im2colA`, operand `a` is im2col of an image batch that is
/// never stored whole; the kernel fills a temporary with the columns of a few images at a time and multiplies
/// those rows (a forward convolution: rows of the product, epilogue on them; ∂W = colsᵀ·∂y: a slice of the
/// contraction, accumulated with beta = 1). With `col2imOutput`, the product (∂cols = ∂y·Wᵀ) is computed a few
/// images at a time into the temporary and summed into `output` = col2im(product) straight away.
public struct GEMM: Hashable, Sendable {
    public var a: Value
    public var b: Value
    public var transposeA: Bool
    public var transposeB: Bool
    public var m: Int
    public var n: Int
    public var k: Int
    public var product: Value
    public var epilogue: [Statement]
    /// The product itself, or the epilogue's last statement, or the col2im of the product.
    public var output: Value
    public var im2colA: WindowedImages? = nil
    public var col2imOutput: WindowedImages? = nil
    /// A forward convolution's pooling (max or average) of its output, run on each chunk of images right after
    /// the epilogue, while those rows are in cache (`poolInConvolutions`).
    public var pool: WindowKernel? = nil
    public var strategy = GEMMStrategy.blas

    /// Floats of one thread's part of the temporary: a chunk of columns (for Winograd, the transformed filters
    /// and the chunk's scratch), and for ∂W = colsᵀ·∂y the thread's partial sum of the product. 0 when the GEMM
    /// streams nothing.
    public var partFloats: Int { partialSumsOffset + (hasPartialSums ? alignedFloats(m * n) : 0) }
    /// Where a thread's partial sum starts in its part: after its chunk of columns or Winograd scratch.
    public var partialSumsOffset: Int {
        guard let w = im2colA ?? col2imOutput else { return 0 }
        guard let scratch = winogradScratch else { return alignedFloats(w.chunkFloats) }
        return alignedFloats(scratch.end)
    }
    /// The channels (in → out) of the 3×3 convolution of a streamed GEMM: the forward cols·W and ∂W = colsᵀ·∂y
    /// map the images' C channels to n; ∂x = col2im(∂y·Wᵀ) maps ∂y's k channels back to C.
    public var winogradChannels: (in: Int, out: Int)? {
        if let w = im2colA { return (w.geometry.channels, n) }
        if let w = col2imOutput { return (k, w.geometry.channels) }
        return nil
    }
    /// The output tiles of a Winograd GEMM, 4 or 2: F(4×4, 3×3) (36 products per 4×4 outputs) for the forward and
    /// ∂x where it needs fewer products than F(2×2, 3×3) (16 per 2×2), i.e. unless a side is 1 or 2 or both
    /// are 5 or 6; ∂W keeps F(2×2, 3×3). The runtime's `mplc_winograd4_conv3x3` or `mplc_winograd_conv3x3`.
    public var winogradTile: Int {
        guard strategy == .winograd, !hasPartialSums, let w = im2colA ?? col2imOutput else { return 2 }
        let (h, wd) = (w.geometry.outHeight, w.geometry.outWidth)
        return 36 * ((h + 3) / 4) * ((wd + 3) / 4) < 16 * ((h + 1) / 2) * ((wd + 1) / 2) ? 4 : 2
    }
    /// Floats of the (gradient of the) transformed filters G g Gᵀ at the start of a Winograd GEMM's part: 16 or
    /// 36 planes of in × out (`winogradTile` 2 or 4).
    public var winogradFiltersFloats: Int {
        winogradChannels.map { alignedFloats((winogradTile == 4 ? 36 : 16) * $0.in * $0.out) } ?? 0
    }
    /// A Winograd GEMM's scratch for one chunk, after the filters in a thread's part: the layout of the runtime's
    /// `mplc_winograd_scratch` (its one home; the emitter passes these offsets to the runtime).
    public var winogradScratch: WinogradScratch? {
        guard strategy == .winograd, let w = im2colA ?? col2imOutput, let c = winogradChannels else { return nil }
        // A 3×3 stride-1 pad-1 convolution: output tiles (`winogradTile`) over the chunk's images, the same for ∂x.
        let t = winogradTile
        let tiles = w.chunkImages * ((w.geometry.outHeight + t - 1) / t) * ((w.geometry.outWidth + t - 1) / t)
        return WinogradScratch(
            start: winogradFiltersFloats, tiles: tiles, planes: t == 4 ? 36 : 16, in: c.in, out: c.out)
    }
    /// ∂W = colsᵀ·∂y: each thread sums its images' share of the contraction, and the shares are added after.
    public var hasPartialSums: Bool { im2colA != nil && transposeA }
    /// The operand `a` as memory: the image batch when the columns are streamed.
    public var aInMemory: Value { im2colA?.images ?? a }
}

/// Where the parts of a Winograd GEMM's scratch are, in floats from the start of a thread's part: the transformed
/// input tiles v[planes][tiles][in], the products or output gradients m[planes][tiles][out] (16 planes each, 36
/// for F(4×4, 3×3); the runtime uses their front for one block of tiles at a time), a row of zeros for the padding
/// (in + out) and a row for the outputs past an odd edge (out).
public struct WinogradScratch: Hashable, Sendable {
    public var v, m, zeros, dropped, end: Int
    public var vPlane, mPlane: Int

    init(start: Int, tiles: Int, planes: Int, in: Int, out: Int) {
        (vPlane, mPlane) = (tiles * `in`, tiles * out)
        v = start
        m = v + planes * vPlane
        zeros = m + planes * mPlane
        dropped = zeros + `in` + out
        end = dropped + out
    }
}

/// The most threads a generated library runs on (`MPLC_MAX_THREADS`): streamed GEMMs plan a temporary part
/// for each.
public let maxThreads = 8

public enum WindowOp: String, Hashable, Sendable {
    case im2col, col2im, maxPool, maxPoolSelect, maxPoolScatter, avgPool, avgPoolTranspose
}

/// A sliding-window op over NHWC data, run by a hand-written helper of the C runtime.
public struct WindowKernel: Hashable, Sendable {
    public var op: WindowOp
    /// One operand, or (source, tangent/cotangent) for the max-pool derivatives.
    public var operands: [Value]
    public var geometry: WindowGeometry
    public var output: Value
}

public enum KernelBody: Hashable, Sendable {
    case loop(LoopNest)
    case reduction(Reduction)
    case gemm(GEMM)
    case window(WindowKernel)
    /// Zero rows, then copy `operand` to rows [start, start + its rows).
    case padRows(operand: Value, start: Int, output: Value)
    case oneHotArgmax(operand: Value, output: Value)
    case oneHotSample(probabilities: Value, uniform: Value, output: Value)
    /// Copy `operand` to `output` (unless they share memory), then sum `output` over the ranks in place
    /// (`mplc_allreduce_sum`). Never fused: every rank must call the collective once, in the same order.
    case allReduceSum(operand: Value, output: Value)
}

public struct Kernel: Hashable, Sendable {
    public var body: KernelBody
    /// The IR equations this kernel computes, ascending (the generated function's comment).
    public var equations: [Value]
    /// The C function's name, from the origin of its main equation (`name-kernels`), e.g. `step_teacher_conv3_fwd`.
    public var name = ""

    /// Split between threads, each taking a contiguous share of its rows or images (see `splitBetweenThreads`).
    public var isParallel = false

    /// Floats of scratch the kernel needs while it runs (and never after), 0 for most kernels: a part for each
    /// thread that may run it.
    public var temporaryFloats: Int {
        if case .reduction(let r) = body, isParallel, r.isColumnReduction {
            return r.parts.count * r.blocks * r.partialFloats
        }
        return (isParallel ? maxThreads : 1) * partFloats
    }

    /// Floats of one thread's part of the temporary.
    public var partFloats: Int {
        if case .gemm(let g) = body { return g.partFloats }
        return 0
    }

    /// Values this kernel writes to memory.
    public var outputs: [Value] {
        switch body {
        case .loop(let loop): return loop.statements.filter(\.isStored).map(\.value)
        case .reduction(let r): return r.parts.map(\.output)
        case .gemm(let g):
            // The product's buffer (output) always; other epilogue values when something else reads them; the pool.
            return [g.output] + g.epilogue.filter { $0.isStored && $0.value != g.output }.map(\.value)
                + (g.pool.map { [$0.output] } ?? [])
        case .window(let w): return [w.output]
        case .padRows(_, _, let output), .oneHotArgmax(_, let output), .oneHotSample(_, _, let output),
            .allReduceSum(_, let output):
            return [output]
        }
    }

    /// Values this kernel reads from memory, each once, in order of first use.
    public var reads: [Value] {
        var seen: [Value] = []
        for value in readsWithRepeats where !seen.contains(value) { seen.append(value) }
        return seen
    }

    private var readsWithRepeats: [Value] {
        func loads(_ statements: [Statement]) -> [Value] { statements.flatMap { $0.expression.loads.map(\.value) } }
        switch body {
        case .loop(let loop): return loads(loop.statements)
        case .reduction(let r): return loads(r.statements) + r.parts.flatMap { $0.input.loads.map(\.value) }
        case .gemm(let g): return [g.aInMemory, g.b] + loads(g.epilogue).filter { $0 != g.product }
        case .window(let w): return w.operands
        case .padRows(let operand, _, _), .oneHotArgmax(let operand, _), .allReduceSum(let operand, _): return [operand]
        case .oneHotSample(let p, let u, _): return [p, u]
        }
    }

    /// Whether every read of `value` is at the element the kernel is about to write, read before the write.
    /// Element-wise loops (and GEMM epilogues, which are such loops) load everything of an iteration before
    /// they store. A GEMM's own operands are read whole. (sgemm itself writes `output` before the epilogue
    /// runs: the memory planner accounts for that.)
    public func readsOnlyPointwise(_ value: Value) -> Bool {
        let dims: [Int]
        let statements: [Statement]
        switch body {
        case .loop(let loop):
            (dims, statements) = (loop.dims, loop.statements)
        case .gemm(let g):
            guard value != g.aInMemory && value != g.b else { return false }
            (dims, statements) = ([g.m, g.n], g.epilogue)
        case .reduction, .window, .padRows, .oneHotArgmax, .oneHotSample, .allReduceSum:
            return false
        }
        let identity = Array(dims.indices)
        return statements.allSatisfy { statement in
            statement.expression.loads.allSatisfy { $0.value != value || $0.axes == identity }
        }
    }
}
