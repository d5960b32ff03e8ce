import MPLAutodiff
import MPLIR
import Testing

/// One differentiable op under test, wrapped so that its second derivative is not trivially zero.
struct OpCase: CustomStringConvertible, Sendable {
    var name: String
    var inputs: [(name: String, shape: Shape)]
    var build: @Sendable (inout Graph, [Value]) -> Value
    var description: String { name }

    /// The op applied to x ⊙ x, so that even a linear op has a non-zero VJP∘JVP.
    var squaredFirst: DifferentiableFunction {
        DifferentiableFunction(inputs: inputs) { g, xs in build(&g, xs.map { g.mul($0, $0) }) }
    }
    var plain: DifferentiableFunction { DifferentiableFunction(inputs: inputs, build: build) }
}

let conv = WindowGeometry(batch: 2, height: 5, width: 4, channels: 3, kernel: 3, stride: 2, padding: 1)
let pool = WindowGeometry(batch: 2, height: 4, width: 6, channels: 2, kernel: 2, stride: 2, padding: 0)
let overlappingPool = WindowGeometry(batch: 1, height: 5, width: 5, channels: 2, kernel: 3, stride: 1, padding: 0)

let differentiableOps: [OpCase] = {
    var cases: [OpCase] = []
    for u in UnaryOp.allCases where u != .step {
        cases.append(
            OpCase(name: u.rawValue, inputs: [("x", Shape([3, 4]))]) { g, x in
                // log and sqrt need a positive operand; exp(x) keeps every other op's input in a mild range too.
                g.unary(u, u == .log || u == .sqrt ? g.unary(.exp, x[0]) : x[0])
            })
    }
    for b in BinaryOp.allCases where b != .greaterEqual {
        cases.append(
            OpCase(name: b.rawValue, inputs: [("a", Shape([3, 4])), ("b", Shape([3, 4]))]) { g, x in
                g.binary(b, x[0], b == .div ? g.unary(.exp, x[1]) : x[1])
            })
    }
    cases += [
        OpCase(name: "broadcast rows", inputs: [("x", Shape([4]))]) { g, x in
            g.broadcast(x[0], to: Shape([3, 4]), axes: [1])
        },
        OpCase(name: "broadcast columns", inputs: [("x", Shape([3]))]) { g, x in
            g.broadcast(x[0], to: Shape([3, 2, 4]), axes: [0])
        },
        OpCase(name: "reduce_sum middle", inputs: [("x", Shape([2, 3, 4]))]) { g, x in g.reduceSum(x[0], axes: [1]) },
        OpCase(name: "reduce_sum outer", inputs: [("x", Shape([2, 3, 4]))]) { g, x in g.reduceSum(x[0], axes: [0, 2]) },
        OpCase(name: "reshape", inputs: [("x", Shape([2, 6]))]) { g, x in g.reshape(x[0], Shape([3, 4])) },
        OpCase(name: "im2col", inputs: [("x", conv.inputShape)]) { g, x in g.append(.im2col(x[0], conv)) },
        OpCase(name: "col2im", inputs: [("x", conv.columnsShape)]) { g, x in g.append(.col2im(x[0], conv)) },
        OpCase(name: "max_pool", inputs: [("x", pool.inputShape)]) { g, x in g.append(.maxPool(x[0], pool)) },
        OpCase(name: "max_pool overlapping", inputs: [("x", overlappingPool.inputShape)]) { g, x in
            g.append(.maxPool(x[0], overlappingPool))
        },
        OpCase(name: "max_pool_select", inputs: [("s", pool.inputShape), ("t", pool.inputShape)]) { g, x in
            g.append(.maxPoolSelect(source: x[0], tangent: x[1], pool))
        },
        OpCase(name: "max_pool_scatter", inputs: [("s", pool.inputShape), ("c", pool.pooledShape)]) { g, x in
            g.append(.maxPoolScatter(source: x[0], cotangent: x[1], pool))
        },
        OpCase(name: "avg_pool", inputs: [("x", overlappingPool.inputShape)]) { g, x in
            g.append(.avgPool(x[0], overlappingPool))
        },
        OpCase(name: "avg_pool_transpose", inputs: [("x", overlappingPool.pooledShape)]) { g, x in
            g.append(.avgPoolTranspose(x[0], overlappingPool))
        },
        OpCase(name: "slice_rows", inputs: [("x", Shape([5, 3]))]) { g, x in g.sliceRows(x[0], start: 1, count: 3) },
        OpCase(name: "pad_rows", inputs: [("x", Shape([2, 3]))]) { g, x in
            g.append(.padRows(x[0], start: 2), shape: Shape([5, 3]))
        },
        OpCase(name: "log_softmax (reduce_max, stop_gradient)", inputs: [("z", Shape([3, 5]))]) { g, x in
            g.logSoftmax(x[0])
        },
        OpCase(name: "cross_entropy soft targets", inputs: [("q", Shape([3, 5])), ("z", Shape([3, 5]))]) { g, x in
            g.crossEntropy(targets: g.softmax(x[0]), logits: x[1])
        },
        // BatchNorm is a composition (Graph.columnMoments, normalizeColumns): checked as a unit, in both modes.
        OpCase(
            name: "batch_norm training (batch statistics)",
            inputs: [("x", Shape([6, 4])), ("scale", Shape([4])), ("offset", Shape([4]))]
        ) { g, x in
            let (mean, variance) = g.columnMoments(x[0])
            return g.normalizeColumns(x[0], mean: mean, variance: variance, scale: x[1], offset: x[2], epsilon: 1e-3)
        },
        OpCase(
            name: "batch_norm evaluation (running averages)",
            inputs: [
                ("x", Shape([6, 4])), ("mean", Shape([4])), ("variance", Shape([4])), ("scale", Shape([4])),
                ("offset", Shape([4])),
            ]
        ) { g, x in
            g.normalizeColumns(
                x[0], mean: x[1], variance: g.unary(.exp, x[2]), scale: x[3], offset: x[4], epsilon: 1e-3)
        },
    ]
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        cases.append(
            OpCase(
                name: "matmul tA=\(ta) tB=\(tb)",
                inputs: [("a", Shape(ta ? [4, 3] : [3, 4])), ("b", Shape(tb ? [2, 4] : [4, 2]))]
            ) { g, x in
                g.matmul(x[0], x[1], transposeA: ta, transposeB: tb)
            })
    }
    return cases
}()

@Suite("Autodiff against finite differences in Double")
struct AutodiffTests {
    @Test("JVP, VJP, dot-product test", arguments: differentiableOps)
    func firstOrder(op: OpCase) throws {
        let report = try GradientCheck.check(op.plain, seed: 7)
        #expect(report.jvpError < 1e-6, "\(report)")
        #expect(report.vjpError < 1e-6, "\(report)")
        #expect(report.dotProductError < 1e-9, "\(report)")
        #expect(report.gradientMagnitude > 1e-3, "every gradient is zero: the op was silently ignored")
    }

    @Test("VJP of JVP (the meta-gradient's composition)", arguments: differentiableOps)
    func secondOrder(op: OpCase) throws {
        let report = try GradientCheck.check(op.squaredFirst, seed: 11)
        #expect(report.secondOrderError < 1e-6, "\(report)")
        #expect(report.jvpError < 1e-6, "\(report)")
        #expect(report.secondOrderMagnitude > 1e-3, "every second-order gradient is zero")
    }

    @Test("Piecewise-constant ops have zero derivatives, and finite differences agree")
    func piecewiseConstant() throws {
        let cases: [DifferentiableFunction] = [
            DifferentiableFunction(inputs: [("z", Shape([3, 4]))]) { g, x in g.append(.oneHotArgmax(x[0])) },
            DifferentiableFunction(inputs: [("z", Shape([3, 4])), ("u", Shape([3]))]) { g, x in
                g.append(.oneHotSample(probabilities: g.softmax(x[0]), uniform: x[1]))
            },
            DifferentiableFunction(inputs: [("x", Shape([3, 4]))]) { g, x in g.unary(.step, x[0]) },
            DifferentiableFunction(inputs: [("a", Shape([3, 4])), ("b", Shape([3, 4]))]) { g, x in
                g.binary(.greaterEqual, x[0], x[1])
            },
        ]
        for function in cases {
            let report = try GradientCheck.check(function, seed: 3, epsilon: 1e-7)
            #expect(report.gradientMagnitude == 0)
            #expect(report.vjpError < 1e-6 && report.jvpError < 1e-6, "\(report)")
        }
    }

    @Test("GELU is x·Φ(x) (the erf form); its derivatives of both orders match finite differences over a wide range")
    func gelu() throws {
        // x·Φ(x) and GELU′(x) = Φ(x) + x·φ(x), from Python's math.erf, at points where the curvature changes sign.
        let x: [Double] = [-3, -1, 0, 0.5, 1, 3]
        let value = [
            -0.00404969409489031, -0.15865525393145707, 0, 0.34573123063700656, 0.8413447460685429, 2.99595030590511,
        ]
        let slope = [
            -0.01194564720418392, -0.08331547058768629, 0.5, 0.8674951246561629, 1.0833154705876864, 1.011945647204184,
        ]
        var g = Graph()
        let input = g.input("x", Shape([6]))
        let y = g.unary(.gelu, input)
        let gradient = Autodiff.vjp(&g, output: g.sumAll(y), wrt: [input])[0]
        let values = try Interpreter.run(g, inputs: ["x": x])
        for i in x.indices {
            #expect(abs(values[y.id][i] - value[i]) < 1e-15, "GELU(\(x[i]))")
            #expect(abs(values[gradient.id][i] - slope[i]) < 1e-15, "GELU′(\(x[i]))")
        }
        let wide = DifferentiableFunction(inputs: [("x", Shape([10]))]) { g, x in g.unary(.gelu, x[0]) }
        let point = ["x": [-4, -2.5, -1.2, -0.4, 0, 0.3, 0.9, 1.7, 2.6, 4]]
        let report = try GradientCheck.check(wide, seed: 13, point: point)
        // Central differences with ε = 1e-5 leave ~1e-8 of truncation error where GELU′ is small (x = −4).
        #expect(report.jvpError < 1e-7 && report.vjpError < 1e-9 && report.dotProductError < 1e-12, "\(report)")
        #expect(report.secondOrderError < 1e-8 && report.secondOrderMagnitude > 1e-2, "\(report)")
    }

    @Test("A wrong rule is caught: the checker is not vacuous")
    func checkerCatchesAWrongDerivative() throws {
        // d/dx of x·stopGradient(x) is x, not 2x: if the checker compared AD with AD it would pass.
        let function = DifferentiableFunction(inputs: [("x", Shape([4]))]) { g, x in
            g.mul(x[0], g.append(.stopGradient(x[0])))
        }
        let report = try GradientCheck.check(function, seed: 5)
        #expect(report.vjpError > 1e-2, "finite differences must disagree with a gradient that ignores a term")
    }
}

/// Issue 16: what autodiff appends carries the origin of the equation it differentiates, with the pass changed.
@Test func derivativesCarryTheOriginOfWhatTheyDifferentiate() {
    var g = Graph()
    let x = g.input("x", Shape([2, 3]))
    let w = g.input("w", Shape([3, 4]))
    g.origin = Origin("student/dense1", .forward)
    let y = g.unary(.tanh, g.matmul(x, w))
    g.origin = Origin("student/loss", .forward)
    let loss = g.sumAll(g.mul(y, y))
    g.origin = nil
    let start = g.equations.count
    let tangent = g.input("tangent", Shape([3, 4]))
    let f = Autodiff.jvp(&g, outputs: [loss], wrt: [w], tangents: [tangent])[0]
    let afterJVP = g.equations.count
    _ = Autodiff.vjp(&g, output: f, wrt: [x])
    let jvpOrigins = Set(g.equations[(start + 1)..<afterJVP].map(\.origin))
    let vjpOrigins = Set(g.equations[afterJVP...].map(\.origin))
    #expect(jvpOrigins == [Origin("student/dense1", .jvp), Origin("student/loss", .jvp)])
    #expect(
        vjpOrigins.isSuperset(of: [
            Origin("student/dense1", .jvpVJP), Origin("student/loss", .jvpVJP),
            Origin("student/dense1", .vjp),
        ]))
    #expect(!vjpOrigins.contains(nil) && !vjpOrigins.contains { $0?.pass == .forward || $0?.pass == .jvp })
    #expect(g.origin == nil, "autodiff leaves the graph's current origin as it found it")
}
