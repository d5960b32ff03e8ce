import MPLAutodiff
import MPLIR
import Testing

/// allReduceSum's derivatives, by finite differences over R ranks run in lock step: rank r computes
/// out_r = Σ tanh(y)·x_r with y = allReduceSum(x_r ⊙ x_r), so out_r depends on every rank's x.
@Suite("allReduceSum: derivatives across ranks by finite differences")
struct AllReduceTests {
    static let ranks = 3
    static let shape = Shape([3, 2])

    /// The graph with results out, its VJP ∂(Σ_r out_r)/∂x_r as "gradient" and its JVP along t as "directional".
    static var graph: Graph {
        var g = Graph()
        let x = g.input("x", shape)
        let t = g.input("t", shape)
        let y = g.allReduceSum(g.mul(x, x))
        let out = g.sumAll(g.mul(g.unary(.tanh, y), x))
        let gradient = Autodiff.vjp(&g, output: out, wrt: [x])[0]
        let directional = Autodiff.jvp(&g, outputs: [out], wrt: [x], tangents: [t])[0]
        g.results = [("out", out), ("gradient", gradient), ("directional", directional)]
        return g
    }

    static func environments(_ xs: [[Double]], _ ts: [[Double]]) -> [[String: [Double]]] {
        zip(xs, ts).map { ["x": $0, "t": $1] }
    }

    @Test("VJP and JVP through allReduceSum match central differences of the ranks' outputs")
    func finiteDifferences() throws {
        var rng = SplitMix64(seed: 19)
        let xs = (0..<Self.ranks).map { _ in rng.vector(Self.shape.count, in: -0.9...0.9) }
        let ts = (0..<Self.ranks).map { _ in rng.vector(Self.shape.count, in: -1...1) }
        let graph = Self.graph
        let at = try Interpreter.results(graph, ranks: Self.environments(xs, ts))
        let eps = 1e-6
        func outputs(_ xs: [[Double]]) throws -> [Double] {
            try Interpreter.results(graph, ranks: Self.environments(xs, ts)).map { $0["out"]![0] }
        }
        // Reverse mode: the gradient of the sum of every rank's output with respect to rank r's x.
        for r in 0..<Self.ranks {
            for i in 0..<Self.shape.count {
                var plus = xs
                var minus = xs
                plus[r][i] += eps
                minus[r][i] -= eps
                let numeric = (try outputs(plus).reduce(0, +) - outputs(minus).reduce(0, +)) / (2 * eps)
                #expect(abs(at[r]["gradient"]![i] - numeric) < 1e-7, "rank \(r), element \(i)")
            }
        }
        // Forward mode: every rank moves its x along its own t; each rank's output changes by its tangent.
        let plus = zip(xs, ts).map { x, t in zip(x, t).map { $0 + eps * $1 } }
        let minus = zip(xs, ts).map { x, t in zip(x, t).map { $0 - eps * $1 } }
        let (up, down) = (try outputs(plus), try outputs(minus))
        for r in 0..<Self.ranks {
            #expect(abs(at[r]["directional"]![0] - (up[r] - down[r]) / (2 * eps)) < 1e-7, "rank \(r)")
        }
    }

    @Test("One process: allReduceSum is the identity")
    func identityInOneProcess() throws {
        var g = Graph()
        let x = g.input("x", Self.shape)
        g.results = [("y", g.allReduceSum(x))]
        let data: [Double] = [1, -2, 3, 0.5, 7, -1]
        #expect(try Interpreter.results(g, inputs: ["x": data])["y"]! == data)
        #expect(try Interpreter.results(g, ranks: [["x": data], ["x": data]])[1]["y"]! == data.map { 2 * $0 })
    }
}
