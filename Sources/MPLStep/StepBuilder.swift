// The whole MPL training step as one graph (docs/STEP.md), plus the supervised step and inference.
// Every gradient here comes from the general autodiff; nothing is differentiated by hand.

import MPLAutodiff
import MPLIR
import MPLModel

public struct StepBuilder {
    public let model: Model
    let teacher: NetworkParameters
    let student: NetworkParameters
    let inputShape: FeatureShape
    /// The image, or with Reduced MPL the cached class distribution.
    let teacherInputShape: FeatureShape
    /// Processes the global batch is split over (data parallelism, docs/STEP.md "Ranks"); every batch of the recipe
    /// divides by it (the compiler checks), and the entry points take one rank's share.
    public let ranks: Int

    public init(model: Model, ranks: Int = 1) {
        precondition(ranks >= 1 && model.recipe.labeledBatch % ranks == 0 && model.recipe.finetune.batch % ranks == 0)
        self.model = model
        self.ranks = ranks
        inputShape = model.input.featureShape
        teacherInputShape = model.recipe.teacherInput == .image ? inputShape : .vector(model.classes)
        teacher = NetworkParameters(network: model.teacher, prefix: "teacher", input: teacherInputShape)
        student = NetworkParameters(network: model.student, prefix: "student", input: inputShape)
    }

    /// The state arena in order: teacher, student, the teacher's and the student's optimiser state, then the
    /// BatchNorm running averages of teacher and student.
    public var stateTable: [TensorInfo] {
        let optimizerState =
            model.recipe.teacherOptimizer.rule.state(of: teacher)
            + model.recipe.studentOptimizer.rule.state(of: student)
        return teacher.infos + student.infos + optimizerState + teacher.statistics + student.statistics
    }

    // MARK: - The MPL step

    public func mplStep() -> EntryPoint {
        let recipe = model.recipe
        let bl = recipe.labeledBatch / ranks
        let bu = recipe.unlabeledBatch / ranks
        let k = model.classes
        var g = Graph()
        var effects = ForwardEffects()
        let thetaT = g.stateInputs(teacher.infos + teacher.statistics)
        let thetaS = g.stateInputs(student.infos + student.statistics)
        let x = g.input("x", inputShape.batch(bl + 2 * bu))
        let y = g.input("y", Shape([bl, k]))
        let uniform = recipe.pseudoLabels == .hardSampled ? g.input("uniform", Shape([bu])) : nil
        let lrTeacher = g.input("lr_teacher", .scalar)
        let lrStudent = g.input("lr_student", .scalar)
        let udaWeight = g.input("uda_weight", .scalar)
        let feedbackScale = g.input("feedback_scale", .scalar)
        // Hard pseudo labels only: a baseline subtracted from h before it weighs the teacher's pseudo labels
        // (REINFORCE's variance reduction; the runner's --feedback-baseline keeps a moving average of h in it).
        // Soft labels descend the exact meta-gradient, which has no scalar coefficient to shift.
        var feedbackBaseline: Value?
        if case .soft = recipe.pseudoLabels {} else { feedbackBaseline = g.input("feedback_baseline", .scalar) }

        // 1-3. Teacher forward on [labeled; weak; strong], supervised and UDA losses. BatchNorm normalises over
        // all three views together, and its running averages follow this pass. With Reduced MPL the teacher
        // reads one cached distribution per image instead, [labeled; unlabeled], and there is no UDA.
        let zl: Value
        let zus: Value
        var zuw: Value?
        switch recipe.teacherInput {
        case .image:
            let z = g.forward(
                teacher, weights: thetaT, x: x, inputShape: inputShape,
                pass: .training("all", updatingAverages: true, ranks: ranks), effects: &effects)
            zl = g.sliceRows(z, start: 0, count: bl)
            zuw = g.sliceRows(z, start: bl, count: bu)
            zus = g.sliceRows(z, start: bl + bu, count: bu)
        case .cachedPredictions:
            let teacherX = g.input("teacher_x", Shape([bl + bu, k]))
            let z = g.forward(
                teacher, weights: thetaT, x: teacherX, inputShape: teacherInputShape,
                pass: .training("all", updatingAverages: true, ranks: ranks), effects: &effects)
            zl = g.sliceRows(z, start: 0, count: bl)
            zus = g.sliceRows(z, start: bl, count: bu)
        }
        g.origin = Origin("teacher/loss_sup", .forward)
        let eps = recipe.labelSmoothing
        let smoothed = g.add(g.scale(y, 1 - eps), g.constant(eps / Double(k), Shape([bl, k])))
        let lossSup = g.crossEntropy(targets: smoothed, logits: zl)
        g.origin = Origin("teacher/loss_uda", .forward)
        let (lossUDA, maskRate) =
            zuw.map { udaLoss(&g, weak: $0, strong: zus) } ?? (g.constant(0, .scalar), g.constant(0, .scalar))

        // 4-5. Pseudo labels, from the teacher's logits of the strong view (MPL.md) or of the weak one; the
        // student's loss and gradient on them, on the strong view.
        g.origin = Origin("teacher/pseudo_labels", .forward)
        let labelLogits: Value
        switch recipe.pseudoLabelsFrom {
        case .strongView: labelLogits = zus
        case .weakView:
            guard let zuw else {
                preconditionFailure("the frontend refuses pseudoLabelsFrom(.weakView) without images")
            }
            labelLogits = zuw
        }
        let pseudo = pseudoLabels(&g, logits: labelLogits, uniform: uniform)
        let xus = g.sliceRows(x, start: bl + bu, count: bu)
        let xl = g.sliceRows(x, start: 0, count: bl)
        let studentValues = student.infos.map { thetaS[$0.name]! }
        // The student's running averages follow its training pass; the labeled passes below only probe it.
        let su = g.forward(
            student, weights: thetaS, x: xus, inputShape: inputShape,
            pass: .training("u", updatingAverages: true, ranks: ranks), effects: &effects)
        g.origin = Origin("student/loss_u", .forward)
        let lossStudentU = g.crossEntropy(targets: pseudo, logits: su)
        let gu = globalMean(
            &g, Autodiff.vjp(&g, output: lossStudentU, wrt: studentValues), Origin("student/loss_u", .vjp))

        // 6. Student update.
        var studentUpdate = recipe.studentOptimizer.rule.update(
            &g, network: student, gradients: gu, learningRate: lrStudent)
        g.origin = Origin("teacher/feedback", .forward)
        let etaEff = studentUpdate.scale(&g)

        // 7. The updated student's labeled loss and its gradient g_l.
        let updated = Dictionary(uniqueKeysWithValues: studentUpdate.results.filter { $0.name.hasPrefix("student/") })
        let sl = g.forward(
            student, weights: updated, x: xl, inputShape: inputShape,
            pass: .training("l", updatingAverages: false, ranks: ranks), effects: &effects)
        g.origin = Origin("student/loss_l", .forward)
        let lossStudentL = g.crossEntropy(targets: y, logits: sl)
        let gl = globalMean(
            &g, Autodiff.vjp(&g, output: lossStudentL, wrt: student.infos.map { updated[$0.name]! }),
            Origin("student/loss_l", .vjp)
        ).map { g.append(.stopGradient($0)) }
        g.origin = Origin("teacher/feedback", .forward)

        // 8. Feedback and the teacher's objective. The student's step depends on g_u as θ − θ' = η_eff·D(g_u).
        let firstOrder = studentUpdate.firstOrder(&g)
        var dotProduct = g.dot(gl[0], firstOrder[0])
        for (a, b) in zip(gl, firstOrder).dropFirst() { dotProduct = g.add(dotProduct, g.dot(a, b)) }
        let hDot = g.mul(etaEff, dotProduct)
        let h: Value
        let feedbackPart: Value
        switch recipe.pseudoLabels {
        case .hardArgmax, .hardSampled:
            switch recipe.feedback {
            case .dotProduct, .off:
                h = hDot
            case .lossDifference:
                let sOld = g.forward(
                    student, weights: thetaS, x: xl, inputShape: inputShape,
                    pass: .training("l", updatingAverages: false, ranks: ranks), effects: &effects)
                g.origin = Origin("teacher/feedback", .forward)
                h = globalMean(&g, g.sub(g.crossEntropy(targets: y, logits: sOld), lossStudentL), g.origin)
            }
            // (h − b)·CE(ŷ, z) with h and the baseline b constants, z the logits ŷ came from (z_us in MPL.md):
            // REINFORCE towards labels that helped the student more than b says a step usually does (b = 0: the
            // paper's rule, h itself).
            let coefficient = g.append(.stopGradient(g.sub(h, feedbackBaseline!)))
            let reinforce = g.mul(coefficient, g.crossEntropy(targets: pseudo, logits: labelLogits))
            feedbackPart = g.mul(feedbackScale, reinforce)
        case .soft:
            h = hDot
            // F(θ_T) = ⟨w, ∇_θS L_u⟩ with w = (∂D/∂g_u)ᵀ·g_l (g_l itself for SGD) is the JVP of L_u in θ_S along w;
            // its θ_T-gradient is the meta-gradient.
            let tangents = studentUpdate.transposedJacobian(&g, times: gl)
            let f = Autodiff.jvp(&g, outputs: [lossStudentU], wrt: studentValues, tangents: tangents)[0]
            feedbackPart = g.neg(g.mul(feedbackScale, g.mul(etaEff, f)))
        }

        // 9. Teacher gradient and update. With teacherGradientParts(true) the gradient is the sum of its three
        // parts, each its own VJP, so that the logs show how much each moves the teacher (docs/ABI.md):
        // skip-zero-rows runs each part on its own rows (supervised: labeled; UDA: strong view; feedback: the view
        // the labels come from), one more teacher backward pass over B_u rows than the single VJP of the sum. With ranks each part is the
        // global batch's, so that its logged norm is too.
        let teacherValues = teacher.infos.map { thetaT[$0.name]! }
        let objective = [lossSup, g.mul(udaWeight, lossUDA), feedbackPart]
        let parts =
            recipe.teacherGradientParts
            ? objective.map {
                globalMean(&g, Autodiff.vjp(&g, output: $0, wrt: teacherValues), Origin("teacher/objective", .vjp))
            } : []
        g.origin = Origin("teacher/gradient", .forward)
        let gT =
            parts.isEmpty
            ? globalMean(
                &g,
                Autodiff.vjp(&g, output: g.add(g.add(objective[0], objective[1]), objective[2]), wrt: teacherValues),
                Origin("teacher/objective", .vjp))
            : teacherValues.indices.map { i in g.add(g.add(parts[0][i], parts[1][i]), parts[2][i]) }
        let teacherUpdate = recipe.teacherOptimizer.rule.update(
            &g, network: teacher, gradients: gT, learningRate: lrTeacher)

        // The logs are of the global batch; h and the diagnostics are global already.
        let losses = [
            ("loss_sup", lossSup), ("loss_uda", lossUDA), ("mask_rate", maskRate),
            ("loss_student_u", lossStudentU), ("loss_student_l", lossStudentL),
        ]
        g.results =
            losses.map { ($0.0, globalMean(&g, $0.1, g.origin(of: $0.1))) } + [("h", h)]
            + feedbackDiagnostics(&g, gl: gl, gu: gu, h: h)
            + zip(["teacher_grad_sup_norm", "teacher_grad_uda_norm", "teacher_grad_feedback_norm"], parts).map {
                ($0, norm(&g, $1))
            }
        let stateResults = teacherUpdate.results + studentUpdate.results + effects.averages
        g.results += stateResults
        return entryPoint(
            name: "mplc_step", table: "step", graph: g, masks: effects.masks,
            stateResults: Set(stateResults.map(\.name)))
    }

    /// The mean over the global batch of a mean over this rank's batch (a loss, a gradient), the same on every
    /// rank: (1/R)·Σ over the ranks (docs/STEP.md, "Ranks"). With one rank, `local` itself and no equation.
    /// `origin`: the equations' origin (kernels are named after it).
    func globalMean(_ g: inout Graph, _ local: Value, _ origin: Origin?) -> Value {
        ranks == 1 ? local : g.within(origin) { $0.scale($0.allReduceSum(local), 1 / Double(ranks)) }
    }

    func globalMean(_ g: inout Graph, _ local: [Value], _ origin: Origin?) -> [Value] {
        local.map { globalMean(&g, $0, origin) }
    }

    /// What the feedback does, for the logs (docs/ABI.md): ‖g_l‖, ‖g_u‖, their cosine (0 when either is 0) and
    /// whether h > 0 (its mean over steps is the fraction of steps in which the student's step helped).
    func feedbackDiagnostics(_ g: inout Graph, gl: [Value], gu: [Value], h: Value) -> [(name: String, value: Value)] {
        func dot(_ a: [Value], _ b: [Value]) -> Value {
            zip(a, b).dropFirst().reduce(g.dot(a[0], b[0])) { sum, pair in g.add(sum, g.dot(pair.0, pair.1)) }
        }
        let normL = g.unary(.sqrt, dot(gl, gl))
        let normU = g.unary(.sqrt, dot(gu, gu))
        // The floor only keeps 0/0 out when a gradient vanishes (a saturated softmax); it is far below any product
        // of two float norms that are not 0.
        let cosine = g.div(dot(gl, gu), g.binary(.max, g.mul(normL, normU), g.constant(1e-30, .scalar)))
        return [("g_l_norm", normL), ("g_u_norm", normU), ("cos_g_l_g_u", cosine), ("h_positive", g.unary(.step, h))]
    }

    /// ‖v‖ over a list of tensors (a network's gradient).
    func norm(_ g: inout Graph, _ v: [Value]) -> Value {
        g.unary(.sqrt, v.dropFirst().reduce(g.dot(v[0], v[0])) { sum, t in g.add(sum, g.dot(t, t)) })
    }

    /// UDA consistency loss on the strong view against sharpened, confidence-masked weak-view targets.
    func udaLoss(_ g: inout Graph, weak: Value, strong: Value) -> (loss: Value, maskRate: Value) {
        let uda = model.recipe.uda
        let bu = g.shape(of: weak)[0]
        let q = g.append(.stopGradient(g.softmax(g.scale(weak, 1 / uda.temperature))))
        let confidence = g.append(.reduceMax(q, axes: [1]))
        let mask = g.binary(.greaterEqual, confidence, g.constant(uda.threshold, Shape([bu])))
        let rowCE = g.neg(g.reduceSum(g.mul(q, g.logSoftmax(strong)), axes: [1]))
        let loss = g.scale(g.sumAll(g.mul(mask, rowCE)), 1 / Double(bu))
        return (loss, g.scale(g.sumAll(mask), 1 / Double(bu)))
    }

    /// The pseudo labels of the teacher's `logits` (of the view `pseudoLabelsFrom` names).
    func pseudoLabels(_ g: inout Graph, logits z: Value, uniform: Value?) -> Value {
        switch model.recipe.pseudoLabels {
        case .hardArgmax: return g.append(.oneHotArgmax(z))
        case .hardSampled: return g.append(.oneHotSample(probabilities: g.softmax(z), uniform: uniform!))
        case .soft(let temperature): return g.softmax(g.scale(z, 1 / temperature))
        }
    }

    // MARK: - Supervised step and inference

    /// One student step on labeled data (finetuning and the supervised-only baseline).
    public func supervisedStep() -> EntryPoint {
        let rows = model.recipe.finetune.batch / ranks
        var g = Graph()
        var effects = ForwardEffects()
        let thetaS = g.stateInputs(student.infos + student.statistics)
        let x = g.input("x", inputShape.batch(rows))
        let y = g.input("y", Shape([rows, model.classes]))
        let lr = g.input("lr", .scalar)
        let logits = g.forward(
            student, weights: thetaS, x: x, inputShape: inputShape,
            pass: .training("sup", updatingAverages: true, ranks: ranks), effects: &effects)
        g.origin = Origin("student/loss", .forward)
        let loss = g.crossEntropy(targets: y, logits: logits)
        let grads = globalMean(
            &g, Autodiff.vjp(&g, output: loss, wrt: student.infos.map { thetaS[$0.name]! }),
            Origin("student/loss", .vjp))
        let update = model.recipe.studentOptimizer.rule.update(&g, network: student, gradients: grads, learningRate: lr)
        let stateResults = update.results + effects.averages
        g.results = [("loss", globalMean(&g, loss, g.origin(of: loss)))] + stateResults
        return entryPoint(
            name: "mplc_supervised_step", table: "supervised", graph: g, masks: effects.masks,
            stateResults: Set(stateResults.map(\.name)))
    }

    public func predict(teacherNetwork: Bool) -> EntryPoint {
        let net = teacherNetwork ? teacher : student
        let netInput = teacherNetwork ? teacherInputShape : inputShape
        var g = Graph()
        var effects = ForwardEffects()
        let weights = g.stateInputs(net.infos + net.statistics)
        let x = g.input("x", netInput.batch(model.recipe.evalBatch))
        let logits = g.forward(net, weights: weights, x: x, inputShape: netInput, pass: .evaluation, effects: &effects)
        g.results = [("logits", logits)]
        var storage = Dictionary(uniqueKeysWithValues: (net.infos + net.statistics).map { ($0.name, Storage.state) })
        storage["x"] = .argument
        return EntryPoint(
            name: "mplc_predict_\(net.prefix)", tableName: "predict_\(net.prefix)", graph: g,
            inputStorage: storage, resultStorage: ["logits": .argument])
    }

    /// Binds state tensors to the state arena and everything else to the entry point's I/O arena.
    func entryPoint(name: String, table: String, graph: Graph, masks: [TensorInfo], stateResults: Set<String>)
        -> EntryPoint
    {
        let stateNames = Set(stateTable.map(\.name))
        let inputs = Dictionary(
            uniqueKeysWithValues: graph.inputs.map { ($0.name, stateNames.contains($0.name) ? Storage.state : .io) })
        let results = Dictionary(
            uniqueKeysWithValues: graph.results.map { ($0.name, stateResults.contains($0.name) ? Storage.state : .io) })
        return EntryPoint(
            name: name, tableName: table, graph: graph, inputStorage: inputs, resultStorage: results,
            ioInfo: Dictionary(uniqueKeysWithValues: masks.map { ($0.name, $0) }))
    }
}
