import Foundation
import Testing

/// `mplc train` passes the run-directory options of issue 15 to the trainer unchanged (the trainer implements
/// them; docs/RUNNER.md).
@Suite("mplc train options")
struct TrainOptionsTests {
    @Test(
        "--overwrite, --init-from FILE, --resize, --strong-magnitude and the feedback variants reach mplc-run, not an mplc usage error"
    )
    func runDirectoryOptionsArePassedOn() throws {
        let work = try temporaryDirectory("train-options")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let feedbackVariants = [
            ["--feedback-weight", "2"], ["--feedback-baseline", "0.99"], ["--feedback-normalise", "0.99"],
            ["--feedback-wait", "100"],
        ]
        let others = [
            ["--overwrite"], ["--init-from", work + "/other.safetensors"], ["--resize"], ["--strong-magnitude", "0.5"],
        ]
        for extra in others + feedbackVariants {
            // A missing data directory makes the trainer stop at once, whatever it does with the option.
            let result = try run(
                [
                    mplcBinary, "train", exampleMLP, "--data", work + "/no-data", "--steps", "201", "--out",
                    work + "/run",
                ]
                    + extra, directory: work)
            #expect(result.status != 0, "\(extra): \(result.output)")
            #expect(
                !result.output.contains("Usage: mplc train") && !result.output.contains("Unknown option"),
                "\(extra): \(result.output)")
            #expect(result.output.contains("\nmplc-run: "), "the trainer answered: \(extra): \(result.output)")
        }
    }
}

/// `mplc train --resume RUN_DIR` needs nothing else: the run directory holds the model file, the recipe overrides
/// and the options (options.json) of the run (issue 17).
@Suite("mplc train --resume RUN_DIR")
struct TrainResumeTests {
    @Test("a run with overrides, mode, seed and data: resumed from elsewhere by its run directory alone, then extended")
    func resumeByRunDirectory() throws {
        let work = try temporaryDirectory("train-resume")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let first = try run(
            [
                mplcBinary, "train", repositoryRoot + "/Examples/two_moons_adam.swiftdsl", "--data", "two-moons",
                "--labels", "6", "--steps", "120", "--finetune-steps", "10", "--threads", "1", "--mode", "uda",
                "--seed", "5", "--pseudo-labels", "soft:2", "--pseudo-labels-from", "weak-view", "--out", "run",
                "--quiet",
            ], directory: work)
        #expect(first.status == 0, "\(first.output)")
        let options = try String(contentsOfFile: work + "/run/options.json", encoding: .utf8)
        #expect(options.contains("\"pseudo_labels\": \"soft:2\"") && options.contains("\"seed\": 5,"), "\(options)")
        #expect(options.contains("\"pseudo_labels_from\": \"weak-view\""), "\(options)")
        // From another directory: the model copy, compiled with soft:2 and the weak view again (another recipe would
        // be refused by the checkpoint's model hash), and the trainer with the run's mode and seed.
        let resumed = try run([mplcBinary, "train", "--resume", work + "/run"], directory: "/")
        #expect(resumed.status == 0 && resumed.output.contains("already finished"), "\(resumed.output)")
        #expect(resumed.output.contains("two_moons_adam uda seed 5"), "\(resumed.output)")

        // --steps beyond the run's extends the finished run; its old results stay in summary.json's history.
        let extended = try run([mplcBinary, "train", "--resume", work + "/run", "--steps", "150"], directory: "/")
        #expect(extended.status == 0 && extended.output.contains("150 steps + 10 finetune"), "\(extended.output)")
        let summary = try String(contentsOfFile: work + "/run/summary.json", encoding: .utf8)
        #expect(summary.contains("{\"steps\": 120, \"finetune_steps\": 10, \"test_accuracy\""), "\(summary)")

        let override = try run(
            [mplcBinary, "train", "--resume", work + "/run", "--pseudo-labels", "hard-argmax"], directory: work)
        #expect(override.status == 1, "\(override.output)")
        #expect(
            override.output.contains(
                "run/options.json: the run was compiled with --pseudo-labels soft:2, but this command says "
                    + "--pseudo-labels hard-argmax"), "\(override.output)")
        let view = try run(
            [mplcBinary, "train", "--resume", work + "/run", "--pseudo-labels-from", "strong-view"], directory: work)
        #expect(
            view.status == 1
                && view.output.contains(
                    "the run was compiled with --pseudo-labels-from weak-view, but this command says "
                        + "--pseudo-labels-from strong-view"),
            "\(view.output)")
        let mode = try run([mplcBinary, "train", "--resume", work + "/run", "--mode", "mpl"], directory: work)
        #expect(mode.status == 1, "\(mode.output)")
        #expect(
            mode.output.contains("the run was started with --mode uda, but this command says --mode mpl"),
            "\(mode.output)")
        let both = try run(
            [mplcBinary, "train", repositoryRoot + "/Examples/two_moons_adam.swiftdsl", "--resume", work + "/run"],
            directory: work)
        #expect(both.status == 2 && both.output.contains("do not give a model file"), "\(both.output)")

        // options.json is untrusted: a model name that is a path is refused before anything is read or compiled.
        let hostile = options.replacingOccurrences(of: "\"two_moons_adam\"", with: "\"../../etc/passwd\"")
        try hostile.write(toFile: work + "/run/options.json", atomically: true, encoding: .utf8)
        let refused = try run([mplcBinary, "train", "--resume", work + "/run"], directory: work)
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("options.json: \"model\" is missing or not a model name"), "\(refused.output)")
        try "[".write(toFile: work + "/run/options.json", atomically: true, encoding: .utf8)
        let broken = try run([mplcBinary, "train", "--resume", work + "/run"], directory: work)
        #expect(broken.status == 1 && broken.output.contains("not a JSON object"), "\(broken.output)")
    }
}
