import MPLIR
import MPLModel
import Testing

@testable import MPLStep

@Suite("The exported student: BatchNorm folded into the layers before it")
struct InferenceTests {
    static let bn = Layer.batchNorm(momentum: 0.1, epsilon: 1e-3)

    /// Every place a BatchNorm can stand: first (kept), after a convolution, after another folded one, past a
    /// Dropout, after a Residual with an identity shortcut (kept), with a 1×1-convolution shortcut, with a nested
    /// Residual as the body's end, after pooling (kept), after a Dense, after a Residual with a matrix shortcut.
    static let student = Network(
        name: "s",
        layers: [
            bn,  // 0 kept: the input
            // 2, 3 folded into conv1
            .conv2D(filters: 3, kernel: 3, stride: 1, padding: 1), bn, bn, .activation(.relu),
            .residual([
                .conv2D(filters: 3, kernel: 3, stride: 1, padding: 1), .dropout(rate: 0.3), bn,
                .activation(.leakyReLU(alpha: 0.1)),
                .conv2D(filters: 3, kernel: 3, stride: 1, padding: 1),
            ]),  // 5: res5/bn2 folded past dropout
            bn, .activation(.tanh),  // 6 kept: identity shortcut
            .residual([
                .conv2D(filters: 4, kernel: 3, stride: 2, padding: 1), bn, .activation(.relu),
                .conv2D(filters: 4, kernel: 3, stride: 1, padding: 1),
            ]),  // 8: a strided 1×1 shortcut
            bn,  // 9 folded into res8's conv3 and shortcut
            .residual([
                .conv2D(filters: 5, kernel: 1, stride: 1, padding: 0),
                .residual([.conv2D(filters: 6, kernel: 3, stride: 1, padding: 1)]),
            ]),  // 10: nested projections
            bn, .maxPool2D(size: 2, stride: 2), bn,  // 11 folded, 13 kept: after a pool
            .flatten, .dense(units: 5), bn, .activation(.sigmoid),  // 16 folded into dense15
            .residual([.dense(units: 6)]), bn,  // 19 folded into res18's dense and matrix
            .dense(units: 3),
        ])

    static let model: Model = {
        var recipe = Recipe()
        recipe.evalBatch = 3
        return Model(
            name: "every_fold", input: .image(channels: 2, height: 6, width: 6), classes: 3, teacher: student,
            student: student, recipe: recipe)
    }()

    @Test("Which BatchNorms fold, and which stay as a per-channel gain and shift")
    func foldedAndKept() {
        let network = InferenceNetwork(model: Self.model)
        #expect(
            network.folded == [
                "student/bn2", "student/bn3", "student/res5/bn2", "student/res8/bn1", "student/bn9",
                "student/bn11", "student/bn16", "student/bn19",
            ])
        #expect(network.kept == ["student/bn0", "student/bn6", "student/bn13"])
        let names = network.tensors.map(\.name)
        #expect(names.contains("student/bn6/gain") && names.contains("student/bn6/shift"))
        #expect(
            !names.contains { $0.hasPrefix("student/bn2/") || $0.hasSuffix("/scale") || $0.hasSuffix("/running_mean") })
    }

    @Test("The folded forward pass equals the evaluation pass with running statistics (Double interpreter)")
    func foldedEqualsEvaluation() throws {
        let network = InferenceNetwork(model: Self.model)
        let predict = StepBuilder(model: Self.model).predict(teacherNetwork: false)
        var rng = SplitMix64(seed: 11)
        // Float values, so that the folded weights differ from the exact ones only by their own rounding.
        var student: [String: [Float]] = [:]
        for info in network.checkpointTensors {
            let range: ClosedRange<Double> = info.name.hasSuffix("running_var") ? 0.2...2 : -0.8...0.8
            student[info.name] = rng.vector(info.shape.count, in: range).map { Float($0) }
        }
        let x = rng.vector(predict.graph.shape(of: predict.graph.input(named: "x")!).count, in: -1...1)
        var reference = student.mapValues { $0.map(Double.init) }
        reference["x"] = x
        var folded = network.weights(from: student).mapValues { $0.map(Double.init) }
        folded["x"] = x
        let expected = try Interpreter.results(predict.graph, inputs: reference)["logits"]!
        let entry = network.entryPoint(name: "forward", batch: Self.model.recipe.evalBatch)
        let got = try Interpreter.results(entry.graph, inputs: folded)["logits"]!
        #expect(got.count == expected.count && expected.contains { abs($0) > 0.1 })
        for (a, b) in zip(got, expected) {
            #expect(abs(a - b) <= 1e-5 * (1 + abs(b)), "\(a) against \(b)")
        }
    }
}
