import Foundation
import MPLCompiler
import MPLModel
import MPLTestSupport
import Testing

/// The ablation's axes on compiled steps (docs/RUNNER.md, "Teacher objective and feedback"): with the supervised
/// teacher objective the UDA loss has no effect on the teacher, with the UDA objective it has; feedback off trains
/// exactly as a UDA-only teacher, and the feedback changes it.
@Suite("Teacher objective and feedback on a compiled step")
struct TeacherObjectiveTests {
    /// two_moons_uda's runner with the UDA weight set to `weight`, in full from the first step and for every row
    /// (threshold 0: at initialisation no prediction is confident enough for the file's 0.6).
    func runner(udaWeight weight: Double) throws -> String {
        var model = try Compiler.load(path: repositoryRoot + "/Examples/two_moons_uda.swiftdsl").get()
        (model.recipe.uda.weight, model.recipe.uda.threshold, model.recipe.uda.rampSteps) = (weight, 0, 0)
        return try Runners.build(model, generatedDirectory: try temporaryDirectory("objective-uda\(weight)"))
    }

    func teacher(_ runner: String, _ out: String, _ flags: [String]) throws -> [String: [Float]] {
        let result = try run(
            [
                runner, "train", "--data", "two-moons", "--labels", "6", "--steps", "60", "--finetune-steps", "0",
                "--threads", "1", "--quiet", "--out", out,
            ] + flags)
        #expect(result.status == 0, "\(result.output)")
        return try Checkpoint(path: out + "/checkpoint.safetensors").tensors.filter { $0.key.hasPrefix("teacher/") }
    }

    @Test("supervised objective: the UDA weight changes nothing; uda objective: it changes the teacher")
    func udaLossOnlyWithTheUDAObjective() throws {
        let work = try temporaryDirectory("objective")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (one, four) = (try runner(udaWeight: 1), try runner(udaWeight: 4))
        for feedback in ["off", "dot"] {
            let flags = ["--teacher-objective", "supervised", "--feedback", feedback]
            #expect(
                try teacher(one, work + "/s1" + feedback, flags) == teacher(four, work + "/s4" + feedback, flags),
                "feedback \(feedback)")
        }
        let uda = ["--teacher-objective", "uda", "--feedback", "off"]
        #expect(try teacher(one, work + "/u1", uda) != teacher(four, work + "/u4", uda))
        // Feedback off is the UDA-only teacher (mode uda); the feedback moves the teacher.
        #expect(try teacher(one, work + "/mode-uda", ["--mode", "uda"]) == teacher(one, work + "/u1b", uda))
        #expect(try teacher(one, work + "/dot", ["--feedback", "dot"]) != teacher(one, work + "/u1c", uda))
    }
}

/// `--feedback` on the compiler's side: which values change the compiled step, and the refused combinations.
@Suite("--feedback overrides of the recipe")
struct FeedbackOverrideTests {
    func model(_ pseudoLabels: String?, _ feedback: String?, runtimeOff: Bool = false) throws -> Model {
        var model = try Compiler.load(path: repositoryRoot + "/Examples/two_moons.swiftdsl").get()
        try RecipeOverrides.apply(
            pseudoLabels: pseudoLabels, feedback: feedback, runtimeFeedbackOff: runtimeOff, to: &model)
        return model
    }

    func refusal(_ pseudoLabels: String?, _ feedback: String, soft: Bool = false) -> String {
        do {
            var m = try Compiler.load(path: repositoryRoot + "/Examples/two_moons.swiftdsl").get()
            if soft { m.recipe.pseudoLabels = .soft(temperature: 2) }
            try RecipeOverrides.apply(pseudoLabels: pseudoLabels, feedback: feedback, to: &m)
            return "accepted"
        } catch let failure as CompileFailure {
            return failure.description
        } catch {
            return "\(error)"
        }
    }

    @Test func valuesAndRefusals() throws {
        #expect(try model(nil, "off").recipe.feedback == .off)
        #expect(try model(nil, "off", runtimeOff: true).recipe == model(nil, nil).recipe)
        #expect(try model(nil, "dot").recipe.feedback == .dotProduct)
        #expect(try model(nil, "loss-difference").recipe.feedback == .lossDifference)
        #expect(try model(nil, "soft").recipe.pseudoLabels == .soft(temperature: 1))
        #expect(try model("soft:0.5", "soft").recipe.pseudoLabels == .soft(temperature: 0.5))
        #expect(refusal("hard-argmax", "soft").contains("--feedback soft is the exact meta-gradient"))
        #expect(refusal(nil, "dot", soft: true).contains("has soft pseudo labels; add --pseudo-labels hard-argmax"))
        #expect(refusal("soft", "loss-difference").contains("--pseudo-labels soft is soft"))
        #expect(refusal("hard-argmax", "dot", soft: true) == "accepted")
        #expect(refusal(nil, "bogus").contains("--feedback must be off, dot"))
    }

    @Test("--pseudo-labels-from: either view over the model file's; refused for a teacher of cached predictions")
    func pseudoLabelView() throws {
        func view(_ value: String, _ file: String = "two_moons") throws -> AugmentedView {
            var model = try Compiler.load(path: repositoryRoot + "/Examples/\(file).swiftdsl").get()
            try RecipeOverrides.apply(pseudoLabels: nil, pseudoLabelsFrom: value, feedback: nil, to: &model)
            return model.recipe.pseudoLabelsFrom
        }
        #expect(try view("weak-view") == .weakView)
        #expect(try view("strong-view", "experiments/x_weak_view") == .strongView)
        for (value, file, message) in [
            ("weak", "two_moons", "--pseudo-labels-from must be strong-view or weak-view, got 'weak'"),
            ("weak-view", "fashion_reduced", "model fashion_reduced's teacher reads one cached distribution per image"),
        ] {
            #expect {
                try view(value, file)
            } throws: {
                ($0 as? CompileFailure)?.description.contains(message) == true && ($0 as? CompileFailure)?.exitCode == 2
            }
        }
    }
}
