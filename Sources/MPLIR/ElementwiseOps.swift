// The element-wise ops, each defined once: its meaning on numbers (the interpreter and constant folding both
// call `evaluate`), its derivative (forward and reverse mode both read it), whether it maps zero rows to zero
// rows (skip-zero-rows) and its C expression (the emitter). Adding an op is a case and one row in each switch
// of this file; every switch is exhaustive, so an op that is left out of one does not compile.

import Foundation

public enum UnaryOp: String, Sendable, CaseIterable {
    case neg, exp, log, sqrt, tanh, sigmoid, relu
    /// 1 where x > 0, else 0. Piecewise constant: its derivative is zero.
    case step
    /// GELU in its exact (erf) form, PyTorch's default: x·Φ(x), Φ the standard normal distribution function.
    case gelu
    /// Φ(x) = ½(1 + erf(x/√2)), the standard normal distribution function: GELU's derivative needs it.
    case normalCDF = "normal_cdf"
}

public enum BinaryOp: String, Sendable, CaseIterable {
    case add, sub, mul, div
    /// max(a, b); used for LeakyReLU as max(x, αx).
    case max
    /// 1 where a ≥ b, else 0. Piecewise constant: its derivative is zero.
    case greaterEqual
}

/// f′(x) of an element-wise op y = f(x), in the form the autodiff rules apply to a tangent or cotangent t.
/// Each form keeps the equations the rules have always built (neg(t), not −1·t; t/x, not t·(1/x)), since
/// the generated C follows them.
public enum ElementwiseDerivative {
    /// f′ = 0 (piecewise constant): nothing flows through.
    case zero
    /// f′ = −1.
    case negated
    /// f′ = d, an equation in the graph.
    case times(Value)
    /// f′ = 1/d.
    case dividedBy(Value)
}

extension UnaryOp {
    /// The op on one number, in Double: the reference meaning of the op.
    public func evaluate(_ x: Double) -> Double {
        switch self {
        case .neg: return -x
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .tanh: return Foundation.tanh(x)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .relu: return Swift.max(x, 0)
        case .step: return x > 0 ? 1 : 0
        case .gelu: return x * UnaryOp.normalCDF.evaluate(x)
        case .normalCDF: return 0.5 * (1 + Foundation.erf(x * 0.5.squareRoot()))
        }
    }

    /// f′(x) for y = f(x), appending the equations it needs to `g`. Written in ops that are themselves
    /// differentiable, so that the VJP of a JVP (MPL's meta-gradient) has a second derivative.
    public func derivative(_ g: inout Graph, x: Value, y: Value) -> ElementwiseDerivative {
        let shape = g.shape(of: y)
        switch self {
        case .neg: return .negated
        case .exp: return .times(y)
        case .log: return .dividedBy(x)
        // d√x = dx / (2√x)
        case .sqrt: return .dividedBy(g.scale(y, 2))
        case .tanh: return .times(g.sub(g.constant(1, shape), g.mul(y, y)))
        case .sigmoid: return .times(g.mul(y, g.sub(g.constant(1, shape), y)))
        case .relu: return .times(g.unary(.step, x))
        case .step: return .zero
        // GELU′(x) = Φ(x) + x·φ(x), and Φ′ = φ, the standard normal density.
        case .gelu:
            let cdf = g.unary(.normalCDF, x)
            let density = normalDensity(&g, x)
            return .times(g.add(cdf, g.mul(x, density)))
        case .normalCDF: return .times(normalDensity(&g, x))
        }
    }

    /// φ(x) = exp(−x²/2)/√(2π), in ops whose derivatives are known.
    private func normalDensity(_ g: inout Graph, _ x: Value) -> Value {
        g.scale(g.unary(.exp, g.scale(g.mul(x, x), -0.5)), 1 / (2 * Double.pi).squareRoot())
    }

    /// f(0) = 0: the op keeps zero rows zero (skip-zero-rows carries them through it).
    public var keepsZero: Bool {
        switch self {
        case .neg, .relu, .tanh, .step, .sqrt, .gelu: return true
        case .exp, .log, .sigmoid, .normalCDF: return false
        }
    }

    /// The C expression of the op on the float operand `x`, an atom (a load, a local or a literal). Ternaries
    /// instead of fmaxf keep the loops vectorisable without -ffast-math.
    public func cExpression(_ x: String) -> String {
        switch self {
        case .neg: return "-\(x)"
        case .exp: return "expf(\(x))"
        case .log: return "logf(\(x))"
        case .sqrt: return "sqrtf(\(x))"
        case .tanh: return "tanhf(\(x))"
        case .sigmoid: return "1.0f / (1.0f + expf(-\(x)))"
        case .relu: return "\(x) > 0.0f ? \(x) : 0.0f"
        case .step: return "\(x) > 0.0f ? 1.0f : 0.0f"
        case .gelu: return "0.5f * \(x) * (1.0f + erff(\(x) * 0.70710678f))"
        case .normalCDF: return "0.5f * (1.0f + erff(\(x) * 0.70710678f))"
        }
    }
}

/// Which zero rows of its operands a binary op keeps zero (skip-zero-rows).
public enum ZeroRowRule {
    /// 0·b = a·0 = 0: a zero row of either operand.
    case ofEither
    /// 0 ± 0 = 0: rows zero in both operands.
    case ofBoth
    /// Not relied on (0/0 is NaN; max and ≥ are not used on padded values).
    case none
}

extension BinaryOp {
    /// The op on two numbers, in Double: the reference meaning of the op.
    public func evaluate(_ x: Double, _ y: Double) -> Double {
        switch self {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        case .max: return Swift.max(x, y)
        case .greaterEqual: return x >= y ? 1 : 0
        }
    }

    /// The tangent of y = x1 ∘ x2 from its operands' tangents (nil: zero); nil when it is zero.
    public func jvp(_ g: inout Graph, _ x1: Value, _ x2: Value, y: Value, _ t1: Value?, _ t2: Value?) -> Value? {
        switch self {
        case .add: return g.addPresent(t1, t2)
        case .sub: return g.addPresent(t1, t2.map { g.neg($0) })
        case .mul: return g.addPresent(t1.map { g.mul($0, x2) }, t2.map { g.mul(x1, $0) })
        case .div:
            // d(a/b) = (da − y·db) / b
            guard let numerator = g.addPresent(t1, t2.map { g.neg(g.mul(y, $0)) }) else { return nil }
            return g.div(numerator, x2)
        case .max:
            // The tangent of whichever operand is larger (the first on a tie).
            let (pickFirst, pickSecond) = maxSelectors(&g, x1, x2)
            return g.addPresent(t1.map { g.mul(pickFirst, $0) }, t2.map { g.mul(pickSecond, $0) })
        case .greaterEqual: return nil
        }
    }

    /// The contributions of y's cotangent c to the cotangents of x1 and x2 (none where the op is constant).
    public func vjp(_ g: inout Graph, _ x1: Value, _ x2: Value, y: Value, cotangent c: Value) -> [(Value, Value)] {
        switch self {
        case .add: return [(x1, c), (x2, c)]
        case .sub: return [(x1, c), (x2, g.neg(c))]
        case .mul: return [(x1, g.mul(c, x2)), (x2, g.mul(c, x1))]
        case .div:
            let cOverB = g.div(c, x2)
            return [(x1, cOverB), (x2, g.neg(g.mul(cOverB, y)))]
        case .max:
            let (pickFirst, pickSecond) = maxSelectors(&g, x1, x2)
            return [(x1, g.mul(c, pickFirst)), (x2, g.mul(c, pickSecond))]
        case .greaterEqual: return []
        }
    }

    public var zeroRows: ZeroRowRule {
        switch self {
        case .mul: return .ofEither
        case .add, .sub: return .ofBoth
        case .div, .max, .greaterEqual: return .none
        }
    }

    /// The C expression of the op on float atoms `x` and `y`.
    public func cExpression(_ x: String, _ y: String) -> String {
        switch self {
        case .add: return "\(x) + \(y)"
        case .sub: return "\(x) - \(y)"
        case .mul: return "\(x) * \(y)"
        case .div: return "\(x) / \(y)"
        case .max: return "\(x) >= \(y) ? \(x) : \(y)"
        case .greaterEqual: return "\(x) >= \(y) ? 1.0f : 0.0f"
        }
    }

    /// ∂max/∂x1 and ∂max/∂x2: 1 for the larger operand (the first on a tie), else 0.
    private func maxSelectors(_ g: inout Graph, _ x1: Value, _ x2: Value) -> (Value, Value) {
        let pickFirst = g.binary(.greaterEqual, x1, x2)
        return (pickFirst, g.sub(g.constant(1, g.shape(of: x1)), pickFirst))
    }
}

extension Graph {
    /// a + b where either may be absent (a zero tangent); nil when both are.
    public mutating func addPresent(_ a: Value?, _ b: Value?) -> Value? {
        switch (a, b) {
        case (let a?, let b?): return add(a, b)
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (nil, nil): return nil
        }
    }
}
