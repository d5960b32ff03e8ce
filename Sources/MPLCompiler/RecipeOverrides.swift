// Command-line overrides of a recipe, so that ablations need no copies of a model file.

import MPLModel

public enum RecipeOverrides {
    /// The values of `--feedback` (docs/RUNNER.md, "Teacher objective and feedback"). `dot` and `loss-difference`
    /// need hard pseudo labels; `soft` is the exact meta-gradient of soft pseudo labels.
    public static let feedbackValues = "off, dot (or dot-product), loss-difference or soft"

    /// The values of `--pseudo-labels-from`, the recipe's `pseudoLabelsFrom` cases spelled as on a command line.
    public static let viewValues: [(text: String, view: AugmentedView)] = [
        ("strong-view", .strongView), ("weak-view", .weakView),
    ]

    /// Applies `--pseudo-labels`, `--pseudo-labels-from` and `--feedback` to the recipe. `runtimeFeedbackOff`:
    /// `--feedback off` is left to the runner (mplc train passes it on, so one compiled trainer serves both columns
    /// of the ablation); otherwise it becomes the recipe's `feedback(.off)`, the trainer's default.
    public static func apply(
        pseudoLabels: String?, pseudoLabelsFrom: String? = nil, feedback: String?, runtimeFeedbackOff: Bool = false,
        to model: inout Model
    ) throws {
        if let pseudoLabelsFrom {
            guard let view = viewValues.first(where: { $0.text == pseudoLabelsFrom })?.view else {
                throw CompileFailure(
                    "error: --pseudo-labels-from must be strong-view or weak-view, got '\(pseudoLabelsFrom)'",
                    exitCode: 2)
            }
            // As the front end refuses `pseudoLabelsFrom(.weakView)` beside `teacherInput(.cachedPredictions)`.
            if view == .weakView, model.recipe.teacherInput == .cachedPredictions {
                throw CompileFailure(
                    "error: --pseudo-labels-from weak-view needs a teacher that reads images; model \(model.name)'s "
                        + "teacher reads one cached distribution per image (teacherInput(.cachedPredictions)), which "
                        + "has no weakly augmented view", exitCode: 2)
            }
            model.recipe.pseudoLabelsFrom = view
        }
        if let pseudoLabels {
            switch pseudoLabels {
            case "hard-argmax": model.recipe.pseudoLabels = .hardArgmax
            case "hard-sampled": model.recipe.pseudoLabels = .hardSampled
            case "soft": model.recipe.pseudoLabels = .soft(temperature: 1)
            case let text where text.hasPrefix("soft:"):
                guard let t = Double(text.dropFirst(5)), t > 0, t.isFinite else {
                    throw CompileFailure(
                        "error: --pseudo-labels soft:T needs a positive temperature, got '\(text)'", exitCode: 2)
                }
                model.recipe.pseudoLabels = .soft(temperature: t)
            default:
                throw CompileFailure(
                    "error: --pseudo-labels must be hard-argmax, hard-sampled, soft or soft:T, got '\(pseudoLabels)'",
                    exitCode: 2)
            }
        }
        guard let feedback else { return }
        let soft: Bool
        if case .soft = model.recipe.pseudoLabels { soft = true } else { soft = false }
        switch feedback {
        case "off":
            if !runtimeFeedbackOff { model.recipe.feedback = .off }
        case "dot", "dot-product", "loss-difference":
            // With soft pseudo labels the step descends the exact meta-gradient: these rules do not exist there.
            guard !soft else {
                let cause =
                    pseudoLabels == nil
                    ? "model \(model.name) has soft pseudo labels; add --pseudo-labels hard-argmax"
                    : "--pseudo-labels \(pseudoLabels!) is soft"
                throw CompileFailure(
                    "error: --feedback \(feedback) needs hard pseudo labels, but \(cause) (or use --feedback soft, "
                        + "the exact meta-gradient)", exitCode: 2)
            }
            model.recipe.feedback = feedback == "loss-difference" ? .lossDifference : .dotProduct
        case "soft":
            guard pseudoLabels == nil || soft else {
                throw CompileFailure(
                    "error: --feedback soft is the exact meta-gradient of soft pseudo labels; --pseudo-labels "
                        + "\(pseudoLabels!) is hard (give soft or soft:T, or leave it out)", exitCode: 2)
            }
            if !soft { model.recipe.pseudoLabels = .soft(temperature: 1) }
            if model.recipe.feedback == .off { model.recipe.feedback = .dotProduct }
        default:
            throw CompileFailure(
                "error: --feedback must be \(feedbackValues), got '\(feedback)'", exitCode: 2)
        }
    }
}
