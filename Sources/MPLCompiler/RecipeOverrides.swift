// Command-line overrides of a recipe, so that ablations need no copies of a model file.

import MPLModel

public enum RecipeOverrides {
    public static func apply(pseudoLabels: String?, feedback: String?, to model: inout Model) throws {
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
        if let feedback {
            switch feedback {
            case "dot-product": model.recipe.feedback = .dotProduct
            case "loss-difference": model.recipe.feedback = .lossDifference
            default:
                throw CompileFailure(
                    "error: --feedback must be dot-product or loss-difference, got '\(feedback)'", exitCode: 2)
            }
        }
    }
}
