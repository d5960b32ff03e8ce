import Foundation
import MPLCompiler
import Testing

/// A model whose arenas exceed the machine's memory, or a batch larger than its data, is rejected before
/// anything is written, built, allocated or trained, with the numbers.
@Suite("Resource limits")
struct ResourceLimitTests {
    /// Two Dense(1,000,000) layers: 10^12 weights, 4 TB of state alone.
    static let hugeModel = """
        let input = Image(channels: 1, height: 28, width: 28)
        let classes = 10
        let net = Sequential {
            Flatten()
            Dense(1_000_000)
            Dense(1_000_000)
            Dense(10)
        }
        let mpl = MPL(teacher: net, student: net) {
            labeledBatch(32)
        }

        """

    @Test("mplc FILE -o DIR: arenas beyond physical memory, exit 1 with the numbers, nothing written")
    func emitRejectsHugeArenas() throws {
        let work = try temporaryDirectory("huge")
        try Self.hugeModel.write(toFile: work + "/huge.swiftdsl", atomically: true, encoding: .utf8)
        let result = try run([mplcBinary, work + "/huge.swiftdsl", "-o", work + "/out"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("error: model huge needs "), "\(result.output)")
        #expect(
            result.output.contains("of arenas, more than the")
                && result.output.contains("of this machine's physical memory"),
            "\(result.output)")
        // Teacher and student, parameters and momenta: 4 x 4 bytes x ~10^12 weights.
        #expect(result.output.contains("state 16012736"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/out"))
    }

    @Test("mplc train: the same check before building or running the trainer")
    func trainRejectsHugeArenas() throws {
        let work = try temporaryDirectory("huge-train")
        try Self.hugeModel.write(toFile: work + "/huge.swiftdsl", atomically: true, encoding: .utf8)
        let result = try run([mplcBinary, "train", work + "/huge.swiftdsl", "--steps", "1"], directory: work)
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("of arenas, more than the"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/.build-mplc"))
    }

    @Test("MPLC_MEMORY_LIMIT replaces physical memory in mplc; the numbers are the model.h arena sizes")
    func memoryLimitOverride() throws {
        let work = try temporaryDirectory("limit")
        let rejected = try run(
            [mplcBinary, exampleMLP, "-o", work + "/small"], environment: ["MPLC_MEMORY_LIMIT": "1000000"])
        #expect(rejected.status == 1, "\(rejected.output)")
        #expect(
            rejected.output.contains("more than the 1000000 bytes (976.6 KiB) of MPLC_MEMORY_LIMIT"),
            "\(rejected.output)")
        let accepted = try run(
            [mplcBinary, exampleMLP, "-o", work + "/ok"], environment: ["MPLC_MEMORY_LIMIT": "100000000"])
        #expect(accepted.status == 0, "\(accepted.output)")
        // The compiler's total is what the runner allocates: the arenas of model.h and the evaluation buffers.
        let model = try Compiler.load(path: exampleMLP).get()
        let arenas = ResourceLimits.arenaBytes(try Compiler.compile(model, regenerateCommand: "x"))
        let header = try String(contentsOfFile: work + "/ok/model.h", encoding: .utf8)
        for (macro, bytes) in [
            ("MPLC_STATE_FLOATS", arenas.state), ("MPLC_STEP_IO_FLOATS", arenas.stepIO),
            ("MPLC_SUPERVISED_IO_FLOATS", arenas.supervisedIO), ("MPLC_SCRATCH_FLOATS", arenas.scratch),
        ] {
            #expect(header.contains("#define \(macro) \(bytes / 4)\n"), "\(macro) != \(bytes / 4)")
        }
        #expect(rejected.output.contains("needs \(arenas.total) bytes"), "\(rejected.output)")
    }

    @Test("mplc-run: arenas beyond MPLC_MEMORY_LIMIT are rejected by train, eval and replay before allocating")
    func runnerRejectsHugeArenas() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let work = try temporaryDirectory("runner-limit")
        let limit = ["MPLC_MEMORY_LIMIT": "1000000"]
        for arguments in [
            ["train", "--data", fashionMNIST, "--out", work + "/run", "--quiet"],
            ["eval", "--checkpoint", work + "/none.safetensors"],
            [
                "replay", "--checkpoint", work + "/none.safetensors", "--batches", work, "--steps", "1",
                "--out", work + "/o.safetensors", "--losses", work + "/l.jsonl",
            ],
        ] {
            let result = try run([runner] + arguments, environment: limit)
            #expect(result.status == 1, "\(arguments[0]): \(result.output)")
            #expect(
                result.output.contains("mplc-run: error: model fashion_mlp needs ")
                    && result.output.contains("more than the 1000000 bytes of MPLC_MEMORY_LIMIT; nothing was allocated"),
                "\(arguments[0]): \(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: work + "/run"))
    }

    @Test(
        "mplc-run: a labeled, finetuning or unlabeled batch larger than its data is rejected before training, with the numbers"
    )
    func batchesLargerThanTheData() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let work = try temporaryDirectory("batches")
        let bl = try modelMacro(runner, "MPLC_BATCH_LABELED")
        let bu = try modelMacro(runner, "MPLC_BATCH_UNLABELED")
        let f = try modelMacro(runner, "MPLC_FINETUNE_BATCH")
        #expect((bl, bu, f) == (32, 128, 256))
        let cases: [([String], String)] = [
            (
                ["--labels", "10"],
                "--labels 10: model fashion_mlp draws 32 labeled examples per step (labeledBatch), more than "
                    + "the 10 labeled examples; use --labels 40 or more"
            ),
            (
                ["--labels", "100"],
                "--labels 100: model fashion_mlp finetunes on 256 labeled examples per step (finetune batch), "
                    + "more than the 100 labeled examples; use --labels 260 or more, or --finetune-steps 0"
            ),
            (
                ["--labels", "100", "--mode", "supervised"],
                "--labels 100: model fashion_mlp trains the supervised baseline on 256 "
                    + "labeled examples per step"
            ),
        ]
        for (flags, message) in cases {
            let result = try run(
                [runner, "train", "--data", data, "--steps", "2", "--out", work + "/run", "--quiet"] + flags)
            #expect(result.status == 1 && result.output.contains(message), "\(flags): \(result.output)")
        }
        // 100 training images cannot fill an unlabeled batch of 128.
        let tiny = work + "/tiny"
        try FileManager.default.createDirectory(atPath: tiny, withIntermediateDirectories: true)
        for (split, n) in [("train", 100), ("test", 20)] {
            try writeNPY(tiny + "/\(split)_x.npy", floats: (0..<n * 784).map { Float($0 % 7) / 7 }, shape: [n, 28, 28])
            try writeNPY(tiny + "/\(split)_y.npy", int64s: (0..<n).map { Int64($0 % 10) }, shape: [n])
        }
        let unlabeled = try run([
            runner, "train", "--data", tiny, "--labels", "50", "--finetune-steps", "0", "--steps", "2",
            "--out", work + "/run", "--quiet",
        ])
        #expect(
            unlabeled.status == 1
                && unlabeled.output.contains(
                    "model fashion_mlp draws 128 unlabeled images per step (labeledBatch x unlabeledRatio), more than the 100 training images"
                ),
            "\(unlabeled.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/run"))
        // The smallest batch-compatible run goes through.
        let ok = try run([
            runner, "train", "--data", data, "--labels", "40", "--finetune-steps", "0", "--steps", "2",
            "--out", work + "/ok", "--quiet",
        ])
        #expect(ok.status == 0, "\(ok.output)")
    }
}
