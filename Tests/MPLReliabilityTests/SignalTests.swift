import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT and SIGTERM finish the current step, write a checkpoint and exit 130 / 143 with one line saying how
/// to continue; the resumed run is the uninterrupted run, bit for bit (docs/RUNNER.md, "Signals").
@Suite("Signals: SIGINT/SIGTERM save the run and exit 130/143; the resumed run is bit-exact")
struct SignalTests {
    @Test(
        "fashion_mlp stopped by SIGTERM twice at once, SIGTERM, then SIGINT in finetuning: exits 143/130, identical run"
    )
    func interruptAndResume() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let work = try temporaryDirectory("signals")
        let (mainSteps, finetuneSteps) = (300, 100)
        // --checkpoint-every beyond both phases: no periodic checkpoint, so a checkpoint at the step a signal
        // stopped the run shows that the signal lost no work (before, the run died and lost everything).
        let settings = [
            "train", "--data", data, "--steps", String(mainSteps), "--finetune-steps", String(finetuneSteps),
            "--labels", "1000", "--eval-every", "100", "--checkpoint-every", "1000", "--threads", "1", "--seed", "7",
            "--quiet",
        ]
        let reference = try run([runner] + settings + ["--out", work + "/reference"])
        try #require(reference.status == 0, "\(reference.output)")

        let directory = work + "/interrupted"
        let checkpoint = directory + "/checkpoint.safetensors"
        let metrics = directory + "/metrics.jsonl"
        let arguments = settings + ["--out", directory]

        // 1. Two SIGTERMs at once, early in the main phase. Either the second arrives before the handler has run
        // (the two are one pending signal: a graceful stop, exit 143) or after (its default action ends the
        // process at once). Either way the checkpoint on disk is whole and the run continues bit-exactly.
        var launched = try Launched(runner, arguments, log: work + "/1.log")
        launched.wait(for: "\"global_step\":45,", in: metrics)
        kill(launched.process.processIdentifier, SIGTERM)
        kill(launched.process.processIdentifier, SIGTERM)
        var result = launched.finish()
        #expect(
            (result.status == 143 && !result.signaled) || (result.status == SIGTERM && result.signaled),
            "two SIGTERMs: status \(result.status), signaled \(result.signaled): \(result.output)")
        let first = FileManager.default.fileExists(atPath: checkpoint) ? try Checkpoint(path: checkpoint) : nil
        print(
            "two SIGTERMs: \(result.signaled ? "killed by the second" : "exit \(result.status)"), checkpoint of step "
                + (first?.metadata["step"] ?? "none"))
        let resume = FileManager.default.fileExists(atPath: checkpoint) ? ["--resume"] : ["--overwrite"]

        // 2. SIGTERM later in the main phase: exit 143, one line naming the step, a checkpoint of that step.
        launched = try Launched(runner, arguments + resume, log: work + "/2.log")
        launched.wait(for: "\"global_step\":150,", in: metrics)
        kill(launched.process.processIdentifier, SIGTERM)
        result = launched.finish()
        #expect(result.status == 143 && !result.signaled, "SIGTERM: \(result.output)")
        let line =
            #/mplc-run: interrupted by SIGTERM after step (\d+); checkpoint in (\S+); continue with the same command and --resume\n/#
        let match = try #require(result.output.firstMatch(of: line), "\(result.output)")
        let step = try #require(Int(match.1))
        #expect(String(match.2) == checkpoint)
        var saved = try Checkpoint(path: checkpoint)
        #expect(
            saved.metadata["phase"] == "mpl" && saved.metadata["step"] == String(step) && step >= 150,
            "the checkpoint holds \(saved.metadata["phase"] ?? "?") step \(saved.metadata["step"] ?? "?"), the message says \(step)"
        )

        // 3. SIGINT during finetuning: exit 130, a finetuning checkpoint of the step the message names.
        launched = try Launched(runner, arguments + ["--resume"], log: work + "/3.log")
        launched.wait(for: "\"phase\":\"finetune\"", in: metrics)
        kill(launched.process.processIdentifier, SIGINT)
        result = launched.finish()
        #expect(result.status == 130 && !result.signaled, "SIGINT: \(result.output)")
        let sigint = try #require(
            result.output.firstMatch(of: #/interrupted by SIGINT after step (\d+); checkpoint in /#), "\(result.output)"
        )
        saved = try Checkpoint(path: checkpoint)
        #expect(
            saved.metadata["phase"] == "finetune"
                && Int(saved.metadata["step"] ?? "").map { $0 + mainSteps } == Int(sigint.1))
        print("SIGTERM after step \(step), SIGINT after step \(sigint.1)")

        // 4. To the end: the same checkpoint and metrics as the uninterrupted run.
        let last = try run([runner] + arguments + ["--resume"])
        try #require(last.status == 0, "\(last.output)")
        for file in ["checkpoint.safetensors", "metrics.jsonl"] {
            let full = try withoutTimes(Data(contentsOf: URL(fileURLWithPath: work + "/reference/" + file)))
            let resumed = try withoutTimes(Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
            #expect(full == resumed, "\(file) differs from the uninterrupted run's")
        }
    }
}
