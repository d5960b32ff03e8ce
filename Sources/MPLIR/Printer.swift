// A stable text form of the IR: one equation per line (with its origin, if it has one), used in dumps, goldens
// and error messages.

extension Op {
    /// The op's mnemonic and its static attributes (no operands).
    public var mnemonic: String {
        switch self {
        case .input(let name): return "input \"\(name)\""
        case .constant(let c): return "constant \(formatNumber(c))"
        case .unary(let u, _): return u.rawValue
        case .binary(let b, _, _): return b.rawValue
        case .broadcast(_, let axes): return "broadcast axes=\(axes)"
        case .reduceSum(_, let axes): return "reduce_sum axes=\(axes)"
        case .reduceMax(_, let axes): return "reduce_max axes=\(axes)"
        case .reshape: return "reshape"
        case .matmul(_, _, let ta, let tb): return "matmul" + (ta ? " tA" : "") + (tb ? " tB" : "")
        case .im2col(_, let g): return "im2col \(g)"
        case .col2im(_, let g): return "col2im \(g)"
        case .maxPool(_, let g): return "max_pool \(g)"
        case .maxPoolSelect(_, _, let g): return "max_pool_select \(g)"
        case .maxPoolScatter(_, _, let g): return "max_pool_scatter \(g)"
        case .avgPool(_, let g): return "avg_pool \(g)"
        case .avgPoolTranspose(_, let g): return "avg_pool_transpose \(g)"
        case .sliceRows(_, let start): return "slice_rows start=\(start)"
        case .padRows(_, let start): return "pad_rows start=\(start)"
        case .oneHotArgmax: return "one_hot_argmax"
        case .oneHotSample: return "one_hot_sample"
        case .stopGradient: return "stop_gradient"
        case .allReduceSum: return "all_reduce_sum"
        }
    }
}

/// Numbers print the same on every machine: shortest round-trip form of the Double.
public func formatNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return "\(x)"
}

extension Graph {
    public func text(of value: Value) -> String {
        let equation = equations[value.id]
        let operands = equation.op.operands.map(\.description).joined(separator: ", ")
        let origin = equation.origin.map { "  // \($0)" } ?? ""
        return "\(value) = \(equation.op.mnemonic)\(operands.isEmpty ? "" : " " + operands) : \(equation.shape)"
            + origin
    }

    /// The whole graph, one equation per line, then its results.
    public var text: String {
        var lines = values.map { text(of: $0) }
        for result in results { lines.append("result \"\(result.name)\" = \(result.value)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
