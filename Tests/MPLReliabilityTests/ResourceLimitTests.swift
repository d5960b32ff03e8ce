import Foundation
import MPLCompiler
import Testing

/// A model whose arenas exceed the machine's memory, or a batch larger than its data, is rejected before
/// anything is written, built, allocated or trained, with the numbers.
@Suite("Resource limits")
struct ResourceLimitTests {
    /// Sixteen Dense(65,024) layers, each tensor below the front end's 2^32 elements: 6.3·10^10 weights per
    /// network, about 1 TB of state (teacher and student, parameters and momenta).
    static let hugeModel = """
        let input = Image(channels: 1, height: 28, width: 28)
        let classes = 10
        let net = Sequential {
            Flatten()
        \(String(repeating: "    Dense(65_024)\n", count: 16))    Dense(10)
        }
        let mpl = MPL(teacher: net, student: net) {
            labeledBatch(32)
        }

        """

    /// The state arena of `hugeModel` in bytes: 4 copies (teacher, student, their momenta) of every tensor,
    /// each rounded up to 16 floats.
    static let hugeStateBytes: Int = {
        func aligned(_ n: Int) -> Int { (n + 15) / 16 * 16 }
        let perNetwork =
            aligned(784 * 65_024) + aligned(65_024) + 15 * (aligned(65_024 * 65_024) + aligned(65_024))
            + aligned(65_024 * 10) + aligned(10)
        return 4 * 4 * perNetwork
    }()

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
        #expect(result.output.contains("error: model huge needs at least "), "\(result.output)")
        #expect(result.output.contains("state \(Self.hugeStateBytes), "), "\(result.output)")
        #expect(result.seconds < 10, "refused before lowering, in \(result.seconds) s")
        #expect(!FileManager.default.fileExists(atPath: work + "/out"))
    }

    /// The issue's model. Before, `mplc check` accepted it and `mplc` died of an overflow trap in lowering
    /// (KernelPasses.swift, worthSplitting).
    @Test("Image(1, 10^6, 10^6) with Dense(10^6): mplc check and mplc end with E006, exit 1, no trap")
    func issueModelIsADiagnostic() throws {
        let work = try temporaryDirectory("issue-model")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try """
        let input = Image(channels: 1, height: 1000000, width: 1000000)
        let classes = 10
        let net = Sequential {
            Flatten()
            Dense(1000000)
            Dense(10)
        }
        let mpl = MPL(teacher: net, student: net) {
            labeledBatch(32)
        }

        """.write(toFile: work + "/wide.swiftdsl", atomically: true, encoding: .utf8)
        for arguments in [["check", work + "/wide.swiftdsl"], [work + "/wide.swiftdsl", "-o", work + "/out"]] {
            let result = try run([mplcBinary] + arguments)
            #expect(result.status == 1 && !result.signaled, "\(arguments): \(result.output)")
            #expect(
                result.output.contains(
                    "wide.swiftdsl:1:13: error: Image has 1000000 × 1000000 × 1 = 1000000000000 values per image, more than "
                        + "the 4294967296 (2^32) one tensor may hold [E006]"), "\(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: work + "/out"))
    }

    /// Each tensor below 2^32 per example, but a batch of 2·10^9 images: a tensor of 3.4·10^16 floats.
    @Test("A tensor beyond 2^44 elements is refused before lowering whatever MPLC_MEMORY_LIMIT says")
    func tensorsBeyond64BitSafeSizes() throws {
        let work = try temporaryDirectory("huge-batch")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try """
        let input = Image(channels: 1, height: 4096, width: 4096)
        let classes = 10
        let net = Sequential {
            GlobalAvgPool()
            Dense(10)
        }
        let mpl = MPL(teacher: net, student: net) {
            labeledBatch(1_000_000)
            unlabeledRatio(1000)
        }

        """.write(toFile: work + "/batch.swiftdsl", atomically: true, encoding: .utf8)
        let result = try run(
            [mplcBinary, work + "/batch.swiftdsl", "-o", work + "/out"],
            environment: ["MPLC_MEMORY_LIMIT": "9000000000000000000"])
        #expect(result.status == 1 && !result.signaled, "\(result.output)")
        #expect(
            result.output.contains(
                "error: model batch needs a tensor [2001000000,4096,4096,1] of 33571209216000000 elements in mplc_step, "
                    + "more than the 17592186044416 (2^44) one tensor may have on any machine"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/out"))
    }

    @Test("The estimate before lowering is a lower bound of the exact arenas, for every example")
    func estimateIsALowerBound() throws {
        // WRN-28-2 (and its benchmark copy) are left out: 10 s each to lower in a debug build.
        let examples = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/Examples")
            .filter { $0.hasSuffix(".swiftdsl") && !$0.hasSuffix("wrn_28_2.swiftdsl") }
        #expect(examples.count >= 8)
        for file in examples {
            let model = try Compiler.load(path: repositoryRoot + "/Examples/" + file).get()
            let compiled = try Compiler.compile(model, regenerateCommand: "x")
            let exact = ResourceLimits.arenaBytes(compiled)
            let estimate = ResourceLimits.estimate(compiled.program, model: model)
            #expect(
                estimate.state == exact.state && estimate.stepIO == exact.stepIO
                    && estimate.supervisedIO == exact.supervisedIO && estimate.evaluation == exact.evaluation
                    && estimate.ema == exact.ema, "\(file): \(estimate) against \(exact)")
            #expect(0 < estimate.scratch && estimate.scratch <= exact.scratch, "\(file): \(estimate) against \(exact)")
        }
    }

    /// Before, `mplc check /dev/zero` grew to 4 GB and aborted, and a 50 MB file took 105 s.
    @Test("Model files beyond 1 MiB: /dev/zero and a 50 MB file end at once with E013 naming the file")
    func modelFilesHaveASizeCap() throws {
        let work = try temporaryDirectory("big-file")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let big = work + "/big.swiftdsl"
        let line = Data("// a comment line of a model file that never ends, padded to sixty-four bytes.\n".utf8)
        var data = Data(capacity: 50_000_000)
        while data.count < 50_000_000 { data.append(line) }
        try data.write(to: URL(fileURLWithPath: big))
        for path in ["/dev/zero", big] {
            let result = try run([mplcBinary, "check", path])
            #expect(result.status == 1 && !result.signaled, "\(path): \(result.output)")
            #expect(
                result.output.contains(
                    "\(path):1:1: error: cannot read the model file: it is larger than 1 MiB (1048576 bytes), the most a "
                        + "model file may have [E013]"), "\(path): \(result.output)")
            #expect(result.seconds < 10, "\(path): \(result.seconds) s")
        }
        // A FIFO with no writer: opening it used to block `mplc` for ever (`timeout` ends such a hang with 124).
        let fifo = work + "/fifo.swiftdsl"
        #expect(mkfifo(fifo, 0o600) == 0)
        let piped = try run(["timeout", "20", mplcBinary, "check", fifo])
        #expect(piped.status == 1 && !piped.signaled, "\(piped.output)")
        #expect(
            piped.output.contains(
                "\(fifo):1:1: error: cannot read the model file: it is a pipe or a socket, not a file [E013]"),
            "\(piped.output)")
        // At the cap itself a file is read and checked.
        let atCap = work + "/at_cap.swiftdsl"
        var padded = Data(try String(contentsOfFile: exampleMLP, encoding: .utf8).utf8)
        padded.append(Data(repeating: UInt8(ascii: "\n"), count: 1_048_576 - padded.count))
        try padded.write(to: URL(fileURLWithPath: atCap))
        let accepted = try run([mplcBinary, "check", atCap])
        #expect(accepted.status == 0, "\(accepted.output)")
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
        // 1,000,000 bytes is below the estimate before lowering; a limit between the estimate and the exact
        // total passes that check and is refused by the exact one, with the exact numbers.
        let compiled = try Compiler.compile(model, regenerateCommand: "x")
        let estimate = ResourceLimits.estimate(compiled.program, model: model)
        #expect(rejected.output.contains("needs at least \(estimate.total) bytes"), "\(rejected.output)")
        try #require(estimate.total < arenas.total)
        let exact = try run(
            [mplcBinary, exampleMLP, "-o", work + "/between"], environment: ["MPLC_MEMORY_LIMIT": "\(estimate.total)"])
        #expect(
            exact.status == 1 && exact.output.contains("error: model fashion_mlp needs \(arenas.total) bytes"),
            "\(exact.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/between"))
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
                [runner, "train", "--data", data, "--steps", "201", "--out", work + "/run", "--quiet"] + flags)
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
            runner, "train", "--data", tiny, "--labels", "50", "--finetune-steps", "0", "--steps", "201",
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
            runner, "train", "--data", data, "--labels", "40", "--finetune-steps", "0", "--steps", "201",
            "--out", work + "/ok", "--quiet",
        ])
        #expect(ok.status == 0, "\(ok.output)")
    }
}
