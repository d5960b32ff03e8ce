import Foundation
import Testing

/// The generated C and the runner under AddressSanitizer and UndefinedBehaviorSanitizer: any report aborts
/// the program (-fno-sanitize-recover=all) with a distinctive exit code, and the output is searched for reports.
@Suite("Sanitizers: generated C and the runner")
struct SanitizerTests {
    @Test("fashion_mlp under ASan+UBSan: train (stopped and resumed), replay and eval on Fashion-MNIST, no report")
    func mlp() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .sanitized)
        let work = try temporaryDirectory("asan-mlp")
        let train = [
            "train", "--data", fashionMNIST, "--steps", "210", "--labels", "300", "--finetune-steps", "4",
            "--eval-every", "105", "--checkpoint-every", "10", "--out", work + "/run", "--quiet",
        ]
        let first = try run([runner] + train + ["--stop-at", "20"], environment: sanitizerEnvironment)
        #expect(first.status == 0 && sanitizerReports(first.output).isEmpty, "\(first.output)")
        let resumed = try run(
            [runner, "train", "--data", fashionMNIST, "--resume", "--out", work + "/run", "--quiet"],
            environment: sanitizerEnvironment)
        #expect(resumed.status == 0 && sanitizerReports(resumed.output).isEmpty, "\(resumed.output)")
        #expect(
            resumed.output.contains("fashion_mlp mpl seed 0, 300 labels, 210 steps + 4 finetune"), "\(resumed.output)")

        // Replay two steps of real images (the first test images, normalised as the runner does).
        let bl = try modelMacro(runner, "MPLC_BATCH_LABELED")
        let bu = try modelMacro(runner, "MPLC_BATCH_UNLABELED")
        let images = try FashionMNIST.bytes("t10k-images-idx3-ubyte")
        let labels = try FashionMNIST.bytes("t10k-labels-idx1-ubyte")
        let rows = bl + 2 * bu
        for step in 0..<2 {
            let directory = work + "/batches/step_" + String(format: "%06d", step)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let first = step * rows
            let x = (0..<rows * 784).map { Float((Double(images[16 + first * 784 + $0]) / 255 - 0.2860) / 0.3530) }
            try writeNPY(directory + "/x.npy", floats: x, shape: [rows, 28, 28, 1])
            try writeNPY(directory + "/y.npy", int64s: (0..<bl).map { Int64(labels[8 + first + $0]) }, shape: [bl])
            try writeNPY(directory + "/scalars.npy", floats: [0.05, 0.05, 1, 1], shape: [4])
        }
        let replay = try run(
            [
                runner, "replay", "--checkpoint", work + "/run/checkpoint.safetensors", "--batches", work + "/batches",
                "--steps", "2", "--out", work + "/replayed.safetensors", "--losses", work + "/losses.jsonl",
            ],
            environment: sanitizerEnvironment)
        #expect(replay.status == 0 && sanitizerReports(replay.output).isEmpty, "\(replay.output)")
        let losses = (try? String(contentsOfFile: work + "/losses.jsonl", encoding: .utf8)) ?? ""
        #expect(losses.split(separator: "\n").count == 2 && !losses.contains("null"), "\(losses)")

        let eval = try run(
            [runner, "eval", "--checkpoint", work + "/run/checkpoint.safetensors", "--data", fashionMNIST],
            environment: sanitizerEnvironment)
        #expect(eval.status == 0 && sanitizerReports(eval.output).isEmpty, "\(eval.output)")
        #expect(eval.output.contains("\"test_examples\":10000"), "\(eval.output)")
    }

    @Test("fashion_cnn under ASan+UBSan: a few steps, finetuning and eval on 500 test images, no report")
    func cnn() throws {
        // A few steps in which both networks learn: the recipe's wait and warm-ups shortened to 2 steps (a
        // shorter --steps than they is refused, issue 17).
        let work = try temporaryDirectory("asan-cnn")
        var source = try String(contentsOfFile: exampleCNN, encoding: .utf8)
        for (old, new) in [("studentWaitSteps(200)", "studentWaitSteps(2)"), ("warmupSteps: 100", "warmupSteps: 2")] {
            guard source.contains(old) else { throw TestFailure("fashion_cnn.swiftdsl has no '\(old)'") }
            source = source.replacingOccurrences(of: old, with: new)
        }
        try source.write(toFile: work + "/fashion_cnn.swiftdsl", atomically: true, encoding: .utf8)
        let runner = try Runners.binary(modelFile: work + "/fashion_cnn.swiftdsl", flavour: .sanitized)
        let data = try SmallData.directory(testImages: 500)
        let train = try run(
            [
                runner, "train", "--data", data, "--steps", "4", "--labels", "300", "--finetune-steps", "2",
                "--eval-every", "4", "--out", work + "/run", "--quiet",
            ], environment: sanitizerEnvironment)
        #expect(train.status == 0 && sanitizerReports(train.output).isEmpty, "\(train.output)")
        let eval = try run(
            [runner, "eval", "--checkpoint", work + "/run/checkpoint.safetensors", "--data", data],
            environment: sanitizerEnvironment)
        #expect(eval.status == 0 && sanitizerReports(eval.output).isEmpty, "\(eval.output)")
    }

    @Test(
        "The C runner's suite (Tests/runner/run_tests.sh) with -fsanitize=address,undefined: all pass, no report",
        arguments: ["1", "2"])
    func runnerSuite(part: String) throws {
        // The suite's only run in CI: a run without the sanitizers would check nothing more. The checks that a
        // sanitized build cannot make (an address-space cap, Reduced MPL's training runs) use builds without them
        // (run_tests.sh's header).
        // test_runner's helper commands (st-meta, st-equal...) exit without freeing what they read; that is the
        // test tool, not the runner, so its leaks are suppressed by module name. mplc-run is checked for leaks.
        let suppressions = try temporaryDirectory("lsan") + "/test_runner.supp"
        try "leak:test_runner\n".write(toFile: suppressions, atomically: true, encoding: .utf8)
        var environment = sanitizerEnvironment
        environment["LSAN_OPTIONS"] = "suppressions=" + suppressions
        environment["PART"] = part  // the suite's two halves, side by side (run_tests.sh's header)
        // stb_image (image.c) and the suite's stb_image_write (make-images) shift into the sign bit and overflow
        // signed ints on valid images (`left shift of 16646144 by 8 places` in stbiw__jpg_writeBits): undefined in
        // C, harmless as compiled. gcc has no per-file ignore list and the suite builds every file in one command,
        // so those two checks are off for this suite (as for the fuzz target `image`); ASan and the rest stay on.
        environment["EXTRA_CFLAGS"] =
            "-fsanitize=address,undefined -fno-sanitize=shift,signed-integer-overflow -fno-sanitize-recover=all "
            + "-fno-omit-frame-pointer"
        let result = try run([repositoryRoot + "/Tests/runner/run_tests.sh"], environment: environment)
        let summary = result.output.split(separator: "\n").last.map(String.init) ?? ""
        print("runner suite part \(part) under sanitizers: \(summary)")
        #expect(result.status == 0 && summary.hasSuffix(" 0 failed"), "\(result.output)")
        #expect(sanitizerReports(result.output).isEmpty, "\(sanitizerReports(result.output).joined(separator: "\n"))")
    }
}
