// name-kernels: every kernel is named after the layer and pass its main equation comes from (`Origin`), so that
// a reader of model.c goes from a kernel to the layer that caused it: `step_teacher_conv3_fwd`,
// `step_student_dense1_vjp`, `step_teacher_dense1_update`. Names are C identifiers, unique in model.c (the entry
// point's short name first, `_2`, `_3`, ... after the second and later kernels of one origin) and the same on
// every run (they depend on the program only).

import MPLIR

@Sendable func nameKernels(_ function: LoweredFunction, _: LoweringOptions) -> LoweredFunction {
    var next = function
    let entry = function.name.hasPrefix("mplc_") ? String(function.name.dropFirst("mplc_".count)) : function.name
    var seen: [String: Int] = [:]  // looked up, never iterated
    for index in next.kernels.indices {
        let kernel = next.kernels[index]
        let origin =
            kernel.mainEquation.flatMap { function.graph.origin(of: $0) }
            ?? kernel.equations.lazy.compactMap { function.graph.origin(of: $0) }.first
        let base = cIdentifier(entry + "_" + (origin.map { $0.scope + "_" + $0.pass.rawValue } ?? "kernel"))
        let count = (seen[base] ?? 0) + 1
        seen[base] = count
        next.kernels[index].name = count == 1 ? base : "\(base)_\(count)"
    }
    return next
}

extension Kernel {
    /// What the kernel is for: a GEMM's product, a reduction's or window's output, a loop's first stored value.
    var mainEquation: Value? {
        switch body {
        case .gemm(let g): return g.product
        case .reduction(let r): return r.output
        case .window(let w): return w.output
        case .loop(let loop): return loop.statements.first(where: \.isStored)?.value
        case .padRows(_, _, let output), .oneHotArgmax(_, let output), .oneHotSample(_, _, let output),
            .allReduceSum(_, let output):
            return output
        }
    }
}

/// `text` with every character that is not a letter, digit or underscore replaced by `_`.
func cIdentifier(_ text: String) -> String {
    String(
        text.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_")
                ? Character(scalar) : "_"
        })
}

extension Kernel {
    /// One line for model.ir: the name, what the kernel does and the equations it computes.
    public var summary: String { "kernel \(name): \(work) = " + equations.map(\.description).joined(separator: " ") }

    /// What the kernel does: its kind, a GEMM's sizes and strategy, whether it is split between threads.
    public var work: String {
        let what: String
        switch body {
        case .loop(let loop): what = "loop \(Shape(loop.dims))"
        case .reduction(let r):
            what =
                "reduce_\(r.kind) \(Shape(r.dims)) axes=\(r.reducedAxes)"
                + (r.siblings.isEmpty ? "" : " outputs=\(r.parts.count)")
        case .gemm(let g):
            what =
                "gemm \(g.strategy.rawValue) m=\(g.m) n=\(g.n) k=\(g.k)" + (g.transposeA ? " tA" : "")
                + (g.transposeB ? " tB" : "")
                + (g.im2colA.map { " chunk=\($0.chunkImages)" } ?? "")
                + (g.col2imOutput.map { " chunk=\($0.chunkImages)" } ?? "")
                + (g.epilogue.isEmpty ? "" : " +epilogue") + (g.pool == nil ? "" : " +pool")
        case .window(let w): what = "window \(w.op.rawValue) \(w.geometry)"
        case .padRows: what = "pad_rows"
        case .oneHotArgmax: what = "one_hot_argmax"
        case .oneHotSample: what = "one_hot_sample"
        case .allReduceSum: what = "all_reduce_sum"
        }
        return what + (isParallel ? " split" : "")
    }
}
