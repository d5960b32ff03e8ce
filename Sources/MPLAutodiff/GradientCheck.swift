// Finite-difference checks of JVP, VJP and VJP∘JVP in Double, in the manner of JAX's check_grads:
// compare along random directions, and the dot-product test ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩.

import MPLIR

/// A function of named inputs: `build` appends its equations and returns one output value.
public struct DifferentiableFunction {
    public var inputs: [(name: String, shape: Shape)]
    public var build: (inout Graph, [Value]) -> Value
    public init(inputs: [(name: String, shape: Shape)], build: @escaping (inout Graph, [Value]) -> Value) {
        self.inputs = inputs
        self.build = build
    }
}

/// The figures of one check, so a test can assert on them and print them.
public struct GradientReport: CustomStringConvertible {
    /// Worst relative error of the VJP directional derivative against central differences.
    public var vjpError = 0.0
    /// Worst relative error of the JVP against central differences.
    public var jvpError = 0.0
    /// Relative mismatch of ⟨J·t, c⟩ and ⟨t, Jᵀ·c⟩.
    public var dotProductError = 0.0
    /// Worst relative error of the gradient of ⟨c, J·t⟩ (VJP of JVP) against central differences.
    public var secondOrderError = 0.0
    /// Largest |gradient entry| seen: a check in which every gradient is zero proves nothing.
    public var gradientMagnitude = 0.0
    public var secondOrderMagnitude = 0.0
    public var description: String {
        "vjp \(vjpError), jvp \(jvpError), dot \(dotProductError), vjp∘jvp \(secondOrderError), |grad| \(gradientMagnitude), |grad2| \(secondOrderMagnitude)"
    }
}

public enum GradientCheck {
    /// Relative error that tolerates values near zero: |a − b| / max(1, |a|, |b|)... scaled by `floor`.
    static func relativeError(_ a: Double, _ b: Double, floor: Double = 1e-8) -> Double {
        abs(a - b) / max(floor, abs(a), abs(b))
    }

    /// Runs every check on `function` at a random point. `epsilon` is the finite-difference step.
    public static func check(
        _ function: DifferentiableFunction, seed: UInt64 = 1, epsilon: Double = 1e-5,
        point: [String: [Double]]? = nil
    ) throws -> GradientReport {
        var rng = SplitMix64(seed: seed)
        var graph = Graph()
        let xs = function.inputs.map { graph.input($0.name, $0.shape) }
        let ts = function.inputs.map { graph.input("tangent:" + $0.name, $0.shape) }
        let y = function.build(&graph, xs)
        let yShape = graph.shape(of: y)
        let cotangentInput = graph.input("cotangent", yShape)

        // f's JVP along t, its VJP of c, and the gradient of F(x) = ⟨c, J(x)·t⟩ (reverse over forward).
        let jvpOut = Autodiff.jvp(&graph, outputs: [y], wrt: xs, tangents: ts)[0]
        let vjpOut = Autodiff.vjp(&graph, output: y, seed: cotangentInput, wrt: xs)
        let directional = graph.dot(cotangentInput, jvpOut)
        let secondOrder = Autodiff.vjp(&graph, output: directional, wrt: xs)
        precondition(graph.verify().isEmpty, "AD produced an ill-formed graph: \(graph.verify())")

        var env: [String: [Double]] = [:]
        for (name, shape) in function.inputs {
            env[name] = point?[name] ?? rng.vector(shape.count)
            env["tangent:" + name] = rng.vector(shape.count)
        }
        env["cotangent"] = rng.vector(yShape.count)

        let values = try Interpreter.run(graph, inputs: env)
        func evaluate(_ target: Value, shiftedBy direction: [String: [Double]], scale: Double) throws -> [Double] {
            var shifted = env
            for (name, d) in direction { shifted[name] = zip(env[name]!, d).map { $0 + scale * $1 } }
            return try Interpreter.run(graph, inputs: shifted)[target.id]
        }
        let tangentDirection = Dictionary(
            uniqueKeysWithValues: function.inputs.map { ($0.name, env["tangent:" + $0.name]!) })

        var report = GradientReport()
        // JVP against central differences of f along t, element by element.
        let plus = try evaluate(y, shiftedBy: tangentDirection, scale: epsilon)
        let minus = try evaluate(y, shiftedBy: tangentDirection, scale: -epsilon)
        for i in 0..<yShape.count {
            let fd = (plus[i] - minus[i]) / (2 * epsilon)
            report.jvpError = max(report.jvpError, relativeError(values[jvpOut.id][i], fd, floor: 1e-6))
        }
        // VJP: ⟨Jᵀc, t⟩ against the central difference of ⟨c, f⟩ along t.
        let c = env["cotangent"]!
        let fdDirectional = zip(c, zip(plus, minus)).map { $0 * ($1.0 - $1.1) / (2 * epsilon) }.reduce(0, +)
        var vjpDotT = 0.0
        for (i, input) in function.inputs.enumerated() {
            let grad = values[vjpOut[i].id]
            vjpDotT += zip(grad, env["tangent:" + input.name]!).map(*).reduce(0, +)
            report.gradientMagnitude = max(report.gradientMagnitude, grad.map(abs).max() ?? 0)
        }
        report.vjpError = relativeError(vjpDotT, fdDirectional, floor: 1e-6)
        let jvpDotC = zip(values[jvpOut.id], c).map(*).reduce(0, +)
        report.dotProductError = relativeError(jvpDotC, vjpDotT, floor: 1e-9)

        // VJP of JVP: ∇F · u against the central difference of F along a fresh direction u.
        let u = Dictionary(uniqueKeysWithValues: function.inputs.map { ($0.name, rng.vector($0.shape.count)) })
        let fPlus = try evaluate(directional, shiftedBy: u, scale: epsilon)[0]
        let fMinus = try evaluate(directional, shiftedBy: u, scale: -epsilon)[0]
        var secondDotU = 0.0
        for (i, input) in function.inputs.enumerated() {
            let grad = values[secondOrder[i].id]
            secondDotU += zip(grad, u[input.name]!).map(*).reduce(0, +)
            report.secondOrderMagnitude = max(report.secondOrderMagnitude, grad.map(abs).max() ?? 0)
        }
        report.secondOrderError = relativeError(secondDotU, (fPlus - fMinus) / (2 * epsilon), floor: 1e-6)
        return report
    }
}
