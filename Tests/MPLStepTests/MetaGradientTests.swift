import Foundation
import MPLAutodiff
import MPLIR
import MPLModel
import Testing

@testable import MPLStep

/// Small models on which the Double interpreter runs a whole step in milliseconds.
enum TinyModels {
    static func recipe(_ pseudo: PseudoLabels, feedback: Feedback = .dotProduct, nesterov: Bool = true) -> Recipe {
        var r = Recipe()
        r.labeledBatch = 3
        r.unlabeledRatio = 2
        r.pseudoLabels = pseudo
        r.feedback = feedback
        r.labelSmoothing = 0.1
        r.uda.threshold = 0.3
        var sgd = SGD()
        sgd.nesterov = nesterov
        r.studentOptimizer.rule = .sgd(sgd)
        r.finetune.batch = 4
        r.evalBatch = 5
        return r
    }

    static func mlp(_ pseudo: PseudoLabels, feedback: Feedback = .dotProduct, nesterov: Bool = true) -> Model {
        let net = Network(
            name: "net",
            layers: [
                .dense(units: 5), .activation(.tanh), .dense(units: 4), .activation(.leakyReLU(alpha: 0.2)),
                .dense(units: 4),
                .activation(.gelu), .dense(units: 3),
            ])
        return Model(
            name: "tiny_mlp", input: .features(4), classes: 3, teacher: net, student: net,
            recipe: recipe(pseudo, feedback: feedback, nesterov: nesterov))
    }

    static func cnn(_ pseudo: PseudoLabels) -> Model {
        let teacher = Network(
            name: "t",
            layers: [
                .conv2D(filters: 2, kernel: 3, stride: 1, padding: 1), .activation(.relu),
                .maxPool2D(size: 2, stride: 2),
                .conv2D(filters: 3, kernel: 2, stride: 1, padding: 0), .activation(.sigmoid), .globalAvgPool,
                .dense(units: 3),
            ])
        let student = Network(
            name: "s",
            layers: [
                .conv2D(filters: 2, kernel: 3, stride: 2, padding: 1), .activation(.tanh),
                .avgPool2D(size: 2, stride: 1), .flatten, .dense(units: 3),
            ])
        return Model(
            name: "tiny_cnn", input: .image(channels: 1, height: 6, width: 6), classes: 3, teacher: teacher,
            student: student, recipe: recipe(pseudo))
    }

    /// BatchNorm and residual blocks of every kind: a strided 1×1-convolution shortcut, a matrix shortcut, an
    /// identity shortcut.
    static func residual(_ pseudo: PseudoLabels) -> Model {
        let teacher = Network(
            name: "t",
            layers: [
                .conv2D(filters: 2, kernel: 3, stride: 1, padding: 1), .batchNorm(momentum: 0.1, epsilon: 1e-3),
                .activation(.relu),
                .residual([
                    .conv2D(filters: 2, kernel: 3, stride: 1, padding: 1), .batchNorm(momentum: 0.1, epsilon: 1e-3),
                    .activation(.leakyReLU(alpha: 0.1)), .conv2D(filters: 3, kernel: 3, stride: 2, padding: 1),
                ]),
                .batchNorm(momentum: 0.1, epsilon: 1e-3), .activation(.tanh), .globalAvgPool, .dense(units: 3),
            ])
        let student = Network(
            name: "s",
            layers: [
                .flatten, .dense(units: 5), .batchNorm(momentum: 0.01, epsilon: 1e-3), .activation(.tanh),
                .residual([.dense(units: 4), .batchNorm(momentum: 0.01, epsilon: 1e-3), .activation(.tanh)]),
                .residual([.dense(units: 4), .activation(.sigmoid)]), .dense(units: 3),
            ])
        return Model(
            name: "tiny_residual", input: .image(channels: 1, height: 6, width: 6), classes: 3,
            teacher: teacher, student: student, recipe: recipe(pseudo))
    }

    /// Reduced MPL: a small teacher on 3-class distributions, an image student.
    static func reduced(_ pseudo: PseudoLabels) -> Model {
        let teacher = Network(name: "t", layers: [.dense(units: 4), .activation(.tanh), .dense(units: 3)])
        let student = Network(
            name: "s",
            layers: [
                .conv2D(filters: 2, kernel: 3, stride: 1, padding: 1), .activation(.relu), .globalAvgPool,
                .dense(units: 3),
            ])
        var model = Model(
            name: "tiny_reduced", input: .image(channels: 1, height: 5, width: 5), classes: 3,
            teacher: teacher, student: student, recipe: recipe(pseudo))
        model.recipe.teacherInput = .cachedPredictions
        return model
    }

    /// Pseudo labels from the teacher's weak view (`pseudoLabelsFrom(.weakView)`); the student still learns on the strong.
    static func weakView(_ model: Model) -> Model {
        var model = model
        model.recipe.pseudoLabelsFrom = .weakView
        return model
    }

    /// The student trained by Adam, or AdamW. β2 and ε far from their defaults make the step's dependence on the
    /// second moment strong enough for the finite-difference checks to see it.
    static func adamStudent(_ model: Model, decoupled: Bool = false) -> Model {
        var model = model
        var adam = Adam()
        (adam.beta1, adam.beta2, adam.epsilon, adam.weightDecay, adam.decoupled) = (0.8, 0.5, 1e-3, 0.05, decoupled)
        model.recipe.studentOptimizer.rule = .adam(adam)
        return model
    }

    /// Random state and batch for `entry`, keyed by input name, with the given scalars.
    static func inputs(for entry: EntryPoint, seed: UInt64, scalars: [String: Double]) -> [String: [Double]] {
        var rng = SplitMix64(seed: seed)
        var env: [String: [Double]] = [:]
        for (name, value) in entry.graph.inputs {
            let count = entry.graph.shape(of: value).count
            if let s = scalars[name] {
                env[name] = [s]
            } else if name == "y" {
                let classes = entry.graph.shape(of: value)[1]
                env[name] = (0..<count).map { $0 % classes == ($0 / classes) % classes ? 1 : 0 }
            } else if name == "uniform" {
                env[name] = rng.vector(count, in: 0...1)
            } else if name.hasSuffix("_correction") {
                env[name] = [0.5]  // Adam's 1 − β^t, as after a few steps
            } else if name.contains("_momentum/v/") {
                env[name] = rng.vector(count, in: 0...0.8)  // Adam's second moments are not negative
            } else {
                env[name] = rng.vector(count, in: -0.8...0.8)
            }
        }
        return env
    }
}

@Suite("The MPL step's feedback, in Double")
struct MetaGradientTests {
    /// g_T^mpl recovered from the real step graph: with plain SGD for the teacher (no momentum, no weight decay),
    /// θ'_T(f=0) − θ'_T(f=1) = lr_T · g_T^mpl, where f is the feedback scale.
    func metaGradient(_ model: Model, seed: UInt64) throws -> (
        step: EntryPoint, env: [String: [Double]], gradient: [String: [Double]]
    ) {
        var model = model
        var plain = SGD()
        (plain.momentum, plain.nesterov, plain.weightDecay) = (0, false, 0)
        model.recipe.teacherOptimizer.rule = .sgd(plain)
        let builder = StepBuilder(model: model)
        let step = builder.mplStep()
        #expect(step.graph.verify().isEmpty)
        let lrTeacher = 0.5
        var env = TinyModels.inputs(
            for: step, seed: seed,
            scalars: ["lr_teacher": lrTeacher, "lr_student": 0.3, "uda_weight": 0.7, "feedback_scale": 1])
        let withFeedback = try Interpreter.results(step.graph, inputs: env)
        env["feedback_scale"] = [0]
        let without = try Interpreter.results(step.graph, inputs: env)
        env["feedback_scale"] = [1]
        var gradient: [String: [Double]] = [:]
        for info in builder.teacher.infos {
            gradient[info.name] = zip(without[info.name]!, withFeedback[info.name]!).map { ($0 - $1) / lrTeacher }
        }
        return (step, env, gradient)
    }

    /// Central differences of θ_T ↦ L_l(θ'_S(θ_T)) along a random direction.
    func finiteDifference(_ step: EntryPoint, env: [String: [Double]], direction: [String: [Double]], epsilon: Double)
        throws -> Double
    {
        func loss(_ scale: Double) throws -> Double {
            var shifted = env
            for (name, d) in direction { shifted[name] = zip(env[name]!, d).map { $0 + scale * $1 } }
            return try Interpreter.results(step.graph, inputs: shifted)["loss_student_l"]![0]
        }
        return (try loss(epsilon) - loss(-epsilon)) / (2 * epsilon)
    }

    @Test(
        "Soft labels: the meta-gradient equals finite differences of the unrolled objective (fixes the sign)",
        arguments: [
            TinyModels.mlp(.soft(temperature: 1.5)), TinyModels.cnn(.soft(temperature: 1)),
            TinyModels.residual(.soft(temperature: 1)), TinyModels.reduced(.soft(temperature: 1)),
            TinyModels.adamStudent(TinyModels.mlp(.soft(temperature: 1.5))),
            TinyModels.adamStudent(TinyModels.cnn(.soft(temperature: 1)), decoupled: true),
            TinyModels.adamStudent(TinyModels.residual(.soft(temperature: 1))),
            TinyModels.weakView(TinyModels.mlp(.soft(temperature: 1.5))),
            TinyModels.weakView(TinyModels.cnn(.soft(temperature: 1))),
            TinyModels.weakView(TinyModels.residual(.soft(temperature: 1))),
        ])
    func softExact(model: Model) throws {
        for seed: UInt64 in [1, 2, 3] {
            let (step, env, gradient) = try metaGradient(model, seed: seed)
            var rng = SplitMix64(seed: seed + 100)
            let direction = gradient.mapValues { rng.vector($0.count) }
            let analytic = gradient.keys.sorted().map { name in
                zip(gradient[name]!, direction[name]!).map(*).reduce(0, +)
            }
            .reduce(0, +)
            let numeric = try finiteDifference(step, env: env, direction: direction, epsilon: 1e-5)
            let relative = abs(analytic - numeric) / max(abs(numeric), 1e-12)
            #expect(relative <= 1e-6, "\(model.name) seed \(seed): analytic \(analytic), finite differences \(numeric)")
            #expect(abs(numeric) > 1e-6, "the objective must actually depend on the teacher")
        }
    }

    @Test("Hard labels: h is η_eff·⟨g_l, g_u⟩ and has the sign of (old − new) when the step is small")
    func hardDotProduct() throws {
        let scalars = ["lr_teacher": 0.1, "lr_student": 1e-3, "uda_weight": 1, "feedback_scale": 1]
        for seed: UInt64 in [1, 2, 3, 4] {
            // The loss difference sees the whole step; h sees only g_u: no momentum or decay, so they match to first order.
            var model = TinyModels.mlp(.hardArgmax, nesterov: false)
            var sgd = SGD()
            (sgd.nesterov, sgd.weightDecay) = (false, 0)
            model.recipe.studentOptimizer.rule = .sgd(sgd)
            func batch(_ entry: EntryPoint) -> [String: [Double]] {
                TinyModels.inputs(for: entry, seed: seed, scalars: scalars).reduce(into: [:]) { env, item in
                    env[item.key] = item.key.hasPrefix("student_momentum") ? item.value.map { _ in 0 } : item.value
                }
            }
            let dot = StepBuilder(model: model).mplStep()
            var differenceModel = model
            differenceModel.recipe.feedback = .lossDifference
            let difference = StepBuilder(model: differenceModel).mplStep()
            let hDot = try Interpreter.results(dot.graph, inputs: batch(dot))["h"]![0]
            let hDiff = try Interpreter.results(difference.graph, inputs: batch(difference))["h"]![0]
            #expect(hDot != 0)
            #expect((hDot > 0) == (hDiff > 0), "seed \(seed): dot \(hDot), old − new \(hDiff)")
            // First-order Taylor: they agree to O(η²).
            #expect(abs(hDot - hDiff) <= 0.05 * abs(hDiff), "seed \(seed): dot \(hDot), old − new \(hDiff)")
        }
    }

    @Test(
        "The feedback diagnostics: ‖g_l‖, ‖g_u‖ and their cosine from gradients recovered by plain SGD steps, and h > 0",
        arguments: [
            TinyModels.mlp(.hardArgmax), TinyModels.mlp(.hardArgmax, feedback: .lossDifference),
            TinyModels.mlp(.soft(temperature: 1.5)),
        ])
    func feedbackDiagnostics(model: Model) throws {
        // With plain SGD, g_u = (θ_S − θ'_S)/lr from the MPL step, and g_l = θ'_S − θ''_S from a supervised step of
        // lr 1 on the labeled rows, taken at θ'_S (the supervised loss is the same CE(y, S(x_l; θ'_S))).
        var model = model
        var plain = SGD()
        (plain.momentum, plain.nesterov, plain.weightDecay) = (0, false, 0)
        model.recipe.studentOptimizer.rule = .sgd(plain)
        model.recipe.finetune.batch = model.recipe.labeledBatch
        let builder = StepBuilder(model: model)
        let step = builder.mplStep()
        let supervised = builder.supervisedStep()
        let lr = 0.3
        let features = 4
        for seed: UInt64 in [1, 2, 3] {
            let env = TinyModels.inputs(
                for: step, seed: seed,
                scalars: ["lr_teacher": 0.1, "lr_student": lr, "uda_weight": 1, "feedback_scale": 1])
            let out = try Interpreter.results(step.graph, inputs: env)
            var supEnv: [String: [Double]] = [
                "x": Array(env["x"]![0..<(model.recipe.labeledBatch * features)]),
                "y": env["y"]!, "lr": [1],
            ]
            for (name, value) in supervised.graph.inputs where supEnv[name] == nil {
                supEnv[name] = out[name] ?? Array(repeating: 0, count: supervised.graph.shape(of: value).count)
            }
            let sup = try Interpreter.results(supervised.graph, inputs: supEnv)
            var gu: [Double] = []
            var gl: [Double] = []
            for info in builder.student.infos {
                gu += zip(env[info.name]!, out[info.name]!).map { ($0 - $1) / lr }
                gl += zip(out[info.name]!, sup[info.name]!).map { $0 - $1 }
            }
            func norm(_ v: [Double]) -> Double { v.map { $0 * $0 }.reduce(0, +).squareRoot() }
            let cosine = zip(gl, gu).map(*).reduce(0, +) / (norm(gl) * norm(gu))
            for (name, expected) in [("g_l_norm", norm(gl)), ("g_u_norm", norm(gu)), ("cos_g_l_g_u", cosine)] {
                let value = try #require(out[name], "no step output \(name)")[0]
                #expect(
                    abs(value - expected) <= 1e-9 * max(abs(expected), 1),
                    "\(model.name) seed \(seed): \(name) \(value), expected \(expected)")
            }
            #expect(abs(cosine) > 1e-3 && norm(gl) > 1e-3 && norm(gu) > 1e-3, "the check must see real gradients")
            #expect(try #require(out["h_positive"])[0] == (out["h"]![0] > 0 ? 1 : 0))
        }
    }

    @Test("Hard labels with Adam: h = lr·⟨g_l, P ⊙ g_u⟩ is old − new to first order (the error shrinks with lr)")
    func hardDotProductAdam() throws {
        // With m = 0 and no weight decay (h leaves out what does not depend on g_u) the whole step is lr·P ⊙ g_u,
        // so h and the loss difference agree up to O(lr²): their relative difference falls like lr. v random (a
        // preconditioner far from 1), or all state zero (the first step, where P ⊙ g_u ≈ sign(g_u)).
        var model = TinyModels.adamStudent(TinyModels.mlp(.hardArgmax))
        guard case .adam(var adam) = model.recipe.studentOptimizer.rule else { return }
        adam.weightDecay = 0
        model.recipe.studentOptimizer.rule = .adam(adam)
        var differenceModel = model
        differenceModel.recipe.feedback = .lossDifference
        let dot = StepBuilder(model: model).mplStep()
        let difference = StepBuilder(model: differenceModel).mplStep()
        for seed: UInt64 in [1, 2, 3, 4] {
            for firstStep in [false, true] {
                func relativeError(lr: Double) throws -> Double {
                    func h(_ entry: EntryPoint) throws -> Double {
                        let scalars = ["lr_teacher": 0.1, "lr_student": lr, "uda_weight": 1, "feedback_scale": 1]
                        let env = TinyModels.inputs(for: entry, seed: seed, scalars: scalars).reduce(
                            into: [String: [Double]]()
                        ) { env, item in
                            let zero =
                                item.key.hasPrefix("student_momentum/m/")
                                || (firstStep && item.key.hasPrefix("student_momentum"))
                            env[item.key] = zero ? item.value.map { _ in 0 } : item.value
                        }
                        return try Interpreter.results(entry.graph, inputs: env)["h"]![0]
                    }
                    let hDot = try h(dot)
                    let hDiff = try h(difference)
                    #expect(hDot != 0 && (hDot > 0) == (hDiff > 0), "seed \(seed): dot \(hDot), old − new \(hDiff)")
                    return abs(hDot - hDiff) / abs(hDiff)
                }
                let coarse = try relativeError(lr: 1e-3)
                let fine = try relativeError(lr: 1e-5)
                print("seed \(seed) first step \(firstStep): relative error \(coarse) at lr 1e-3, \(fine) at lr 1e-5")
                #expect(
                    fine <= 0.02 * coarse + 1e-9 && fine <= 1e-2,
                    "seed \(seed) first step \(firstStep): \(coarse), \(fine)")
            }
        }
    }

    @Test(
        "Hard labels: the feedback baseline b turns the teacher's feedback part into (h − b)/h times the paper's",
        arguments: [
            TinyModels.mlp(.hardArgmax), TinyModels.mlp(.hardArgmax, feedback: .lossDifference),
            TinyModels.cnn(.hardArgmax), TinyModels.reduced(.hardArgmax),
            TinyModels.weakView(TinyModels.cnn(.hardArgmax)),
        ])
    func feedbackBaseline(model: Model) throws {
        // With plain SGD for the teacher, (θ'_T(f=0) − θ'_T(f, b))/lr is the feedback part f·(h − b)·∇CE(ŷ, z) (z:
        // the logits the labels came from, z_us or with pseudoLabelsFrom(.weakView) z_uw), and h does not depend on
        // b or f: so the part with baseline b is (h − b)/h times the part with b = 0.
        var model = model
        var plain = SGD()
        (plain.momentum, plain.nesterov, plain.weightDecay) = (0, false, 0)
        model.recipe.teacherOptimizer.rule = .sgd(plain)
        let builder = StepBuilder(model: model)
        let step = builder.mplStep()
        #expect(step.graph.inputs.contains { $0.name == "feedback_baseline" })
        let lr = 0.5
        for seed: UInt64 in [1, 2, 3] {
            let env = TinyModels.inputs(
                for: step, seed: seed,
                scalars: ["lr_teacher": lr, "lr_student": 0.3, "uda_weight": 0.7, "feedback_scale": 1])
            func run(_ scale: Double, _ baseline: Double) throws -> [String: [Double]] {
                var e = env
                (e["feedback_scale"], e["feedback_baseline"]) = ([scale], [baseline])
                return try Interpreter.results(step.graph, inputs: e)
            }
            let without = try run(0, 0)
            func part(_ out: [String: [Double]]) -> [Double] {
                builder.teacher.infos.flatMap { info in
                    zip(without[info.name]!, out[info.name]!).map { ($0 - $1) / lr }
                }
            }
            let plainOut = try run(1, 0)
            let h = plainOut["h"]![0]
            #expect(abs(h) > 1e-9, "the check must see a real h")
            let paper = part(plainOut)
            for baseline in [h / 2, -3 * h, 2 * h] {
                let out = try run(1, baseline)
                #expect(out["h"]![0] == h, "the baseline only weighs h, it does not change it")
                let shifted = part(out)
                let scale = (h - baseline) / h
                let norm = paper.map { $0 * $0 }.reduce(0, +).squareRoot()
                let error = zip(shifted, paper).map { ($0 - scale * $1) * ($0 - scale * $1) }.reduce(0, +).squareRoot()
                #expect(
                    norm > 1e-9 && error <= 1e-9 * norm * max(1, abs(scale)), "\(model.name) seed \(seed) b \(baseline)"
                )
            }
        }
    }

    @Test("Hard labels from the weak view: the feedback part is h·∇CE(ŷ, T(x_uw)), ŷ the teacher's argmax on x_uw")
    func weakViewHardFeedback() throws {
        // Written out independently of the step: the teacher's logits on the weak rows come from its inference
        // entry point, the labels and the cross-entropy from them here, and the gradient from finite differences.
        var model = TinyModels.weakView(TinyModels.mlp(.hardArgmax))
        var plain = SGD()
        (plain.momentum, plain.nesterov, plain.weightDecay) = (0, false, 0)
        model.recipe.teacherOptimizer.rule = .sgd(plain)
        let (bl, bu, classes, features) = (model.recipe.labeledBatch, model.recipe.unlabeledBatch, model.classes, 4)
        model.recipe.evalBatch = bu
        let builder = StepBuilder(model: model)
        let step = builder.mplStep()
        let predict = builder.predict(teacherNetwork: true)
        let lr = 0.5
        for seed: UInt64 in [1, 2, 3] {
            let env = TinyModels.inputs(
                for: step, seed: seed,
                scalars: [
                    "lr_teacher": lr, "lr_student": 0.3, "uda_weight": 0.7, "feedback_scale": 1,
                    "feedback_baseline": 0,
                ])
            var off = env
            off["feedback_scale"] = [0]
            let (on, without) = (
                try Interpreter.results(step.graph, inputs: env), try Interpreter.results(step.graph, inputs: off)
            )
            let part = builder.teacher.infos.flatMap { info in
                zip(without[info.name]!, on[info.name]!).map { ($0 - $1) / lr }
            }
            let h = on["h"]![0]
            #expect(abs(h) > 1e-9, "the check must see a real h")
            func rows(_ first: Int) -> [Double] { Array(env["x"]![(first * features)..<((first + bu) * features)]) }
            func logits(_ teacher: [String: [Double]], _ x: [Double]) throws -> [[Double]] {
                var inputs = teacher.filter { name, _ in predict.graph.inputs.contains { $0.name == name } }
                inputs["x"] = x
                let z = try Interpreter.results(predict.graph, inputs: inputs)["logits"]!
                return stride(from: 0, to: z.count, by: classes).map { Array(z[$0..<($0 + classes)]) }
            }
            func argmax(_ row: [Double]) -> Int { row.indices.max { row[$0] < row[$1] }! }
            let labels = try logits(env, rows(bl)).map(argmax)
            func crossEntropy(_ teacher: [String: [Double]], rows first: Int) throws -> Double {
                let z = try logits(teacher, rows(first))
                return zip(z, labels).map { row, label in
                    let top = row.max()!
                    return log(row.map { exp($0 - top) }.reduce(0, +)) + top - row[label]
                }.reduce(0, +) / Double(bu)
            }
            var rng = SplitMix64(seed: seed + 300)
            let direction = builder.teacher.infos.map { rng.vector($0.shape.count) }
            func shifted(_ s: Double) -> [String: [Double]] {
                var e = env
                for (info, d) in zip(builder.teacher.infos, direction) {
                    e[info.name] = zip(env[info.name]!, d).map { $0 + s * $1 }
                }
                return e
            }
            func numeric(rows first: Int) throws -> Double {
                h * (try crossEntropy(shifted(1e-5), rows: first) - crossEntropy(shifted(-1e-5), rows: first)) / 2e-5
            }
            let analytic = zip(part, direction.flatMap { $0 }).map(*).reduce(0, +)
            let weak = try numeric(rows: bl)
            // The same labels against the strong view's logits give another number: the check tells the views apart.
            #expect(abs(try numeric(rows: bl + bu) - weak) > 1e-3 * abs(weak))
            #expect(
                abs(analytic - weak) <= 1e-6 * max(abs(weak), 1e-12),
                "seed \(seed): feedback part \(analytic), h times finite differences \(weak)")
        }
    }

    @Test(
        "The teacher's gradient is the sum of its supervised, UDA and feedback parts; each part's norm is its own gradient's",
        arguments: [
            TinyModels.mlp(.hardArgmax), TinyModels.mlp(.hardArgmax, feedback: .lossDifference),
            TinyModels.mlp(.soft(temperature: 1.5)), TinyModels.cnn(.hardArgmax),
            TinyModels.residual(.soft(temperature: 1)),
            TinyModels.reduced(.hardArgmax), TinyModels.weakView(TinyModels.mlp(.hardArgmax)),
            TinyModels.weakView(TinyModels.residual(.soft(temperature: 1))),
        ])
    func teacherGradientParts(model: Model) throws {
        var model = model
        model.recipe.teacherGradientParts = true
        var plain = SGD()
        (plain.momentum, plain.nesterov, plain.weightDecay) = (0, false, 0)
        model.recipe.teacherOptimizer.rule = .sgd(plain)
        let builder = StepBuilder(model: model)
        let step = builder.mplStep()
        let (lr, weight) = (0.5, 0.7)
        for seed: UInt64 in [1, 2] {
            let env = TinyModels.inputs(
                for: step, seed: seed,
                scalars: ["lr_teacher": lr, "lr_student": 0.3, "uda_weight": weight, "feedback_scale": 1])
            // The gradient a plain SGD step applied, (θ_T − θ'_T)/lr, with the UDA weight and feedback scale given.
            func applied(_ uda: Double, _ feedback: Double) throws -> (gradient: [Double], out: [String: [Double]]) {
                var e = env
                (e["uda_weight"], e["feedback_scale"]) = ([uda], [feedback])
                let out = try Interpreter.results(step.graph, inputs: e)
                let gradient = builder.teacher.infos.flatMap { info in
                    zip(env[info.name]!, out[info.name]!).map { ($0 - $1) / lr }
                }
                return (gradient, out)
            }
            let (total, out) = try applied(weight, 1)
            let supervised = try applied(0, 0).gradient
            let withUDA = try applied(weight, 0).gradient
            let uda = zip(withUDA, supervised).map(-)
            let feedback = zip(total, withUDA).map(-)
            func norm(_ v: [Double]) -> Double { v.map { $0 * $0 }.reduce(0, +).squareRoot() }
            for (name, part) in [
                ("teacher_grad_sup_norm", supervised), ("teacher_grad_uda_norm", uda),
                ("teacher_grad_feedback_norm", feedback),
            ] {
                let logged = try #require(out[name]?.first, "\(name) is a step output")
                #expect(
                    abs(logged - norm(part)) <= 1e-9 * max(norm(part), 1e-12),
                    "\(model.name) seed \(seed): \(name) \(logged), applied part \(norm(part))")
            }
            #expect(norm(supervised) > 1e-6 && norm(feedback) > 1e-9)
            #expect(model.recipe.teacherInput == .cachedPredictions ? norm(uda) == 0 : norm(uda) > 1e-6)
            // Parts against finite differences of their own loss along a random direction of θ_T: the supervised
            // loss and (soft labels, exact meta-gradient) the updated student's labeled loss. (The UDA loss's targets
            // are under stopGradient, which finite differences cannot hold still; its part is checked above against
            // the update that the UDA weight adds.)
            var rng = SplitMix64(seed: seed + 200)
            let direction = builder.teacher.infos.map { rng.vector($0.shape.count) }
            func derivative(_ output: String) throws -> Double {
                func at(_ s: Double) throws -> Double {
                    var e = env
                    for (info, d) in zip(builder.teacher.infos, direction) {
                        e[info.name] = zip(env[info.name]!, d).map { $0 + s * $1 }
                    }
                    return try Interpreter.results(step.graph, inputs: e)[output]![0]
                }
                return (try at(1e-5) - at(-1e-5)) / 2e-5
            }
            func along(_ part: [Double]) -> Double { zip(part, direction.flatMap { $0 }).map(*).reduce(0, +) }
            var checks = [(along(supervised), try derivative("loss_sup"), "supervised")]
            if case .soft = model.recipe.pseudoLabels {
                checks.append((along(feedback), try derivative("loss_student_l"), "feedback"))
            }
            for (analytic, numeric, part) in checks {
                #expect(
                    abs(analytic - numeric) <= 1e-6 * max(abs(numeric), 1e-9),
                    "\(model.name) seed \(seed), \(part) part: \(analytic), finite differences \(numeric)")
            }
        }
    }
}

@Suite("Optimisers: each rule's update, in Double")
struct OptimizerTests {
    /// The supervised step's gradient, recovered from plain SGD (θ − θ' = lr·g), and Adam's step from the same
    /// state and batch, against Adam's formulas written out per number.
    @Test(
        "Adam and AdamW take the textbook step (bias correction, ε, decay on weights only)", arguments: [false, true])
    func adamStep(decoupled: Bool) throws {
        let model = TinyModels.adamStudent(TinyModels.mlp(.hardArgmax), decoupled: decoupled)
        guard case .adam(let a) = model.recipe.studentOptimizer.rule else { return }
        let adamStep = StepBuilder(model: model).supervisedStep()
        #expect(adamStep.graph.verify().isEmpty)
        let lr = 0.3
        let env = TinyModels.inputs(for: adamStep, seed: 5, scalars: ["lr": lr])
        let after = try Interpreter.results(adamStep.graph, inputs: env)

        var plain = model
        var sgd = SGD()
        (sgd.momentum, sgd.nesterov, sgd.weightDecay) = (0, false, 0)
        plain.recipe.studentOptimizer.rule = .sgd(sgd)
        let sgdStep = StepBuilder(model: plain).supervisedStep()
        var sgdEnv = env
        for (name, value) in sgdStep.graph.inputs where sgdEnv[name] == nil {
            sgdEnv[name] = Array(repeating: 0, count: sgdStep.graph.shape(of: value).count)
        }
        let sgdAfter = try Interpreter.results(sgdStep.graph, inputs: sgdEnv)

        let c1 = a.beta1 * env["student_momentum/m_correction"]![0] + 1 - a.beta1
        let c2 = a.beta2 * env["student_momentum/v_correction"]![0] + 1 - a.beta2
        #expect(abs(after["student_momentum/m_correction"]![0] - c1) <= 1e-15)
        #expect(abs(after["student_momentum/v_correction"]![0] - c2) <= 1e-15)
        let builder = StepBuilder(model: model)
        #expect(
            builder.stateTable.filter { $0.name.hasPrefix("student_momentum/") }.count == 2
                * builder.student.infos.count + 2)
        for info in builder.student.infos {
            let suffix = info.name.dropFirst("student".count)
            for i in 0..<info.shape.count {
                let theta = env[info.name]![i]
                let decay = info.isWeight ? a.weightDecay : 0
                let g = (theta - sgdAfter[info.name]![i]) / lr + (decoupled ? 0 : decay * theta)
                let m = a.beta1 * env["student_momentum/m" + suffix]![i] + (1 - a.beta1) * g
                let v = a.beta2 * env["student_momentum/v" + suffix]![i] + (1 - a.beta2) * g * g
                let step = (m / c1) / ((v / c2 + a.epsilon * a.epsilon).squareRoot() + a.epsilon)
                let expected = theta - lr * (step + (decoupled ? decay * theta : 0))
                #expect(abs(after["student_momentum/m" + suffix]![i] - m) <= 1e-12)
                #expect(abs(after["student_momentum/v" + suffix]![i] - v) <= 1e-12)
                #expect(abs(after[info.name]![i] - expected) <= 1e-12, "\(info.name)[\(i)]")
            }
        }
    }

    @Test("A teacher trained by AdamW: the MPL step builds, verifies and updates its state")
    func adamTeacher() throws {
        var model = TinyModels.mlp(.soft(temperature: 1))
        model.recipe.teacherOptimizer = Optimizer.defaults(named: "AdamW")!
        let step = StepBuilder(model: model).mplStep()
        #expect(step.graph.verify().isEmpty)
        let results = Set(step.graph.results.map(\.name))
        #expect(
            results.contains("teacher_momentum/m_correction") && results.contains("teacher_momentum/v/dense0/weight"))
        let after = try Interpreter.results(
            step.graph,
            inputs: TinyModels.inputs(
                for: step, seed: 9,
                scalars: [
                    "lr_teacher": 1e-3, "lr_student": 0.1, "uda_weight": 1, "feedback_scale": 1,
                ]))
        #expect(after.values.allSatisfy { $0.allSatisfy(\.isFinite) })
    }
}
