// rematerialise: a backward pass reads the forward pass's activations long after they were computed, so each
// one it reads stays in memory from the forward pass to the backward pass. For a BatchNorm + LeakyReLU layer
// that is four tensors of the activation's size (x − mean, the normalised y, αy and max(y, αy)) where one, the
// BatchNorm's input x, would do: everything else is a few element-wise ops away from x and the per-channel
// statistics. This pass gives each backward reader of such a value its own copy of the element-wise chain that
// computes it, right before the reader. The copy starts from values in memory that no backward equation reads
// (x: a convolution's output with its bias, or a residual sum), which are then kept instead, and from small
// ones (statistics, parameters). form-kernels fuses a copy read by an element-wise loop or a reduction into
// that loop (no memory); one read by a GEMM (a convolution's ∂W reads its input's im2col columns) is stored from
// its own kernel to that GEMM only. The forward originals die in the forward pass.
//
// Values are grouped by the one large value their copies start from; a group is copied when the memory its
// values stop keeping exceeds the memory of keeping that start (so relu(x) alone is not recomputed from x).
// Copies are computed in the reader's shape (a reshape between element-wise ops would make form-kernels store
// a link of the chain). The pass runs after the last common-subexpression elimination, which would merge the
// copies back. They apply the same operations to the same operands as the originals: the same numbers.

import MPLIR

/// Recompute chains of at most this many equations, per copy.
let rematerialisedChainLimit = 32

@Sendable func rematerialise(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    guard options.rematerialise else { return function }
    var next = function
    next.graph = eliminateDeadCode(
        Rematerialiser(
            function.graph, streamedColumns: options.streamConvolutions, fuseElementwise: options.fuseElementwise
        ).run())
    return next
}

/// What a chain copy does with a value it reaches.
private enum Recompute {
    /// Copies it: an element-wise op, a view, or the im2col columns that a streamed convolution never stores.
    case copy
    /// Reads it where it is: a constant or broadcast, which loops read in place anyway (and small).
    case share
    /// Reads it from memory: an input, a reduction, a GEMM, a window op.
    case leaf
}

private struct Rematerialiser {
    let graph: Graph
    let streamedColumns: Bool
    let placement: [Placement]
    /// Per value of kind `.copy`: whether a copy of it may be built (short enough, one large value to start from).
    var copyable: [Bool]
    /// The values a copy of each value reads (its leaves), with `copyable` chains expanded.
    var leaves: [Set<Value>]
    /// Equations in one copy of each value.
    var chainLength: [Int]
    /// Whether a backward equation reads the value.
    var backwardReaders: [Bool]

    init(_ graph: Graph, streamedColumns: Bool, fuseElementwise: Bool) {
        self.graph = graph
        self.streamedColumns = streamedColumns
        placement = placements(of: graph, fuseElementwise: fuseElementwise)
        let count = graph.equations.count
        backwardReaders = Array(repeating: false, count: count)
        copyable = Array(repeating: false, count: count)
        leaves = Array(repeating: [], count: count)
        chainLength = Array(repeating: 0, count: count)
        for value in graph.values where Self.isBackward(graph.origin(of: value)) {
            for operand in graph.op(of: value).operands { backwardReaders[operand.id] = true }
        }
        // Reading a view, or the columns of a streamed convolution, reads the memory of its operand.
        for value in graph.values.reversed() where backwardReaders[value.id] && !occupiesMemory(value) {
            for operand in graph.op(of: value).operands { backwardReaders[operand.id] = true }
        }
        for value in graph.values where kind(value) == .copy {
            var reads = Set<Value>()
            var length = 1
            for operand in graph.op(of: value).operands {
                if expands(operand) {
                    reads.formUnion(leaves[operand.id])
                    length += chainLength[operand.id]
                } else {
                    reads.insert(operand)
                }
            }
            leaves[value.id] = reads
            chainLength[value.id] = length
            // Two large values to start from (a residual sum, a product of activations) would keep both alive.
            copyable[value.id] =
                length <= rematerialisedChainLimit && reads.filter { isLarge($0, comparedTo: value) }.count <= 1
        }
    }

    /// Whether a copy that reaches `value` copies it too, rather than reading it. A value in memory that no
    /// backward equation reads (a convolution's output with its bias, a residual sum) is read: it is the value
    /// to keep, and copying past it would only keep its operand instead (and cost a GEMM its epilogue).
    func expands(_ value: Value) -> Bool {
        kind(value) == .copy && copyable[value.id] && (!occupiesMemory(value) || backwardReaders[value.id])
    }

    /// Whether the value has memory of its own: not a fused scalar, a view or the columns of a streamed convolution.
    func occupiesMemory(_ value: Value) -> Bool {
        if case .im2col = graph.op(of: value), streamedColumns { return false }
        return placement[value.id] == .memory
    }

    func kind(_ value: Value) -> Recompute {
        let op = graph.op(of: value)
        switch op.family {
        case .elementwise, .view: return .copy
        case .fill, .broadcast: return .share
        case .structured:
            if case .im2col = op, streamedColumns { return .copy }
            return .leaf
        case .input, .reduction: return .leaf
        }
    }

    /// A leaf that costs memory on the scale of the value computed from it. Constants and broadcasts (a
    /// per-channel vector, a row's statistic) never do, however small the batch.
    func isLarge(_ leaf: Value, comparedTo value: Value) -> Bool {
        kind(leaf) != .share && graph.shape(of: leaf).count * 64 >= graph.shape(of: value).count
    }

    /// Memory that stops being kept across the step when the value's backward readers get copies.
    func savedFloats(_ value: Value) -> Int {
        occupiesMemory(value) ? graph.shape(of: value).count : 0
    }

    static func isBackward(_ origin: Origin?) -> Bool {
        origin?.pass == .vjp || origin?.pass == .jvpVJP
    }

    static func isForward(_ origin: Origin?) -> Bool {
        origin?.pass == .forward || origin?.pass == .jvp
    }

    /// The forward values whose backward readers get copies: grouped by the one large value their copies start
    /// from, a group is copied when what it stops keeping is more than what keeping that value costs.
    func chosenValues() -> Set<Value> {
        // Iterated below only to form a union, which does not depend on the order.
        var groups: [Value?: (members: [Value], saved: Int)] = [:]
        for value in graph.values
        where kind(value) == .copy && copyable[value.id] && backwardReaders[value.id]
            && Self.isForward(graph.origin(of: value))
        {
            let start = leaves[value.id].filter { isLarge($0, comparedTo: value) }.first
            groups[start, default: ([], 0)].members.append(value)
            groups[start, default: ([], 0)].saved += savedFloats(value)
        }
        var chosen = Set<Value>()
        for (start, group) in groups {
            // A start the backward pass reads anyway, or an input (not scratch), costs nothing more to keep.
            let cost: Int = {
                guard let start else { return 0 }
                if backwardReaders[start.id] { return 0 }
                if case .input = graph.op(of: start) { return 0 }
                return graph.shape(of: start).count
            }()
            if group.saved > cost { chosen.formUnion(group.members) }
        }
        return chosen
    }

    func run() -> Graph {
        let chosen = chosenValues()
        guard !chosen.isEmpty else { return graph }
        var rewritten = Graph()
        var newValue: [Value] = []
        for equation in graph.equations {
            let backward = Self.isBackward(equation.origin)
            let op = equation.op.mapOperands { operand in
                guard backward, let pass = equation.origin?.pass, chosen.contains(operand) else {
                    return newValue[operand.id]
                }
                return copy(operand, as: graph.shape(of: operand), pass: pass, into: &rewritten, newValue)
            }
            rewritten.origin = equation.origin
            newValue.append(rewritten.append(op, shape: equation.shape))
        }
        rewritten.results = graph.results.map { ($0.name, newValue[$0.value.id]) }
        return rewritten
    }

    /// Appends a copy of the chain that computes `value`, in shape `shape` (same elements, same order: the
    /// copy of a reshaped chain is computed in the reader's shape, so that no reshape between element-wise ops
    /// makes form-kernels store a link of it). Reads `newValue` of the chain's leaves.
    func copy(_ value: Value, as shape: Shape, pass: Origin.Pass, into g: inout Graph, _ newValue: [Value]) -> Value {
        let op = graph.op(of: value)
        let own = graph.shape(of: value)
        return g.within(graph.origin(of: value).map { Origin($0.scope, pass) }) { g in
            guard expands(value) else {
                if own == shape { return newValue[value.id] }
                switch op {
                case .constant(let c):
                    return g.append(.constant(c), shape: shape)
                case .broadcast(let operand, let axes):
                    if let moved = Self.broadcastAxes(axes, of: graph.shape(of: operand), from: own, to: shape) {
                        return g.append(.broadcast(newValue[operand.id], axes: moved), shape: shape)
                    }
                default:
                    break
                }
                return g.append(.reshape(newValue[value.id]), shape: shape)
            }
            switch op {
            case .unary(let u, let a):
                return g.append(.unary(u, copy(a, as: shape, pass: pass, into: &g, newValue)))
            case .binary(let b, let x, let y):
                let left = copy(x, as: shape, pass: pass, into: &g, newValue)
                return g.append(.binary(b, left, copy(y, as: shape, pass: pass, into: &g, newValue)))
            case .reshape(let a):
                return copy(a, as: shape, pass: pass, into: &g, newValue)
            default:
                let copied = g.append(
                    op.mapOperands { copy($0, as: graph.shape(of: $0), pass: pass, into: &g, newValue) }, shape: own)
                return own == shape ? copied : g.append(.reshape(copied), shape: shape)
            }
        }
    }

    /// The axes of a broadcast into `from` as a broadcast into `to` (the same number of elements), when the
    /// operand's axes are a leading or trailing run of both shapes (a per-channel vector: the last axis); else nil.
    static func broadcastAxes(_ axes: [Int], of operand: Shape, from: Shape, to: Shape) -> [Int]? {
        let k = axes.count
        if axes.isEmpty { return [] }
        if axes == Array(0..<k), from.dims.prefix(k) == to.dims.prefix(k) { return axes }
        if axes == Array((from.rank - k)..<from.rank), from.dims.suffix(k) == to.dims.suffix(k) {
            return Array((to.rank - k)..<to.rank)
        }
        return nil
    }
}
