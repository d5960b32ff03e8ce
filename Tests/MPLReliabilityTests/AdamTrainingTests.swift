import Foundation
import Testing

/// Adam and AdamW end to end: `mplc train` compiles Examples/two_moons_adam.swiftdsl (Adam teacher, AdamW
/// student), builds its trainer and runs it; the optimiser's state reaches the checkpoint through the ABI alone.
@Suite("Adam through mplc train")
struct AdamTrainingTests {
    @Test("Two moons with Adam and AdamW: losses fall, accuracy far above chance, Adam's state in the checkpoint")
    func twoMoonsTrains() throws {
        let work = try temporaryDirectory("adam")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let result = try run(
            [
                mplcBinary, "train", repositoryRoot + "/Examples/two_moons_adam.swiftdsl", "--data", "two-moons",
                "--labels", "6", "--steps", "300", "--finetune-steps", "50", "--threads", "1", "--out", work + "/run",
                "--quiet",
            ], directory: work)
        #expect(result.status == 0, "\(result.output)")

        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/run/summary.json")))
                as? [String: Any])
        let accuracy = try #require(summary["test_accuracy"] as? [String: Double])
        // Two balanced classes: chance is 50%. 300 steps from 6 labels reach about 85% (SGD at lr 0.1: ~50%).
        for key in ["teacher_before_finetune", "student_before_finetune", "student_after_finetune"] {
            #expect((accuracy[key] ?? 0) > 0.75, "\(key): \(accuracy)")
        }

        let lines = try String(contentsOfFile: work + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let losses = lines.compactMap { line -> Double? in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["loss_student_l"] as? Double
        }
        let first = try #require(losses.first)
        let last = try #require(losses.last)
        #expect(losses.count > 5 && last < 0.5 * first, "loss_student_l \(losses)")

        let checkpoint = try Checkpoint(path: work + "/run/checkpoint.safetensors")
        #expect(checkpoint.allFinite)
        for name in [
            "teacher_momentum/m/dense0/weight", "student_momentum/v/dense4/bias", "student_momentum/m_correction",
        ] {
            #expect(checkpoint.tensors[name] != nil, "\(name) not in \(checkpoint.tensors.keys.sorted())")
        }
        // The teacher's 1 − β1^t after 300 steps; finetuning reset the student's and counted 50 steps again.
        let teacherCorrection = try #require(checkpoint.tensors["teacher_momentum/m_correction"]?.first)
        let studentCorrection = try #require(checkpoint.tensors["student_momentum/m_correction"]?.first)
        #expect(abs(Double(teacherCorrection) - (1 - pow(0.9, 300))) < 1e-5)
        #expect(abs(Double(studentCorrection) - (1 - pow(0.9, 50))) < 1e-5)
    }

    @Test(
        "A run stopped mid-way and resumed ends byte for byte like the uninterrupted run (Adam's state is checkpointed)"
    )
    func resumeIsIdentical() throws {
        let runner = try Runners.binary(
            modelFile: repositoryRoot + "/Examples/two_moons_adam.swiftdsl", flavour: .production)
        let work = try temporaryDirectory("adam-resume")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let settings = [
            runner, "train", "--data", "two-moons", "--labels", "6", "--steps", "300", "--finetune-steps", "20",
            "--threads", "1", "--quiet",
        ]
        #expect(try run(settings + ["--out", work + "/whole"]).status == 0)
        #expect(try run(settings + ["--out", work + "/split", "--stop-at", "150"]).status == 0)
        let resumed = try run(settings + ["--out", work + "/split", "--resume"])
        #expect(resumed.status == 0, "\(resumed.output)")
        let whole = try Checkpoint(path: work + "/whole/checkpoint.safetensors")
        let split = try Checkpoint(path: work + "/split/checkpoint.safetensors")
        #expect(whole.tensors.keys.contains("student_momentum/v/dense0/weight"))
        #expect(whole.tensors == split.tensors)
    }
}
