// MPLLower: graph in, kernel program out. The pipeline below is the table of contents of this module;
// each entry is a pure function from one `LoweredFunction` to the next, and every graph pass keeps the
// graph well formed (`Graph.verify()` returns []), which `LoweringOptions.verifyAfterEachPass` checks.

import MPLIR

public struct LoweringOptions: Sendable {
    /// Inline single-use element-wise producers into their consumer's loop (off: one loop per op).
    public var fuseElementwise: Bool
    /// Recompute a cheap element-wise value read by several loops inside each of them instead of storing it
    /// (`placements(of:fuseElementwise:recomputeCheapValues:)`).
    public var recomputeCheapValues: Bool
    /// Apply a matmul's only element-wise consumer (bias, activation) right after its sgemm call.
    public var foldGEMMEpilogues: Bool
    /// Run adjacent element-wise loops over the same shape as one loop.
    public var mergeSiblingLoops: Bool
    /// Compute column sums over the same rows in one pass (`mergeSiblingReductions`).
    public var mergeSiblingReductions: Bool
    /// Let scratch buffers whose live ranges do not overlap share memory (off: one buffer per value).
    public var reuseScratch: Bool
    /// Build a convolution's im2col columns a chunk of images at a time inside its GEMMs (off: im2col and
    /// col2im are kernels of their own and the columns are stored whole).
    public var streamConvolutions: Bool
    /// Pool a streamed convolution's output inside its kernel, a chunk of images at a time (off: the pooling is a
    /// kernel of its own that reads the whole activation back).
    public var poolInConvolutions: Bool
    /// Run streamed 3×3 stride-1 convolutions (forward, ∂x and ∂W) by Winograd (`GEMM.winogradTile`; off: im2col +
    /// sgemm).
    public var winogradConvolutions: Bool
    /// Give each backward reader of a cheap forward activation its own recomputation of it (`rematerialise`),
    /// so that only the value it starts from is kept across the step (off: the activations themselves are kept).
    public var rematerialise: Bool
    /// Floats per chunk of a streamed convolution (see `streamChunkFloats`); tests make it small.
    public var streamChunkFloats: Int
    /// Kernels with less work than this (floats, or GEMM multiply-adds / 32) run on one thread; tests make it 0.
    public var parallelFloats: Int
    /// Split big kernels between threads (`mplc_parallel`); off, every kernel runs on the caller's thread and the
    /// code touches no global state, so that functions of an exported library can run on many threads at once.
    public var splitBetweenThreads: Bool
    /// Trap with the verifier's problems if a graph pass breaks the graph (a compiler bug).
    public var verifyAfterEachPass: Bool

    public init(
        fuseElementwise: Bool = true, recomputeCheapValues: Bool = true, foldGEMMEpilogues: Bool = true,
        mergeSiblingLoops: Bool = true,
        mergeSiblingReductions: Bool = true,
        reuseScratch: Bool = true, streamConvolutions: Bool = true, poolInConvolutions: Bool = true,
        winogradConvolutions: Bool = true, rematerialise: Bool = true,
        streamChunkFloats: Int = MPLLower.streamChunkFloats, parallelFloats: Int = MPLLower.parallelFloats,
        splitBetweenThreads: Bool = true, verifyAfterEachPass: Bool = true
    ) {
        self.fuseElementwise = fuseElementwise
        self.recomputeCheapValues = recomputeCheapValues
        self.foldGEMMEpilogues = foldGEMMEpilogues
        self.mergeSiblingLoops = mergeSiblingLoops
        self.mergeSiblingReductions = mergeSiblingReductions
        self.reuseScratch = reuseScratch
        self.streamConvolutions = streamConvolutions
        self.poolInConvolutions = poolInConvolutions
        self.winogradConvolutions = winogradConvolutions
        self.rematerialise = rematerialise
        self.streamChunkFloats = streamChunkFloats
        self.parallelFloats = parallelFloats
        self.splitBetweenThreads = splitBetweenThreads
        self.verifyAfterEachPass = verifyAfterEachPass
    }
}

/// One named step of the lowering pipeline.
public struct Pass: Sendable {
    public let name: String
    public let run: @Sendable (LoweredFunction, LoweringOptions) -> LoweredFunction
    /// Whether the pass rewrites the graph (and so must leave it verifiable).
    public let rewritesGraph: Bool

    static func graph(_ name: String, _ rewrite: @escaping @Sendable (Graph) -> Graph) -> Pass {
        Pass(
            name: name,
            run: { function, _ in
                var next = function
                next.graph = rewrite(function.graph)
                return next
            }, rewritesGraph: true)
    }

    static func kernels(
        _ name: String, _ run: @escaping @Sendable (LoweredFunction, LoweringOptions) -> LoweredFunction
    ) -> Pass {
        Pass(name: name, run: run, rewritesGraph: false)
    }
}

public enum Lowering {
    /// The whole lowering of one entry point, in order.
    public static let pipeline: [Pass] = [
        .graph("simplify", simplify),  // x*1, x+0, constant ops, reshape/broadcast chains
        .graph("eliminate-common-subexpressions", eliminateCommonSubexpressions),
        .graph("share-relu-masks", shareReLUMasks),  // step(x) from relu(x); conv ReLU in its epilogue
        .graph("mask-pooled-cotangents", maskPooledCotangents),  // ReLU' before a max-pool's transpose, not after
        .graph("skip-zero-rows", skipZeroRows),  // backward passes on the rows a loss reaches
        .graph("eliminate-common-subexpressions", eliminateCommonSubexpressions),
        .graph("eliminate-dead-code", eliminateDeadCode),  // keep what the results need
        Pass(name: "rematerialise", run: rematerialise, rewritesGraph: true),  // backward reads recompute activations
        .kernels("form-kernels", formKernels),  // fuse element-wise chains into loops
        .kernels("stream-convolutions", streamConvolutions),  // im2col/col2im a chunk at a time in the GEMMs
        .kernels("fold-gemm-epilogues", foldGEMMEpilogues),  // bias + activation right after sgemm
        .kernels("merge-sibling-loops", mergeSiblingLoops),  // e.g. v' and θ' of one optimiser update
        .kernels("merge-sibling-reductions", mergeSiblingReductions),  // BatchNorm's column sums in one pass
        .kernels("pool-in-convolutions", poolInConvolutions),  // max pool on a conv's chunk, in cache
        .kernels("winograd-convolutions", winogradConvolutions),  // 3×3 convolutions in 2.25-4× fewer multiplies
        .kernels("choose-gemm-strategies", chooseGEMMStrategies),  // BLAS, on column chunks, small loops
        .kernels("split-between-threads", splitBetweenThreads),  // which kernels run on every thread
        .kernels("plan-memory", planMemory),  // arenas, in-place state, scratch reuse
        .kernels("name-kernels", nameKernels),  // after the layers they compute
    ]

    /// Lowers every entry point of `program`; the scratch arena is shared (its size is the largest need).
    public static func lower(_ program: Program, options: LoweringOptions = LoweringOptions()) -> KernelProgram {
        let state = layOutState(program.state)
        let functions = program.entryPoints.map { lower($0, state: state, options: options) }
        return KernelProgram(
            modelName: program.modelName, regenerateCommand: program.regenerateCommand,
            state: state, entryPoints: functions, macros: program.macros)
    }

    /// Lowers one entry point; `afterEachPass` sees the function after every pass (tests verify the graph there).
    public static func lower(
        _ entry: EntryPoint, state: ArenaLayout, options: LoweringOptions = LoweringOptions(),
        afterEachPass: (String, LoweredFunction) -> Void = { _, _ in }
    ) -> LoweredFunction {
        var function = LoweredFunction(entry: entry, state: state)
        for pass in pipeline {
            function = pass.run(function, options)
            if pass.rewritesGraph && options.verifyAfterEachPass {
                let problems = function.graph.verify()
                precondition(
                    problems.isEmpty, "pass \(pass.name) broke \(entry.name): \(problems.joined(separator: "; "))")
            }
            afterEachPass(pass.name, function)
        }
        return function
    }
}

/// The lowered program: what the C emitter needs, and nothing it has to recompute.
public struct KernelProgram: Sendable {
    public var modelName: String
    public var regenerateCommand: String
    /// The state arena: `Program.state` in order, each tensor aligned to `arenaAlignment` floats.
    public var state: ArenaLayout
    public var entryPoints: [LoweredFunction]
    public var macros: [(name: String, value: MacroValue)]

    /// The scratch arena is shared by every entry point, so it is as large as the largest plan.
    public var scratchFloats: Int { entryPoints.map(\.plan.scratchFloats).max() ?? 0 }
    /// Peak scratch memory of the plan, in bytes.
    public var scratchBytes: Int { scratchFloats * MemoryLayout<Float>.size }
    /// Every scratch buffer of every entry point given its own memory: what the plan saves against.
    public var naiveScratchFloats: Int { entryPoints.map(\.plan.naiveScratchFloats).reduce(0, +) }
    public var naiveScratchBytes: Int { naiveScratchFloats * MemoryLayout<Float>.size }
}

/// One entry point as it moves down the pipeline: the graph, where its inputs and results live,
/// then its kernels in execution order, then its memory plan.
public struct LoweredFunction: Sendable {
    /// The C function's name, e.g. `mplc_step`.
    public var name: String
    public var tableName: String
    /// The optimised graph; kernels and the plan refer to its values.
    public var graph: Graph
    public var bindings: Bindings
    public var kernels: [Kernel] = []
    public var plan = MemoryPlan()

    init(entry: EntryPoint, state: ArenaLayout) {
        name = entry.name
        tableName = entry.tableName
        graph = entry.graph
        bindings = Bindings(entry: entry, state: state)
    }
}
