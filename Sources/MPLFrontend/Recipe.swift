import MPLModel
import SwiftSyntax

/// The settings an `MPL(...) { ... }` block may contain, by the name written in the file.
enum SettingName: String, CaseIterable {
    case labeledBatch, unlabeledRatio, pseudoLabels, pseudoLabelsFrom, feedback, teacherObjective, teacherGradientParts
    case uda, labelSmoothing
    case teacherOptimizer, studentOptimizer, studentWaitSteps, steps, finetune, emaDecay
    case initialization, evalBatch, seed, teacherInput
}

/// Bounds that keep products such as labeledBatch × unlabeledRatio far from Int overflow.
enum Limits {
    static let batch = IntegerRange.size
    static let unlabeledRatio = IntegerRange.between(1, 1000)
    /// Adam's ε enters the step as ε² too (docs/STEP.md, step 6), which must stay a normal float (≥ 1.2e-38).
    static let adamEpsilon = RealRange(lower: 1e-18, lowerIncluded: true, upper: nil, upperIncluded: false)
}

/// Reads the settings of the `MPL` block into a Recipe that starts from the paper's defaults.
struct RecipeReader {
    let diagnostics: DiagnosticCollector
    private(set) var recipe = Recipe()
    /// False if a setting was left out because of an error; cross-setting checks are then skipped,
    /// since they would compare against a default the user did not mean.
    private(set) var isComplete = true
    private var firstUse: [SettingName: Syntax] = [:]
    /// Where steps, warm-ups and the student's wait were written, for the cross-setting checks.
    private var written: [String: ExprSyntax] = [:]

    init(diagnostics: DiagnosticCollector) {
        self.diagnostics = diagnostics
    }

    mutating func read(_ block: ClosureExprSyntax) {
        let (statements, blockIsComplete) = block.checkedStatements(diagnostics)
        isComplete = isComplete && blockIsComplete
        for statement in statements where !read(statement) {
            isComplete = false
        }
        if isComplete {
            checkAgainstSteps()
            checkTeacherReadsImages()
        }
    }

    /// Applies one setting; false (after reporting) if it could not be applied.
    private mutating func read(_ expression: ExprSyntax) -> Bool {
        guard let call = Call(expression) else {
            diagnostics.error(
                .unsupported, "expected a setting such as `steps(3000)`; got `\(expression.snippet)`", at: expression)
            return false
        }
        guard let setting = SettingName(rawValue: call.name) else {
            let known = SettingName.allCases.map(\.rawValue)
            let hint =
                closestName(to: call.name, in: known).map { "; did you mean `\($0)`?" }
                ?? "; settings are \(list(known))"
            diagnostics.error(.unknownSetting, "unknown setting `\(call.name)`\(hint)", at: call.nameNode)
            return false
        }
        if let first = firstUse[setting] {
            diagnostics.error(
                .duplicate, "`\(setting.rawValue)` is already set at line \(diagnostics.line(of: first))",
                at: call.nameNode)
            return false
        }
        firstUse[setting] = Syntax(call.syntax)
        let hasBlock = call.rejectBlocks(diagnostics)
        return apply(setting, call) && !hasBlock
    }

    private mutating func apply(_ setting: SettingName, _ call: Call) -> Bool {
        switch setting {
        case .labeledBatch: return assign(\.labeledBatch, single(call) { $0.integer("value", in: Limits.batch) })
        case .unlabeledRatio:
            return assign(\.unlabeledRatio, single(call) { $0.integer("value", in: Limits.unlabeledRatio) })
        case .labelSmoothing: return assign(\.labelSmoothing, single(call) { $0.real("value", in: .fraction) })
        // A decay of 1 would freeze the average at its first value (the runner's --ema-decay agrees); 0 turns it off.
        case .emaDecay: return assign(\.emaDecay, single(call) { $0.real("value", in: .fraction) })
        case .evalBatch: return assign(\.evalBatch, single(call) { $0.integer("value", in: Limits.batch) })
        case .seed: return assign(\.seed, single(call) { $0.integer("value", in: .count) })
        case .steps:
            written["steps"] = call.arguments.first?.expression
            return assign(\.steps, single(call) { $0.integer("value", in: .positive) })
        case .studentWaitSteps:
            written["studentWaitSteps"] = call.arguments.first?.expression
            return assign(\.studentWaitSteps, single(call) { $0.integer("value", in: .count) })
        case .pseudoLabels: return assign(\.pseudoLabels, single(call) { $0["value"].flatMap(pseudoLabels) })
        case .pseudoLabelsFrom:
            return assign(\.pseudoLabelsFrom, single(call) { $0["value"].flatMap(pseudoLabelsFrom) })
        case .feedback: return assign(\.feedback, single(call) { $0["value"].flatMap(feedback) })
        case .teacherObjective:
            return assign(\.teacherObjective, single(call) { $0["value"].flatMap(teacherObjective) })
        case .teacherGradientParts:
            return assign(\.teacherGradientParts, single(call) { $0.boolean("value") })
        case .initialization: return assign(\.initialization, single(call) { $0["value"].flatMap(initialization) })
        case .teacherInput: return assign(\.teacherInput, single(call) { $0["value"].flatMap(teacherInput) })
        case .uda: return assign(\.uda, uda(call))
        case .finetune: return assign(\.finetune, finetune(call))
        case .teacherOptimizer, .studentOptimizer:
            let keyPath = setting == .teacherOptimizer ? \Recipe.teacherOptimizer : \Recipe.studentOptimizer
            let arguments = singleArguments(call)
            guard arguments.isComplete, let value = arguments["value"] else { return false }
            return assign(keyPath, optimizer(value, setting: setting))
        }
    }

    private mutating func assign<Value>(_ keyPath: WritableKeyPath<Recipe, Value>, _ value: Value?) -> Bool {
        guard let value else { return false }
        recipe[keyPath: keyPath] = value
        return true
    }

    // MARK: Settings with one value

    private func singleArguments(_ call: Call) -> Arguments {
        Arguments(
            call.arguments, parameters: [.unlabeled("value")], callee: call.name, at: call.syntax,
            diagnostics: diagnostics)
    }

    /// Reads a setting written with one unlabeled value, such as `steps(3000)`; nil if anything is wrong.
    private func single<Value>(_ call: Call, _ read: (Arguments) -> Value?) -> Value? {
        let arguments = singleArguments(call)
        let value = read(arguments)
        return arguments.isComplete ? value : nil
    }

    private func pseudoLabels(_ expression: ExprSyntax) -> PseudoLabels? {
        let expected = "pseudoLabels must be .hard(.argmax), .hard(.sampled) or .soft(temperature: T)"
        guard let value = CaseValue(expression), let list = value.arguments else {
            diagnostics.error(.wrongType, "\(expected); got `\(expression.snippet)`", at: expression)
            return nil
        }
        switch value.name {
        case "hard":
            let arguments = Arguments(
                list, parameters: [.unlabeled("selection")], callee: ".hard", at: expression, diagnostics: diagnostics)
            guard arguments.isComplete, let selection = arguments["selection"] else { return nil }
            return hardSelection(selection)
        case "soft":
            let arguments = Arguments(
                list, parameters: [.labeled("temperature", required: true)], callee: ".soft",
                subject: "pseudoLabels .soft",
                at: expression, diagnostics: diagnostics)
            let temperature = arguments.real("temperature", in: .positive)
            guard arguments.isComplete, let temperature else { return nil }
            return .soft(temperature: temperature)
        default:
            diagnostics.error(.wrongType, "\(expected); got `\(expression.snippet)`", at: expression)
            return nil
        }
    }

    private func hardSelection(_ expression: ExprSyntax) -> PseudoLabels? {
        switch CaseValue(expression).flatMap({ $0.arguments == nil ? $0.name : nil }) {
        case "argmax": return .hardArgmax
        case "sampled": return .hardSampled
        default:
            diagnostics.error(
                .wrongType, "pseudoLabels .hard must be .argmax or .sampled; got `\(expression.snippet)`",
                at: expression)
            return nil
        }
    }

    private func pseudoLabelsFrom(_ expression: ExprSyntax) -> AugmentedView? {
        let name = CaseValue(expression).flatMap { $0.arguments == nil ? $0.name : nil }
        guard let view = name.flatMap(AugmentedView.init(rawValue:)) else {
            diagnostics.error(
                .wrongType, "pseudoLabelsFrom must be .strongView or .weakView; got `\(expression.snippet)`",
                at: expression)
            return nil
        }
        return view
    }

    private func teacherInput(_ expression: ExprSyntax) -> TeacherInput? {
        switch CaseValue(expression).flatMap({ $0.arguments == nil ? $0.name : nil }) {
        case "image": return .image
        case "cachedPredictions": return .cachedPredictions
        default:
            diagnostics.error(
                .wrongType, "teacherInput must be .image or .cachedPredictions; got `\(expression.snippet)`",
                at: expression)
            return nil
        }
    }

    private func feedback(_ expression: ExprSyntax) -> Feedback? {
        switch CaseValue(expression).flatMap({ $0.arguments == nil ? $0.name : nil }) {
        case "off": return .off
        case "dotProduct": return .dotProduct
        case "lossDifference": return .lossDifference
        default:
            diagnostics.error(
                .wrongType, "feedback must be .off, .dotProduct or .lossDifference; got `\(expression.snippet)`",
                at: expression)
            return nil
        }
    }

    private func teacherObjective(_ expression: ExprSyntax) -> TeacherObjective? {
        let name = CaseValue(expression).flatMap { $0.arguments == nil ? $0.name : nil }
        guard let objective = name.flatMap(TeacherObjective.init(rawValue:)) else {
            diagnostics.error(
                .wrongType,
                "teacherObjective must be .supervised, .randAugment or .uda; got `\(expression.snippet)`",
                at: expression)
            return nil
        }
        return objective
    }

    private func initialization(_ expression: ExprSyntax) -> Initialization? {
        let value = CaseValue(expression)
        switch (value?.name, value?.arguments) {
        case ("heUniform", nil):
            return .heUniform
        case ("uniform", let list?):
            let arguments = Arguments(
                list, parameters: [.unlabeled("bound")], callee: ".uniform", subject: "initialization .uniform",
                at: expression, diagnostics: diagnostics)
            let bound = arguments.real("bound", in: .positive)
            guard arguments.isComplete, let bound else { return nil }
            return .uniform(bound)
        default:
            diagnostics.error(
                .wrongType, "initialization must be .heUniform or .uniform(a); got `\(expression.snippet)`",
                at: expression)
            return nil
        }
    }

    // MARK: Settings with labeled arguments; a partial list overrides only what it names

    private func uda(_ call: Call) -> UDASettings? {
        let arguments = Arguments(
            call.arguments,
            parameters: [.labeled("temperature"), .labeled("threshold"), .labeled("weight"), .labeled("rampSteps")],
            callee: "uda", at: call.syntax, diagnostics: diagnostics)
        var uda = UDASettings()
        let temperature = arguments.real("temperature", in: .positive, default: uda.temperature)
        let threshold = arguments.real("threshold", in: .probability, default: uda.threshold)
        let weight = arguments.real("weight", in: .nonNegative, default: uda.weight)
        let rampSteps = arguments.integer("rampSteps", in: .count, default: uda.rampSteps)
        guard arguments.isComplete, let temperature, let threshold, let weight, let rampSteps else { return nil }
        uda.temperature = temperature
        uda.threshold = threshold
        uda.weight = weight
        uda.rampSteps = rampSteps
        return uda
    }

    private func finetune(_ call: Call) -> Finetune? {
        let arguments = Arguments(
            call.arguments,
            parameters: [.labeled("steps"), .labeled("learningRate"), .labeled("batch"), .labeled("momentum")],
            callee: "finetune", at: call.syntax, diagnostics: diagnostics)
        var finetune = Finetune()
        let steps = arguments.integer("steps", in: .count, default: finetune.steps)
        let learningRate = arguments.real("learningRate", in: .positive, default: finetune.learningRate)
        let batch = arguments.integer("batch", in: Limits.batch, default: finetune.batch)
        let momentum = arguments.real("momentum", in: .fraction, default: finetune.momentum)
        guard arguments.isComplete, let steps, let learningRate, let batch, let momentum else { return nil }
        finetune.steps = steps
        finetune.learningRate = learningRate
        finetune.batch = batch
        finetune.momentum = momentum
        return finetune
    }

    /// `SGD(...)`, `Adam(...)` or `AdamW(...)`; a partial argument list overrides only what it names.
    private mutating func optimizer(_ expression: ExprSyntax, setting: SettingName) -> Optimizer? {
        guard let call = Call(expression), let initial = Optimizer.defaults(named: call.name) else {
            diagnostics.error(
                .wrongType,
                "\(setting.rawValue) must be SGD(...), Adam(...) or AdamW(...); got `\(expression.snippet)`",
                at: expression)
            return nil
        }
        let hasBlock = call.rejectBlocks(diagnostics)
        let ruleParameters: [String]
        switch initial.rule {
        case .sgd: ruleParameters = ["momentum", "nesterov", "weightDecay"]
        case .adam: ruleParameters = ["beta1", "beta2", "epsilon", "weightDecay"]
        }
        let arguments = Arguments(
            call.arguments,
            parameters: (["learningRate"] + ruleParameters + ["warmupSteps", "cosineDecay"]).map { .labeled($0) },
            callee: call.name, subject: setting.rawValue, at: call.syntax, diagnostics: diagnostics)
        written["\(setting.rawValue).warmupSteps"] = arguments["warmupSteps"]
        var optimizer = initial
        let learningRate = arguments.real("learningRate", in: .positive, default: optimizer.learningRate)
        let warmupSteps = arguments.integer("warmupSteps", in: .count, default: optimizer.warmupSteps)
        let cosineDecay = arguments.boolean("cosineDecay", default: optimizer.cosineDecay)
        let rule: UpdateRule?
        switch initial.rule {
        case .sgd(var sgd):
            let momentum = arguments.real("momentum", in: .fraction, default: sgd.momentum)
            let nesterov = arguments.boolean("nesterov", default: sgd.nesterov)
            let weightDecay = arguments.real("weightDecay", in: .nonNegative, default: sgd.weightDecay)
            if let momentum, let nesterov, let weightDecay {
                (sgd.momentum, sgd.nesterov, sgd.weightDecay) = (momentum, nesterov, weightDecay)
                rule = .sgd(sgd)
            } else {
                rule = nil
            }
        case .adam(var adam):
            let beta1 = arguments.real("beta1", in: .fraction, default: adam.beta1)
            let beta2 = arguments.real("beta2", in: .fraction, default: adam.beta2)
            let epsilon = arguments.real("epsilon", in: Limits.adamEpsilon, default: adam.epsilon)
            let weightDecay = arguments.real("weightDecay", in: .nonNegative, default: adam.weightDecay)
            if let beta1, let beta2, let epsilon, let weightDecay {
                (adam.beta1, adam.beta2, adam.epsilon, adam.weightDecay) = (beta1, beta2, epsilon, weightDecay)
                rule = .adam(adam)
            } else {
                rule = nil
            }
        }
        guard !hasBlock, arguments.isComplete, let learningRate, let warmupSteps, let cosineDecay, let rule
        else { return nil }
        optimizer.learningRate = learningRate
        optimizer.warmupSteps = warmupSteps
        optimizer.cosineDecay = cosineDecay
        optimizer.rule = rule
        return optimizer
    }

    // MARK: Checks across settings

    /// Reduced MPL's teacher reads one cached distribution per image: there is no strongly or weakly augmented view
    /// of it.
    private func checkTeacherReadsImages() {
        guard recipe.teacherInput == .cachedPredictions else { return }
        let cached =
            "with teacherInput(.cachedPredictions) it reads one cached distribution per image, which has no "
        if recipe.teacherObjective == .randAugment, let written = firstUse[.teacherObjective] {
            diagnostics.error(
                .wrongType,
                "teacherObjective(.randAugment) needs a teacher that reads images; \(cached)strongly augmented view",
                at: written)
        }
        if recipe.pseudoLabelsFrom == .weakView, let written = firstUse[.pseudoLabelsFrom] {
            diagnostics.error(
                .wrongType,
                "pseudoLabelsFrom(.weakView) needs a teacher that reads images; \(cached)weakly augmented view",
                at: written)
        }
    }

    /// Warm-ups must fit in training and the student must start before the end. A conflict is
    /// reported at the warm-up or wait if it was written, else at `steps(...)`, and says which
    /// value is a default.
    private func checkAgainstSteps() {
        let steps = recipe.steps
        let optimizers: [(SettingName, Int)] = [
            (.teacherOptimizer, recipe.teacherOptimizer.warmupSteps),
            (.studentOptimizer, recipe.studentOptimizer.warmupSteps),
        ]
        for (setting, warmup) in optimizers where warmup > steps {
            report(
                "\(setting.rawValue) warmupSteps", warmup, writtenAt: written["\(setting.rawValue).warmupSteps"],
                mustBe: "at most steps (\(steps))")
        }
        if recipe.studentWaitSteps >= steps {
            report(
                "studentWaitSteps", recipe.studentWaitSteps, writtenAt: written["studentWaitSteps"],
                mustBe: "less than steps (\(steps))")
        }
    }

    private func report(_ subject: String, _ value: Int, writtenAt node: ExprSyntax?, mustBe bound: String) {
        if let node {
            diagnostics.error(.outOfRange, "\(subject) must be \(bound); got \(value)", at: node)
        } else if let stepsNode = written["steps"] {
            diagnostics.error(.outOfRange, "\(subject) must be \(bound); got \(value), its default", at: stepsNode)
        }
    }
}
