// The memory a compiled model needs at run time, checked against the machine before anything is written or
// built: a model whose arenas cannot fit is rejected with the numbers instead of failing (or swapping) later.

import Foundation
import MPLLower

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
        public var total: Int { [state, stepIO, supervisedIO, scratch, evaluation, ema].reduce(0, &+) }
    }

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
        let float = MemoryLayout<Float>.size
        func io(_ name: String) -> Int {
            (compiled.kernels.entryPoints.first { $0.name == name }?.bindings.ioFloats ?? 0) &* float
        }
        let model = compiled.model
        let evaluation = model.recipe.evalBatch &* (model.input.featureShape.count &+ model.classes) &* float
        let state = compiled.kernels.state.floats &* float
        return ArenaBytes(
            state: state, stepIO: io("mplc_step"), supervisedIO: io("mplc_supervised_step"),
            scratch: compiled.kernels.scratchBytes, evaluation: evaluation, ema: model.recipe.emaDecay > 0 ? state : 0)
    }

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

    /// nil if the arenas fit in `limit`, else the failure `mplc` prints (exit 1).
    public static func check(_ compiled: CompiledModel, limit: Limit = memoryLimit()) -> CompileFailure? {
        let arenas = arenaBytes(compiled)
        guard arenas.total > limit.bytes || arenas.total < 0 else { return nil }
        return CompileFailure(
            """
            error: model \(compiled.model.name) needs \(arenas.total) bytes (\(human(arenas.total))) of arenas, more than \
            the \(limit.bytes) bytes (\(human(limit.bytes))) of \(limit.source): state \(arenas.state), \
            step I/O \(arenas.stepIO), supervised I/O \(arenas.supervisedIO), scratch \(arenas.scratch), \
            evaluation \(arenas.evaluation), EMA \(arenas.ema) bytes. Use smaller layers or batches (labeledBatch, \
            unlabeledRatio, finetune batch, evalBatch).
            """)
    }

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
