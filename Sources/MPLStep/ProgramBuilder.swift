// Assembles the program of a model: its entry points, state table, and the recipe as header macros.

import MPLIR
import MPLModel

extension StepBuilder {
    /// Every entry point of the generated library, in the order the header declares them.
    public func program(regenerateCommand: String) -> Program {
        Program(
            modelName: model.name, regenerateCommand: regenerateCommand, state: stateTable,
            entryPoints: [mplStep(), supervisedStep(), predict(teacherNetwork: true), predict(teacherNetwork: false)],
            macros: macros)
    }

    /// The model's facts and recipe, as `#define`s the runner reads (docs/ABI.md), ending with MPLC_RECIPE: every
    /// recipe constant as one `key=value;...` string, which the runner stores in checkpoints to compare on --resume:
    /// the recipe macros, then the constants compiled into the step itself (UDA's temperature and threshold, label
    /// smoothing, soft pseudo labels' temperature, the view pseudo labels come from), so that a changed recipe
    /// always shows as a changed key.
    public var macros: [(name: String, value: MacroValue)] {
        let (height, width, channels): (Int, Int, Int)
        switch model.input {
        case .image(let c, let h, let w): (height, width, channels) = (h, w, c)
        case .features(let d): (height, width, channels) = (1, 1, d)
        }
        let facts: [(name: String, value: MacroValue)] = [
            ("MPLC_MODEL_NAME", .string(model.name)),
            ("MPLC_INPUT_HEIGHT", int(height)), ("MPLC_INPUT_WIDTH", int(width)),
            ("MPLC_INPUT_CHANNELS", int(channels)),
            ("MPLC_INPUT_SIZE", int(height * width * channels)),
            ("MPLC_CLASSES", int(model.classes)),
        ]
        let recipe = recipeMacros
        var summary = recipe.map { ($0.name.dropFirst("MPLC_".count).lowercased(), $0.value.text) }
        summary += [
            ("uda_temperature", cDouble(model.recipe.uda.temperature)),
            ("uda_threshold", cDouble(model.recipe.uda.threshold)),
            ("label_smoothing", cDouble(model.recipe.labelSmoothing)),
        ]
        if case .soft(let temperature) = model.recipe.pseudoLabels {
            summary.append(("soft_temperature", cDouble(temperature)))
        }
        // Only when not the default, so that the recipes of runs from before the setting existed stay the same.
        if model.recipe.pseudoLabelsFrom != .strongView {
            summary.append(("pseudo_labels_from", model.recipe.pseudoLabelsFrom.rawValue))
        }
        for (network, optimizer) in [
            ("teacher", model.recipe.teacherOptimizer), ("student", model.recipe.studentOptimizer),
        ] {
            if case .adam(let a) = optimizer.rule {
                summary += [
                    ("\(network)_optimizer", optimizer.name.lowercased()), ("\(network)_beta2", cDouble(a.beta2)),
                    ("\(network)_epsilon", cDouble(a.epsilon)),
                ]
            }
        }
        let text = summary.map { $0.0 + "=" + $0.1 }.joined(separator: ";")
        // How the global batches are split: not part of the recipe (MPLC_RECIPE), which is the same for every rank
        // count; the entry points take the local batches.
        let ranks: [(name: String, value: MacroValue)] = [
            ("MPLC_RANKS", int(self.ranks)),
            ("MPLC_LOCAL_BATCH_LABELED", int(model.recipe.labeledBatch / self.ranks)),
            ("MPLC_LOCAL_BATCH_UNLABELED", int(model.recipe.unlabeledBatch / self.ranks)),
            ("MPLC_LOCAL_FINETUNE_BATCH", int(model.recipe.finetune.batch / self.ranks)),
        ]
        return facts + recipe + ranks + [("MPLC_RECIPE", .string(text))]
    }

    /// The recipe's compile-time constants, in header order.
    private var recipeMacros: [(name: String, value: MacroValue)] {
        let recipe = model.recipe
        var list: [(name: String, value: MacroValue)] = [
            ("MPLC_BATCH_LABELED", int(recipe.labeledBatch)), ("MPLC_BATCH_UNLABELED", int(recipe.unlabeledBatch)),
            ("MPLC_EVAL_BATCH", int(recipe.evalBatch)), ("MPLC_FINETUNE_BATCH", int(recipe.finetune.batch)),
            ("MPLC_STEPS", int(recipe.steps)), ("MPLC_SEED", int(recipe.seed)),
            ("MPLC_STUDENT_WAIT_STEPS", int(recipe.studentWaitSteps)),
        ]
        for (prefix, optimizer) in [
            ("MPLC_TEACHER", recipe.teacherOptimizer), ("MPLC_STUDENT", recipe.studentOptimizer),
        ] {
            // Adam's β1 is its momentum; its β2 and ε are compiled into the step (the MPLC_RECIPE tail names them).
            let (momentum, nesterov, weightDecay): (Double, Bool, Double)
            switch optimizer.rule {
            case .sgd(let s): (momentum, nesterov, weightDecay) = (s.momentum, s.nesterov, s.weightDecay)
            case .adam(let a): (momentum, nesterov, weightDecay) = (a.beta1, false, a.weightDecay)
            }
            list += [
                (prefix + "_LR", double(optimizer.learningRate)), (prefix + "_MOMENTUM", double(momentum)),
                (prefix + "_NESTEROV", int(nesterov ? 1 : 0)), (prefix + "_WEIGHT_DECAY", double(weightDecay)),
                (prefix + "_WARMUP_STEPS", int(optimizer.warmupSteps)),
                (prefix + "_COSINE", int(optimizer.cosineDecay ? 1 : 0)),
            ]
        }
        let (initUniform, initBound): (Int, Double)
        switch recipe.initialization {
        case .heUniform: (initUniform, initBound) = (0, 0)
        case .uniform(let bound): (initUniform, initBound) = (1, bound)
        }
        let pseudo: String
        switch recipe.pseudoLabels {
        case .hardArgmax: pseudo = "hard-argmax"
        case .hardSampled: pseudo = "hard-sampled"
        case .soft: pseudo = "soft"
        }
        list += [
            ("MPLC_UDA_WEIGHT", double(recipe.uda.weight)), ("MPLC_UDA_RAMP_STEPS", int(recipe.uda.rampSteps)),
            ("MPLC_FINETUNE_STEPS", int(recipe.finetune.steps)),
            ("MPLC_FINETUNE_LR", double(recipe.finetune.learningRate)),
            ("MPLC_EMA_DECAY", double(recipe.emaDecay)),
            ("MPLC_INIT_UNIFORM", int(initUniform)), ("MPLC_INIT_BOUND", double(initBound)),
            ("MPLC_PSEUDO_LABELS", .string(pseudo)),
            // The runner's defaults for --feedback and --teacher-objective (docs/RUNNER.md).
            ("MPLC_FEEDBACK", .string(recipe.feedback.commandName)),
            ("MPLC_TEACHER_OBJECTIVE", .string(recipe.teacherObjective.commandName)),
            // Reduced MPL: 1 when the teacher reads cached class distributions (input `teacher_x`), not images.
            ("MPLC_TEACHER_READS_PREDICTIONS", int(recipe.teacherInput == .cachedPredictions ? 1 : 0)),
        ]
        return list
    }
}

private func int(_ x: Int) -> MacroValue { .number(String(x)) }
private func double(_ x: Double) -> MacroValue { .number(cDouble(x)) }

/// A double as a C literal that reads back to the same value on every machine.
func cDouble(_ x: Double) -> String {
    let text = "\(x)"
    return text.contains(".") || text.contains("e") ? text : text + ".0"
}
