import MPLIR
import Testing

@Suite("IR: printer, verifier, interpreter")
struct GraphTests {
    func denseLayer() -> Graph {
        var g = Graph()
        let x = g.input("x", Shape([2, 3]))
        let w = g.input("w", Shape([3, 4]))
        let b = g.input("b", Shape([4]))
        g.results = [("y", g.unary(.relu, g.addBias(g.matmul(x, w), b)))]
        return g
    }

    @Test("The printer's text is stable")
    func printer() {
        #expect(
            denseLayer().text == """
                %0 = input "x" : [2,3]
                %1 = input "w" : [3,4]
                %2 = input "b" : [4]
                %3 = matmul %0, %1 : [2,4]
                %4 = broadcast axes=[1] %2 : [2,4]
                %5 = add %3, %4 : [2,4]
                %6 = relu %5 : [2,4]
                result "y" = %6

                """)
    }

    @Test("The verifier accepts well-formed graphs and names the problem in ill-formed ones")
    func verifier() {
        var g = denseLayer()
        #expect(g.verify().isEmpty)
        var equations = g.equations
        equations[3].shape = Shape([4, 2])
        g.replaceEquations(equations)
        #expect(g.verify().first == "%3: declared [4,2] but the op gives [2,4]")
        equations = denseLayer().equations
        equations[5] = Equation(op: .binary(.add, Value(3), Value(9)), shape: Shape([2, 4]))
        g.replaceEquations(equations)
        #expect(g.verify().first == "%5: operand %9 is not defined before its use")
    }

    @Test("The interpreter computes a dense layer, a convolution and a pool by hand")
    func interpreterByHand() throws {
        let y = try Interpreter.results(
            denseLayer(),
            inputs: [
                "x": [1, 2, 3, -1, 0, 1], "w": [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, -1], "b": [0, 0, 0, -5],
            ])["y"]!
        // x·w rows: [1, 2, 3, 0] and [-1, 0, 1, -2]; plus bias, then relu.
        #expect(y == [1, 2, 3, 0, 0, 0, 1, 0])

        // A 3×3 image, one channel, 2×2 kernel of ones: each output is the sum of a 2×2 window.
        let geometry = WindowGeometry(batch: 1, height: 3, width: 3, channels: 1, kernel: 2, stride: 1, padding: 0)
        var g = Graph()
        let image = g.input("image", geometry.inputShape)
        let columns = g.append(.im2col(image, geometry))
        let sums = g.matmul(columns, g.constant(1, Shape([4, 1])))
        g.results = [
            ("conv", sums), ("max", g.append(.maxPool(image, geometry))), ("avg", g.append(.avgPool(image, geometry))),
        ]
        let out = try Interpreter.results(g, inputs: ["image": [1, 2, 3, 4, 5, 6, 7, 8, 9]])
        #expect(out["conv"] == [12, 16, 24, 28])
        #expect(out["max"] == [5, 6, 8, 9])
        #expect(out["avg"] == [3, 4, 6, 7])
    }

    @Test("Cross-entropy of uniform logits is log K")
    func crossEntropy() throws {
        var g = Graph()
        let y = g.input("y", Shape([2, 4]))
        let z = g.input("z", Shape([2, 4]))
        g.results = [("ce", g.crossEntropy(targets: y, logits: z))]
        let ce = try Interpreter.results(
            g, inputs: ["y": [1, 0, 0, 0, 0, 0, 1, 0], "z": [Double](repeating: 3, count: 8)])["ce"]!
        #expect(abs(ce[0] - 1.3862943611198906) < 1e-12)
    }
}
