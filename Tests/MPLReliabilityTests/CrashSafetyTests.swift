import Foundation
import MPLFuzz
import MPLIR
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Checkpoints are written to a temporary file, synced and renamed: a `kill -9` at any moment leaves the
/// previous or the new checkpoint, complete, and the resumed run is the uninterrupted run, bit for bit.
@Suite("Crash safety: kill -9 and bit-exact resume with a generated model")
struct CrashSafetyTests {
    /// The global step (main phase, then finetuning) a checkpoint was written at, or nil if there is none.
    static func savedStep(_ path: String, mainSteps: Int) throws -> Int? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let saved = try Checkpoint(path: path)  // complete, whenever it is read: rename is atomic
        let step = Int(saved.metadata["step"] ?? "") ?? -1
        switch saved.metadata["phase"] {
        case "mpl": return step
        case "finetune": return mainSteps + step
        default: return Int.max
        }
    }

    @Test(
        "fashion_mlp killed with SIGKILL at 4 random points and resumed: checkpoint and metrics.jsonl (but its times) identical"
    )
    func killAndResume() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let work = try temporaryDirectory("kill9")
        let (mainSteps, finetuneSteps, every) = (300, 40, 10)
        let settings = [
            "train", "--data", data, "--steps", String(mainSteps), "--finetune-steps", String(finetuneSteps),
            "--labels", "1000", "--eval-every", "100", "--checkpoint-every", String(every), "--threads", "1",
            "--seed", "5", "--quiet",
        ]
        let reference = try run([runner] + settings + ["--out", work + "/reference"])
        try #require(reference.status == 0, "\(reference.output)")
        let secondsPerStep = reference.seconds / Double(mainSteps + finetuneSteps)

        // Where to kill: once during start-up (before the first checkpoint), then after three seeded global
        // steps (early main phase, late main phase, finetuning), each plus a random fraction of a checkpoint
        // interval, so that the kill can land inside a step, an evaluation or a checkpoint write.
        var rng = SplitMix64(seed: 20_261_129)
        let targets = [
            Int.random(in: 5..<150, using: &rng), Int.random(in: 150..<mainSteps - every, using: &rng),
            // Two checkpoint intervals before the end: the kill comes up to one interval's time (measured on the
            // reference run) after the target's checkpoint, and a machine that got faster since then must not let
            // the run finish first (it did, in a loaded CI run, with one interval to spare).
            Int.random(in: mainSteps..<mainSteps + finetuneSteps - 2 * every, using: &rng),
        ]
        let directory = work + "/interrupted"
        let checkpoint = directory + "/checkpoint.safetensors"
        var kills: [String] = []
        var attempt = 0
        while true {
            attempt += 1
            try #require(attempt <= 10, "the run did not finish after \(kills.count) kills")
            let resume = FileManager.default.fileExists(atPath: checkpoint)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: runner)
            // Without a checkpoint (killed during start-up) the directory may still hold the killed run's
            // metrics.jsonl, which a new run replaces only when told to.
            process.arguments = settings + ["--out", directory] + (resume ? ["--resume"] : ["--overwrite"])
            let log = directory + ".log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = process.standardOutput
            try process.run()
            var killAfter: Double?
            if kills.isEmpty {
                killAfter = Double.random(in: 0.02...0.3, using: &rng)  // start-up: loading the data
            } else if kills.count <= targets.count {
                let target = targets[kills.count - 1]
                while process.isRunning, (try Self.savedStep(checkpoint, mainSteps: mainSteps) ?? -1) < target {
                    Thread.sleep(forTimeInterval: 0.01)
                }
                killAfter = secondsPerStep * Double(every) * Double.random(in: 0..<1, using: &rng)
            }
            if let killAfter {
                Thread.sleep(forTimeInterval: killAfter)
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                    let step = try Self.savedStep(checkpoint, mainSteps: mainSteps)
                    kills.append(step.map { "global step \($0) on disk" } ?? "before the first checkpoint")
                    continue
                }
            }
            process.waitUntilExit()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            try #require(process.terminationStatus == 0, "attempt \(attempt): \(output)")
            break
        }
        print("kill -9 points (targets \(targets)): " + kills.joined(separator: ", "))
        #expect(kills.count == 4, "the run finished before it could be killed 4 times: \(kills)")
        for file in ["checkpoint.safetensors", "metrics.jsonl"] {
            let full = try withoutTimes(Data(contentsOf: URL(fileURLWithPath: work + "/reference/" + file)))
            let resumed = try withoutTimes(Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
            #expect(full == resumed, "\(file) differs from the uninterrupted run's")
        }
        let final = try Checkpoint(path: checkpoint)
        #expect(final.metadata["phase"] == "done" && final.allFinite)
    }
}
