import Foundation
import Testing

/// NaN or Inf in a loss, in h or in the state stops the run with the step and the quantity, keeps the last
/// good checkpoint and exits 3.
@Suite("Divergence: NaN/Inf stops a generated model's run")
struct DivergenceTests {
    /// fashion_mlp with a teacher learning rate that diverges within a few steps of warmup.
    static func divergingModel(directory: String) throws -> String {
        var source = try String(contentsOfFile: exampleMLP, encoding: .utf8)
        let teacher = source.split(separator: "\n").first { $0.contains("teacherOptimizer(") }.map(String.init) ?? ""
        source = source.replacingOccurrences(
            of: teacher,
            with:
                "    teacherOptimizer(SGD(learningRate: 3e4, momentum: 0.9, nesterov: true, weightDecay: 5e-4, warmupSteps: 3000))"
        )
        let path = directory + "/diverging_mlp.swiftdsl"
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(
        "A huge teacher learning rate: exit 3 naming the step and the quantity; the last checkpoint is finite and one step older"
    )
    func hugeLearningRate() throws {
        let work = try temporaryDirectory("nan")
        let runner = try Runners.binary(modelFile: try Self.divergingModel(directory: work), flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let result = try run([
            runner, "train", "--data", data, "--steps", "3000", "--labels", "1000", "--finetune-steps", "0",
            "--eval-every", "100", "--checkpoint-every", "1", "--out", work + "/run", "--quiet",
        ])
        print(result.output)
        #expect(result.status == 3, "\(result.output)")
        let pattern =
            #/mpl step (\d+): (output (loss_sup|loss_uda|mask_rate|loss_student_u|loss_student_l|h|g_l_norm|g_u_norm|cos_g_l_g_u|h_positive) is (NaN|Inf)|state tensor '[^']+' is not finite)/#
        let match = try #require(result.output.firstMatch(of: pattern), "\(result.output)")
        let step = try #require(Int(match.1))
        #expect(step > 1, "diverged at the first step, so no good checkpoint exists to check")
        let checkpoint = try Checkpoint(path: work + "/run/checkpoint.safetensors")
        #expect(checkpoint.allFinite)
        // Outputs are checked before the step counts and the state before it is saved, and a checkpoint is
        // written after every step: the last good one is the step before.
        let saved = Int(checkpoint.metadata["step"] ?? "") ?? -1
        #expect(saved == step - 1, "checkpoint step \(saved), diverged at \(step)")
        let metrics = try String(contentsOfFile: work + "/run/metrics.jsonl", encoding: .utf8)
        #expect(!metrics.contains("null"), "a non-finite value reached metrics.jsonl")
        #expect(!FileManager.default.fileExists(atPath: work + "/run/summary.json"))
    }
}
