// The typed graph IR: one op per equation (A-normal form), every value has a static shape.
// A value is the index of the equation that defines it, so a graph is one array and
// "defined before use" is "smaller index".

internal import MPLModel

/// A static tensor shape. Rank 0 is a scalar.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var dims: [Int]
    public init(_ dims: [Int]) { self.dims = dims }
    public static let scalar = Shape([])
    public var rank: Int { dims.count }
    /// The element count. Every graph the compiler lowers has passed the resource check, which bounds the
    /// count of every value (`checkedCount`); the step builder's graphs stay below 2^63 by the front end's limits.
    public var count: Int { dims.reduce(1, *) }
    /// The element count, or nil if it does not fit in an Int.
    public var checkedCount: Int? { checkedProduct(dims) }
    public var description: String { "[" + dims.map(String.init).joined(separator: ",") + "]" }
    public subscript(axis: Int) -> Int { dims[axis] }
}

/// An SSA value: the result of equation `id`.
public struct Value: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let id: Int
    public init(_ id: Int) { self.id = id }
    public static func < (a: Value, b: Value) -> Bool { a.id < b.id }
    public var description: String { "%\(id)" }
}

// UnaryOp and BinaryOp, with everything about each element-wise op, are in ElementwiseOps.swift.

/// A k×k window with stride and zero padding over an NHWC batch.
public struct WindowGeometry: Hashable, Sendable, CustomStringConvertible {
    public var batch, height, width, channels: Int
    public var kernel, stride, padding: Int
    public init(batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int) {
        self.batch = batch
        self.height = height
        self.width = width
        self.channels = channels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var inputShape: Shape { Shape([batch, height, width, channels]) }
    /// Pooling output: [N, OH, OW, C].
    public var pooledShape: Shape { Shape([batch, outHeight, outWidth, channels]) }
    /// im2col output: one row per output pixel, one column per (ky, kx, c).
    public var columnsShape: Shape { Shape([batch * outHeight * outWidth, kernel * kernel * channels]) }
    public var description: String { "k\(kernel) s\(stride) p\(padding)" }
}

/// The closed set of ops. Every pass switches over it exhaustively, without `default:`,
/// so adding an op fails to compile until every pass handles it.
public enum Op: Hashable, Sendable {
    /// A function argument, bound by name to the state arena, the I/O arena or a pointer argument.
    case input(String)
    /// A tensor filled with one number.
    case constant(Double)
    case unary(UnaryOp, Value)
    /// Element-wise on two operands of the same shape.
    case binary(BinaryOp, Value, Value)
    /// broadcast_in_dim: operand axis i becomes result axis `axes[i]` (same size); other axes are new.
    case broadcast(Value, axes: [Int])
    /// Sum over `axes`, which disappear from the shape.
    case reduceSum(Value, axes: [Int])
    /// Max over `axes`. Not differentiable here: only used under `stopGradient` (stable softmax).
    case reduceMax(Value, axes: [Int])
    /// Same elements, new shape (row-major).
    case reshape(Value)
    /// op(a)·op(b) for rank-2 operands; op transposes when the flag is set.
    case matmul(Value, Value, transposeA: Bool, transposeB: Bool)
    /// [N,H,W,C] → [N·OH·OW, k·k·C]; a convolution is then one GEMM with the HWIO weight.
    case im2col(Value, WindowGeometry)
    /// The transpose of im2col: sums column entries back into their pixels.
    case col2im(Value, WindowGeometry)
    case maxPool(Value, WindowGeometry)
    /// Linear in `tangent`: picks, per window, the tangent at the position of `source`'s maximum.
    case maxPoolSelect(source: Value, tangent: Value, WindowGeometry)
    /// The transpose of maxPoolSelect: routes each window's cotangent to the position of `source`'s maximum.
    case maxPoolScatter(source: Value, cotangent: Value, WindowGeometry)
    case avgPool(Value, WindowGeometry)
    /// The transpose of avgPool.
    case avgPoolTranspose(Value, WindowGeometry)
    /// Rows [start, start + result rows) along axis 0.
    case sliceRows(Value, start: Int)
    /// The transpose of sliceRows: the operand placed at row `start` of a zero tensor.
    case padRows(Value, start: Int)
    /// One-hot of the first maximum along the last axis. Piecewise constant.
    case oneHotArgmax(Value)
    /// One-hot of the smallest k with cumsum(p)_k > u (the last class if none), per row. Piecewise constant.
    case oneHotSample(probabilities: Value, uniform: Value)
    /// Identity whose derivative is zero.
    case stopGradient(Value)
    /// The sum of the operand over every rank of a data-parallel run (MPI_Allreduce; docs/STEP.md "Ranks"); the
    /// identity in one process. Linear, so its JVP and VJP are all-reduces of the tangent and cotangent.
    case allReduceSum(Value)

    public var operands: [Value] {
        switch self {
        case .input, .constant: return []
        case .unary(_, let a), .broadcast(let a, _), .reduceSum(let a, _), .reduceMax(let a, _), .reshape(let a),
            .im2col(let a, _), .col2im(let a, _), .maxPool(let a, _), .avgPool(let a, _), .avgPoolTranspose(let a, _),
            .sliceRows(let a, _), .padRows(let a, _), .oneHotArgmax(let a), .stopGradient(let a),
            .allReduceSum(let a):
            return [a]
        case .binary(_, let a, let b), .matmul(let a, let b, _, _), .maxPoolSelect(let a, let b, _),
            .maxPoolScatter(let a, let b, _), .oneHotSample(let a, let b):
            return [a, b]
        }
    }
}

/// The families of ops. Passes that treat ops by kind switch over this instead of listing ops, so each op's kind
/// is decided here once, exhaustively: a new op must be placed in a family before anything compiles.
public enum OpFamily: Hashable, Sendable {
    /// `input`: a function argument, by name.
    case input(String)
    /// `constant`: one number, free to recompute anywhere.
    case fill
    /// `unary`, `binary`: each element from the operands' elements at its own index, read once each.
    case elementwise
    /// `broadcast`: reads each operand element at many result indices.
    case broadcast
    /// `reduceSum`, `reduceMax`: combines the operand's elements along axes, reading each once.
    case reduction
    /// `reshape`, `sliceRows`, `stopGradient`: the operand's memory from row `startRow` on; no work.
    case view(of: Value, startRow: Int)
    /// `matmul`, the window ops, `padRows`, the one-hot ops, `allReduceSum`: a kernel with a structure of its own.
    case structured
}

extension Op {
    public var family: OpFamily {
        switch self {
        case .input(let name): return .input(name)
        case .constant: return .fill
        case .unary, .binary: return .elementwise
        case .broadcast: return .broadcast
        case .reduceSum, .reduceMax: return .reduction
        case .reshape(let a), .stopGradient(let a): return .view(of: a, startRow: 0)
        case .sliceRows(let a, let start): return .view(of: a, startRow: start)
        case .matmul, .im2col, .col2im, .maxPool, .maxPoolSelect, .maxPoolScatter, .avgPool, .avgPoolTranspose,
            .padRows, .oneHotArgmax, .oneHotSample, .allReduceSum:
            return .structured
        }
    }
}

/// Where an equation comes from in the model: the layer (or loss, or optimiser step) that caused it and the pass
/// that computed it. Kernels are named after it and model.ir prints it, so generated C leads back to the model.
public struct Origin: Hashable, Sendable, CustomStringConvertible {
    public enum Pass: String, Hashable, Sendable {
        case forward = "fwd"
        /// Forward mode: a tangent (MPL's soft feedback).
        case jvp
        /// Reverse mode: a cotangent (gradients).
        case vjp
        /// Reverse mode through a tangent: the meta-gradient of soft MPL.
        case jvpVJP = "jvp_vjp"
        /// The optimiser's step.
        case update
    }

    /// `network/layer`, e.g. `teacher/conv3`, `student/res2/conv0`, `teacher/loss_sup`.
    public var scope: String
    public var pass: Pass

    public init(_ scope: String, _ pass: Pass) {
        self.scope = scope
        self.pass = pass
    }

    /// The origin of the equations that differentiate this one in `mode` (`.jvp` or `.vjp`).
    public func differentiated(_ mode: Pass) -> Origin {
        Origin(scope, pass == .jvp && mode == .vjp ? .jvpVJP : mode)
    }

    public var description: String { "\(scope) \(pass.rawValue)" }
}

public struct Equation: Hashable, Sendable {
    public var op: Op
    public var shape: Shape
    /// Not part of what the equation computes: set from `Graph.origin` when it is appended.
    public var origin: Origin?
    public init(op: Op, shape: Shape, origin: Origin? = nil) {
        self.op = op
        self.shape = shape
        self.origin = origin
    }
}

/// A function in the IR: equations, plus the named results it returns.
public struct Graph: Sendable {
    public internal(set) var equations: [Equation] = []
    /// Named results in a fixed order (outputs and state updates).
    public var results: [(name: String, value: Value)] = []
    /// The origin of the equations appended from now on (the builders set it per layer, autodiff per rule, and the
    /// graph passes to the origin of the equation they rewrite).
    public var origin: Origin?

    public init() {}

    public func shape(of value: Value) -> Shape { equations[value.id].shape }
    public func op(of value: Value) -> Op { equations[value.id].op }
    public func origin(of value: Value) -> Origin? { equations[value.id].origin }
    public var values: [Value] { equations.indices.map(Value.init) }

    /// The graph's inputs, in the order they were declared.
    public var inputs: [(name: String, value: Value)] {
        equations.indices.compactMap { i in
            if case .input(let name) = equations[i].op { return (name, Value(i)) }
            return nil
        }
    }

    public func input(named name: String) -> Value? { inputs.first { $0.name == name }?.value }
    public func result(named name: String) -> Value? { results.first { $0.name == name }?.value }

    /// Appends an equation whose shape is inferred; traps on an ill-typed op (a compiler bug, not user error).
    @discardableResult
    public mutating func append(_ op: Op, shape explicitShape: Shape? = nil) -> Value {
        let shape: Shape
        do {
            shape = try inferShape(op, explicit: explicitShape)
        } catch {
            preconditionFailure("ill-typed equation \(op): \(error)")
        }
        equations.append(Equation(op: op, shape: shape, origin: origin))
        return Value(equations.count - 1)
    }

    /// Runs `body` with `origin` as the origin of what it appends.
    public mutating func within<T>(_ origin: Origin?, _ body: (inout Graph) -> T) -> T {
        let outer = self.origin
        self.origin = origin
        defer { self.origin = outer }
        return body(&self)
    }

    /// Replaces the equations wholesale (used by passes that rebuild a graph).
    public mutating func replaceEquations(_ equations: [Equation]) { self.equations = equations }
}
