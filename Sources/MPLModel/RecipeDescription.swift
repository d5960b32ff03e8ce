/// The resolved recipe as `mplc check` prints it (docs/DSL.md, "The resolved recipe"): one setting per line,
/// named as in the model file (a labeled argument after a dot), its value written as in the file, and
/// "(default)" when the value is the default's, whether the file left the setting out or wrote that value.
extension Recipe {
    public var resolvedLines: [String] {
        let d = Recipe()
        var lines: [String] = []
        func add<Value: Equatable>(_ name: String, _ value: Value, _ initial: Value, _ text: String) {
            lines.append("\(name) \(text)" + (value == initial ? " (default)" : ""))
        }
        func number<Value: Equatable & CustomStringConvertible>(_ name: String, _ value: Value, _ initial: Value) {
            add(name, value, initial, value.description)
        }
        /// Adam and AdamW say which they are; SGD, the default, needs no line. Defaults are those of the same rule.
        func optimizer(_ name: String, _ o: Optimizer, _ recipeDefault: Optimizer) {
            let i = Optimizer.defaults(named: o.name) ?? recipeDefault
            if o.name != recipeDefault.name { lines.append("\(name) \(o.name)") }
            number("\(name).learningRate", o.learningRate, i.learningRate)
            switch (o.rule, i.rule) {
            case (.sgd(let r), .sgd(let d)):
                number("\(name).momentum", r.momentum, d.momentum)
                number("\(name).nesterov", r.nesterov, d.nesterov)
                number("\(name).weightDecay", r.weightDecay, d.weightDecay)
            case (.adam(let r), .adam(let d)):
                number("\(name).beta1", r.beta1, d.beta1)
                number("\(name).beta2", r.beta2, d.beta2)
                number("\(name).epsilon", r.epsilon, d.epsilon)
                number("\(name).weightDecay", r.weightDecay, d.weightDecay)
            default:
                preconditionFailure("Optimizer.defaults(named:) returns the same rule")
            }
            number("\(name).warmupSteps", o.warmupSteps, i.warmupSteps)
            number("\(name).cosineDecay", o.cosineDecay, i.cosineDecay)
        }
        number("labeledBatch", labeledBatch, d.labeledBatch)
        number("unlabeledRatio", unlabeledRatio, d.unlabeledRatio)
        add("pseudoLabels", pseudoLabels, d.pseudoLabels, Self.text(pseudoLabels))
        add("pseudoLabelsFrom", pseudoLabelsFrom, d.pseudoLabelsFrom, ".\(pseudoLabelsFrom.rawValue)")
        add("feedback", feedback, d.feedback, ".\(feedback)")
        add("teacherObjective", teacherObjective, d.teacherObjective, ".\(teacherObjective.rawValue)")
        number("teacherGradientParts", teacherGradientParts, d.teacherGradientParts)
        number("uda.temperature", uda.temperature, d.uda.temperature)
        number("uda.threshold", uda.threshold, d.uda.threshold)
        number("uda.weight", uda.weight, d.uda.weight)
        number("uda.rampSteps", uda.rampSteps, d.uda.rampSteps)
        number("labelSmoothing", labelSmoothing, d.labelSmoothing)
        optimizer("teacherOptimizer", teacherOptimizer, d.teacherOptimizer)
        optimizer("studentOptimizer", studentOptimizer, d.studentOptimizer)
        number("studentWaitSteps", studentWaitSteps, d.studentWaitSteps)
        number("steps", steps, d.steps)
        number("finetune.steps", finetune.steps, d.finetune.steps)
        number("finetune.learningRate", finetune.learningRate, d.finetune.learningRate)
        number("finetune.batch", finetune.batch, d.finetune.batch)
        number("finetune.momentum", finetune.momentum, d.finetune.momentum)
        number("emaDecay", emaDecay, d.emaDecay)
        add("teacherInput", teacherInput, d.teacherInput, teacherInput == .image ? ".image" : ".cachedPredictions")
        let initText: String
        switch initialization {
        case .heUniform: initText = ".heUniform"
        case .uniform(let bound): initText = ".uniform(\(bound))"
        }
        add("initialization", initialization, d.initialization, initText)
        number("evalBatch", evalBatch, d.evalBatch)
        number("seed", seed, d.seed)
        return lines
    }

    private static func text(_ labels: PseudoLabels) -> String {
        switch labels {
        case .hardArgmax: return ".hard(.argmax)"
        case .hardSampled: return ".hard(.sampled)"
        case .soft(let temperature): return ".soft(temperature: \(temperature))"
        }
    }
}
