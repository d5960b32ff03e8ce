import MPLAutodiff
import MPLIR
import MPLModel
import Testing

@testable import MPLStep

@Suite("BatchNorm in the step: which pass normalises over what")
struct BatchNormTests {
    /// BatchNorm straight on the input, so that the batch statistics are those of known rows of x.
    static let model: Model = {
        let net = Network(name: "n", layers: [.batchNorm(momentum: 0.25, epsilon: 1e-3), .dense(units: 3)])
        return Model(
            name: "bn_first", input: .features(4), classes: 3, teacher: net, student: net,
            recipe: TinyModels.recipe(.hardArgmax))
    }()

    static func moments(_ x: [Double], rows: Range<Int>, columns: Int) -> (mean: [Double], unbiasedVariance: [Double]) {
        let n = Double(rows.count)
        var mean = [Double](repeating: 0, count: columns)
        var variance = mean
        for c in 0..<columns {
            for r in rows { mean[c] += x[r * columns + c] / n }
            for r in rows {
                let d = x[r * columns + c] - mean[c]
                variance[c] += d * d / (n - 1)
            }
        }
        return (mean, variance)
    }

    @Test("Running averages follow the teacher's pass over all three views and the student's pass over the strong view")
    func runningAverages() throws {
        let step = StepBuilder(model: Self.model).mplStep()
        let env = TinyModels.inputs(
            for: step, seed: 7,
            scalars: ["lr_teacher": 0.1, "lr_student": 0.1, "uda_weight": 1, "feedback_scale": 1])
        let out = try Interpreter.results(step.graph, inputs: env)
        let (bl, bu) = (Self.model.recipe.labeledBatch, Self.model.recipe.unlabeledBatch)
        let x = env["x"]!
        for (net, rows) in [("teacher", 0..<(bl + 2 * bu)), ("student", (bl + bu)..<(bl + 2 * bu))] {
            let (mean, variance) = Self.moments(x, rows: rows, columns: 4)
            let oldMean = env["\(net)/bn0/running_mean"]!
            let oldVariance = env["\(net)/bn0/running_var"]!
            for c in 0..<4 {
                #expect(
                    abs(out["\(net)/bn0/running_mean"]![c] - (0.75 * oldMean[c] + 0.25 * mean[c])) < 1e-12,
                    "\(net) mean \(c)")
                #expect(
                    abs(out["\(net)/bn0/running_var"]![c] - (0.75 * oldVariance[c] + 0.25 * variance[c])) < 1e-12,
                    "\(net) variance \(c)")
            }
        }
    }

    @Test("Evaluation normalises with the running averages, not the batch")
    func evaluationUsesRunningAverages() throws {
        let predict = StepBuilder(model: Self.model).predict(teacherNetwork: false)
        var env = TinyModels.inputs(for: predict, seed: 3, scalars: [:])
        env["student/bn0/running_var"] = [0.5, 1, 2, 4]
        let logits = try Interpreter.results(predict.graph, inputs: env)["logits"]!
        // By hand: y = ((x − μ)/√(σ² + ε)·γ + β)·W + b, row by row.
        let (x, mean, variance) = (env["x"]!, env["student/bn0/running_mean"]!, env["student/bn0/running_var"]!)
        let (gamma, beta) = (env["student/bn0/scale"]!, env["student/bn0/offset"]!)
        let (w, b) = (env["student/dense1/weight"]!, env["student/dense1/bias"]!)
        for row in 0..<Self.model.recipe.evalBatch {
            let normalized = (0..<4).map { c in
                (x[row * 4 + c] - mean[c]) / (variance[c] + 1e-3).squareRoot() * gamma[c] + beta[c]
            }
            for k in 0..<3 {
                let expected = (0..<4).map { normalized[$0] * w[$0 * 3 + k] }.reduce(0, +) + b[k]
                #expect(abs(logits[row * 3 + k] - expected) < 1e-12)
            }
        }
    }

    @Test("Scales and offsets are trained without weight decay; running averages are state without momentum")
    func stateTable() {
        let names = StepBuilder(model: Self.model).stateTable.map { ($0.name, $0.isWeight) }
        #expect(names.contains { $0 == ("teacher/bn0/scale", false) })
        #expect(names.contains { $0 == ("student_momentum/bn0/offset", false) })
        #expect(names.contains { $0 == ("student/bn0/running_var", false) })
        #expect(!names.contains { $0.0.hasSuffix("momentum/bn0/running_mean") })
    }
}

@Suite("Reduced MPL: the teacher reads cached distributions")
struct ReducedMPLTests {
    @Test("The teacher's inputs are teacher_x [B_l + B_u, K]; the images reach only the student; no UDA")
    func teacherReadsDistributions() throws {
        let model = TinyModels.reduced(.hardArgmax)
        let builder = StepBuilder(model: model)
        let step = builder.mplStep()
        #expect(step.graph.verify().isEmpty)
        let (bl, bu) = (model.recipe.labeledBatch, model.recipe.unlabeledBatch)
        let teacherX = try #require(step.graph.input(named: "teacher_x"))
        #expect(step.graph.shape(of: teacherX) == Shape([bl + bu, 3]))
        #expect(builder.stateTable.first { $0.name == "teacher/dense0/weight" }?.shape == Shape([3, 4]))
        let predict = builder.predict(teacherNetwork: true)
        #expect(
            predict.graph.shape(of: try #require(predict.graph.input(named: "x")))
                == Shape([model.recipe.evalBatch, 3]))
        let env = TinyModels.inputs(
            for: step, seed: 5,
            scalars: ["lr_teacher": 0.1, "lr_student": 0.1, "uda_weight": 1, "feedback_scale": 1])
        let out = try Interpreter.results(step.graph, inputs: env)
        #expect(out["loss_uda"] == [0] && out["mask_rate"] == [0])
        // Changing the teacher's view of a labeled row changes its supervised loss; the images do not.
        var moved = env
        moved["teacher_x"]![0] += 0.5
        #expect(try Interpreter.results(step.graph, inputs: moved)["loss_sup"] != out["loss_sup"])
        moved = env
        moved["x"] = moved["x"]!.map { $0 + 0.5 }
        #expect(try Interpreter.results(step.graph, inputs: moved)["loss_sup"] == out["loss_sup"])
    }
}
