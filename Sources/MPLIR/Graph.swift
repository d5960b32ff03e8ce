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

public enum UnaryOp: String, Sendable, CaseIterable {
    case neg, exp, log, sqrt, tanh, sigmoid, relu
    /// 1 where x > 0, else 0. Piecewise constant: its derivative is zero.
    case step
}

public enum BinaryOp: String, Sendable, CaseIterable {
    case add, sub, mul, div
    /// max(a, b); used for LeakyReLU as max(x, αx).
    case max
    /// 1 where a ≥ b, else 0. Piecewise constant: its derivative is zero.
    case greaterEqual
}

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

    public var operands: [Value] {
        switch self {
        case .input, .constant: return []
        case .unary(_, let a), .broadcast(let a, _), .reduceSum(let a, _), .reduceMax(let a, _), .reshape(let a),
            .im2col(let a, _), .col2im(let a, _), .maxPool(let a, _), .avgPool(let a, _), .avgPoolTranspose(let a, _),
            .sliceRows(let a, _), .padRows(let a, _), .oneHotArgmax(let a), .stopGradient(let a):
            return [a]
        case .binary(_, let a, let b), .matmul(let a, let b, _, _), .maxPoolSelect(let a, let b, _),
            .maxPoolScatter(let a, let b, _), .oneHotSample(let a, let b):
            return [a, b]
        }
    }
}

public struct Equation: Hashable, Sendable {
    public var op: Op
    public var shape: Shape
    public init(op: Op, shape: Shape) {
        self.op = op
        self.shape = shape
    }
}

/// A function in the IR: equations, plus the named results it returns.
public struct Graph: Sendable {
    public internal(set) var equations: [Equation] = []
    /// Named results in a fixed order (outputs and state updates).
    public var results: [(name: String, value: Value)] = []

    public init() {}

    public func shape(of value: Value) -> Shape { equations[value.id].shape }
    public func op(of value: Value) -> Op { equations[value.id].op }
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
        equations.append(Equation(op: op, shape: shape))
        return Value(equations.count - 1)
    }

    /// Replaces the equations wholesale (used by passes that rebuild a graph).
    public mutating func replaceEquations(_ equations: [Equation]) { self.equations = equations }
}
