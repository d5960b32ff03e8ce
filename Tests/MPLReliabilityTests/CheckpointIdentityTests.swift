import Foundation
import Testing

/// A checkpoint records what its runner was built from (`MPLC_MODEL_HASH`, `MPLC_RECIPE`): `--resume` with a
/// runner built from another recipe is refused, naming the settings that differ, and `--init-from` is the
/// explicit way to start a new run from another recipe's weights (issue 15). With the generated `fashion_mlp`.
@Suite("Checkpoint identity: --resume refuses another recipe, --init-from starts from one")
struct CheckpointIdentityTests {
    /// `Examples/fashion_mlp.swiftdsl` with its text replaced, saved under the same name (so the same model
    /// name) in a directory of its own, and its runner.
    static func variant(_ tag: String, _ replacements: [(String, String)]) throws -> String {
        var text = try String(contentsOfFile: exampleMLP, encoding: .utf8)
        for (old, new) in replacements {
            guard text.contains(old) else { throw TestFailure("fashion_mlp.swiftdsl has no '\(old)'") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        let directory = try temporaryDirectory("variant-\(tag)")
        try text.write(toFile: directory + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
        return try Runners.binary(modelFile: directory + "/fashion_mlp.swiftdsl", flavour: .production)
    }

    /// The reproduction: batch, ratio and teacher learning rate changed in the model file.
    static let changedRecipe = [
        ("labeledBatch(32)", "labeledBatch(64)"), ("unlabeledRatio(4)", "unlabeledRatio(3)"),
        ("teacherOptimizer(SGD(learningRate: 0.05", "teacherOptimizer(SGD(learningRate: 0.1"),
    ]

    static func settings(_ data: String) -> [String] {
        [
            "train", "--data", data, "--steps", "240", "--finetune-steps", "10", "--labels", "1000",
            "--eval-every", "20", "--checkpoint-every", "10", "--threads", "1", "--quiet",
        ]
    }

    @Test("stop a run, change batch, ratio and learning rate, --resume: refused naming those settings")
    func resumeWithChangedRecipe() throws {
        let original = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let changed = try Self.variant("recipe", Self.changedRecipe)
        let data = try SmallData.directory(testImages: 500)
        let work = try temporaryDirectory("identity")
        let first = try run([original] + Self.settings(data) + ["--out", work + "/run", "--stop-at", "20"])
        try #require(first.status == 0, "\(first.output)")
        let checkpoint = work + "/run/checkpoint.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        #expect(try Checkpoint(path: checkpoint).metadata["recipe"]?.contains("batch_labeled=32;") == true)

        let refused = try run([changed, "train", "--data", data, "--resume", "--out", work + "/run", "--quiet"])
        #expect(refused.status == 1, "\(refused.output)")
        for difference in ["batch_labeled 32 -> 64", "batch_unlabeled 128 -> 192", "teacher_lr 0.05 -> 0.1"] {
            #expect(refused.output.contains(difference), "\(refused.output)")
        }
        #expect(refused.output.contains("was trained by a runner built from another model or recipe"))
        #expect(refused.output.contains("--init-from"), "the message should name the way to reuse the weights")
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == before, "a refused resume wrote")

        // The runner it was trained with continues it.
        let resumed = try run([original, "train", "--data", data, "--resume", "--out", work + "/run", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.output)")
    }

    @Test("--init-from: a new run of another recipe from a checkpoint's weights; another architecture is refused")
    func initFrom() throws {
        let original = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let changed = try Self.variant("recipe", Self.changedRecipe)
        let narrower = try Self.variant(
            "narrow",
            [
                (
                    "Dense(256)\n    ReLU()\n    Dense(10)\n}\n\nlet mpl",
                    "Dense(128)\n    ReLU()\n    Dense(10)\n}\n\nlet mpl"
                )
            ])
        let data = try SmallData.directory(testImages: 500)
        let work = try temporaryDirectory("init-from")
        let source = work + "/source/checkpoint.safetensors"
        let trained = try run([original] + Self.settings(data) + ["--out", work + "/source", "--stop-at", "30"])
        try #require(trained.status == 0, "\(trained.output)")

        let finetuned = try run([changed] + Self.settings(data) + ["--init-from", source, "--out", work + "/new"])
        #expect(finetuned.status == 0, "\(finetuned.output)")
        let result = try Checkpoint(path: work + "/new/checkpoint.safetensors")
        #expect(result.metadata["init_from"] == source)
        #expect(result.metadata["recipe"]?.contains("batch_labeled=64;") == true)
        #expect(result.metadata["phase"] == "done" && result.allFinite)

        let mismatched = try run([narrower] + Self.settings(data) + ["--init-from", source, "--out", work + "/narrow"])
        #expect(mismatched.status == 1, "\(mismatched.output)")
        #expect(
            mismatched.output.contains("--init-from: \(source): tensor \"student/")
                && mismatched.output.contains("has shape [784,256], model fashion_mlp expects [784,128]"),
            "\(mismatched.output)")
        #expect(
            !FileManager.default.fileExists(atPath: work + "/narrow"), "a refused --init-from made the run directory")

        let both = try run(
            [changed] + Self.settings(data) + ["--init-from", source, "--resume", "--out", work + "/new"])
        #expect(both.status == 2 && both.output.contains("give one"), "\(both.output)")
    }

    @Test("a flipped bit in a generated model's checkpoint: --resume and eval refuse it")
    func flippedBit() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 500)
        let work = try temporaryDirectory("bitflip")
        let first = try run([runner] + Self.settings(data) + ["--out", work, "--stop-at", "10"])
        try #require(first.status == 0, "\(first.output)")
        let path = work + "/checkpoint.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 4000] ^= 0x04  // a mantissa bit of some tensor in the data section
        try bytes.write(to: URL(fileURLWithPath: path))
        for command in [
            [runner, "train", "--data", data, "--resume", "--out", work, "--quiet"],
            [runner, "eval", "--checkpoint", path, "--data", data],
        ] {
            let refused = try run(command)
            #expect(refused.status == 1, "\(refused.output)")
            #expect(refused.output.contains("\(path): the data does not match its checksum"), "\(refused.output)")
        }
    }
}
