// The memory a compiled model needs at run time, checked against the machine before anything is written or
// built: a model whose arenas cannot fit is rejected with the numbers instead of failing (or swapping) later.

import Foundation
import MPLIR
import MPLLower
import MPLModel

public enum ResourceLimits {
    /// The bytes the runner allocates for a model, by arena (docs/ABI.md: state, one I/O arena per step
    /// kind, scratch) plus the evaluation buffers (`MPLC_EVAL_BATCH` rows of inputs and logits) and, when the
    /// recipe keeps one, the state-sized arena of the student's EMA.
    public struct ArenaBytes: Sendable {
        public var state: Int
        public var stepIO: Int
        public var supervisedIO: Int
        public var scratch: Int
        public var evaluation: Int
        public var ema: Int
        /// The sum, or Int.max if it does not fit.
        public var total: Int { saturatingSum([state, stepIO, supervisedIO, scratch, evaluation, ema]) }
    }

    /// The most elements one value of a step may have, whatever the memory limit: 2^44 (64 TiB of floats),
    /// far beyond any machine. With it, every size, offset and sum the lowering forms fits in an Int.
    public static let maxValueElements = 1 << 44

    /// Where the limit comes from: the machine's physical memory, or `MPLC_MEMORY_LIMIT` (bytes), which
    /// replaces it (for containers whose memory limit is below the machine's, and for tests).
    public struct Limit: Sendable {
        public var bytes: Int
        public var source: String
        public init(bytes: Int, source: String) {
            self.bytes = bytes
            self.source = source
        }
    }

    public static func arenaBytes(_ compiled: CompiledModel) -> ArenaBytes {
        arenaBytes(compiled.kernels, model: compiled.model)
    }

    static func arenaBytes(_ kernels: KernelProgram, model: Model) -> ArenaBytes {
        func io(_ name: String) -> Int {
            bytes(kernels.entryPoints.first { $0.name == name }?.bindings.ioFloats ?? 0)
        }
        let state = bytes(kernels.state.floats)
        return ArenaBytes(
            state: state, stepIO: io("mplc_step"), supervisedIO: io("mplc_supervised_step"),
            scratch: kernels.scratchBytes, evaluation: evaluationBytes(model),
            ema: model.recipe.emaDecay > 0 ? state : 0)
    }

    /// A lower bound of `arenaBytes` from the program before lowering, in saturating arithmetic: the state and
    /// I/O arenas exactly (the same aligned tensors the lowering lays out) and, for scratch, the largest GEMM
    /// product that is not a result (a GEMM always writes its product to memory).
    public static func estimate(_ program: Program, model: Model) -> ArenaBytes {
        func floats(_ shapes: [Shape]) -> Int {
            saturatingSum(
                shapes.map { shape in
                    shape.checkedCount.map { count in
                        saturatingProduct([
                            count / arenaAlignment + (count % arenaAlignment == 0 ? 0 : 1), arenaAlignment,
                        ])
                    } ?? Int.max
                })
        }
        func io(_ name: String) -> Int {
            guard let entry = program.entryPoints.first(where: { $0.name == name }) else { return 0 }
            let graph = entry.graph
            let inputs = graph.inputs.filter { entry.inputStorage[$0.name] == .io }.map { graph.shape(of: $0.value) }
            let results = graph.results.filter { entry.resultStorage[$0.name] == .io }.map { graph.shape(of: $0.value) }
            return bytes(floats(inputs + results))
        }
        var largestProduct = 0
        for entry in program.entryPoints {
            let results = Set(entry.graph.results.map(\.value))
            for value in entry.graph.values where !results.contains(value) {
                if case .matmul = entry.graph.op(of: value) {
                    largestProduct = max(largestProduct, floats([entry.graph.shape(of: value)]))
                }
            }
        }
        let state = bytes(floats(program.state.map(\.shape)))
        return ArenaBytes(
            state: state, stepIO: io("mplc_step"), supervisedIO: io("mplc_supervised_step"),
            scratch: bytes(largestProduct),
            evaluation: evaluationBytes(model), ema: model.recipe.emaDecay > 0 ? state : 0)
    }

    /// The check before lowering (the expensive passes): every value of every entry point has at most
    /// `maxValueElements` elements, and `estimate` fits in `limit`. Throws the failure `mplc` prints (exit 1).
    public static func checkBeforeLowering(_ program: Program, model: Model, limit: Limit) throws {
        for entry in program.entryPoints {
            for value in entry.graph.values {
                let shape = entry.graph.shape(of: value)
                guard let count = shape.checkedCount, count <= maxValueElements else {
                    throw CompileFailure(
                        """
                        error: model \(model.name) needs a tensor \(shape) of \(shape.checkedCount.map(String.init) ?? "more than 2^63") \
                        elements in \(entry.name), more than the \(maxValueElements) (2^44) one tensor may have on any machine. \
                        Use smaller layers or batches (labeledBatch, unlabeledRatio, finetune batch, evalBatch).
                        """, exceedsResources: true)
                }
            }
        }
        let arenas = estimate(program, model: model)
        if arenas.total > limit.bytes {
            throw failure(model, arenas, limit, bound: "at least ")
        }
    }

    /// The exact check after lowering, before anything is emitted.
    public static func check(_ kernels: KernelProgram, model: Model, limit: Limit) throws {
        let arenas = arenaBytes(kernels, model: model)
        if arenas.total > limit.bytes {
            throw failure(model, arenas, limit, bound: "")
        }
    }

    private static func failure(_ model: Model, _ arenas: ArenaBytes, _ limit: Limit, bound: String) -> CompileFailure {
        CompileFailure(
            """
            error: model \(model.name) needs \(bound)\(arenas.total) bytes (\(human(arenas.total))) of arenas, more than \
            the \(limit.bytes) bytes (\(human(limit.bytes))) of \(limit.source): state \(arenas.state), \
            step I/O \(arenas.stepIO), supervised I/O \(arenas.supervisedIO), scratch \(bound)\(arenas.scratch), \
            evaluation \(arenas.evaluation), EMA \(arenas.ema) bytes. Use smaller layers or batches (labeledBatch, \
            unlabeledRatio, finetune batch, evalBatch).
            """, exceedsResources: true)
    }

    /// The evaluation buffers: `MPLC_EVAL_BATCH` rows of inputs and logits.
    private static func evaluationBytes(_ model: Model) -> Int {
        bytes(
            saturatingProduct([model.recipe.evalBatch, saturatingSum([model.input.featureShape.count, model.classes])]))
    }

    private static func bytes(_ floats: Int) -> Int { saturatingProduct([floats, MemoryLayout<Float>.size]) }

    /// `MPLC_MEMORY_LIMIT` if set (a positive integer), else physical memory from sysconf.
    public static func memoryLimit(environment: [String: String] = ProcessInfo.processInfo.environment) -> Limit {
        if let text = environment["MPLC_MEMORY_LIMIT"], let bytes = Int(text), bytes > 0 {
            return Limit(bytes: bytes, source: "MPLC_MEMORY_LIMIT")
        }
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Limit(bytes: Int.max, source: "unknown physical memory") }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return Limit(bytes: overflow ? Int.max : bytes, source: "this machine's physical memory")
    }

    /// No limit but 64-bit sizes (for the API and tests; `mplc` uses `memoryLimit()`).
    public static let unlimited = Limit(bytes: Int.max, source: "no limit")

    /// 1.5 GiB, 12.0 MiB...: the unit that keeps the number short.
    static func human(_ n: Int) -> String {
        var value = Double(n)
        for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
            if value < 1024 || unit == "TiB" { return unit == "B" ? "\(n) B" : String(format: "%.1f %@", value, unit) }
            value /= 1024
        }
        return "\(n) B"
    }
}

private func saturatingSum(_ values: [Int]) -> Int {
    values.reduce(0) { total, value in
        let (sum, overflow) = total.addingReportingOverflow(value)
        return overflow ? Int.max : sum
    }
}

private func saturatingProduct(_ values: [Int]) -> Int {
    values.reduce(1) { total, value in
        let (product, overflow) = total.multipliedReportingOverflow(by: value)
        return overflow ? Int.max : product
    }
}
