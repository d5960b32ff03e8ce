import Foundation
import MPLFuzz
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Checkpoints are written to a temporary file, synced and renamed: a `kill -9` at any moment leaves the
/// previous or the new checkpoint, complete, and the resumed run is the uninterrupted run, bit for bit.
@Suite("Crash safety: kill -9 and bit-exact resume with a generated model")
struct CrashSafetyTests {
    @Test("fashion_mlp killed with SIGKILL at 4 random points and resumed: checkpoint and metrics.jsonl identical (cmp)")
    func killAndResume() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let work = try temporaryDirectory("kill9")
        let settings = ["train", "--data", data, "--steps", "300", "--finetune-steps", "40", "--labels", "1000",
                        "--eval-every", "100", "--checkpoint-every", "10", "--threads", "1", "--seed", "5", "--quiet"]
        let reference = try run([runner] + settings + ["--out", work + "/reference"])
        try #require(reference.status == 0, "\(reference.output)")

        var rng = SplitMix64(seed: 20_261_129)
        var kills: [String] = []
        let directory = work + "/interrupted"
        let checkpoint = directory + "/checkpoint.safetensors"
        for attempt in 0..<12 {
            let resume = FileManager.default.fileExists(atPath: checkpoint)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: runner)
            process.arguments = settings + ["--out", directory] + (resume ? ["--resume"] : [])
            let log = directory + ".log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = process.standardOutput
            try process.run()
            if kills.count < 4 {
                // A random moment of this run: most of the reference's duration lies ahead of it.
                let delay = reference.seconds * Double.random(in: 0.05...0.6, using: &rng)
                Thread.sleep(forTimeInterval: delay)
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                    // Whatever is on disk now must be a complete checkpoint.
                    if FileManager.default.fileExists(atPath: checkpoint) {
                        let saved = try Checkpoint(path: checkpoint)
                        #expect(saved.allFinite && saved.metadata["format"] == "mplc-run-checkpoint/1")
                        kills.append(String(format: "%.2f s (checkpoint %@ %@)", delay, saved.metadata["phase"] ?? "?",
                                            saved.metadata["step"] ?? "?"))
                    } else {
                        kills.append(String(format: "%.2f s (before the first checkpoint)", delay))
                    }
                    continue
                }
            }
            process.waitUntilExit()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            try #require(process.terminationStatus == 0, "attempt \(attempt): \(output)")
            break
        }
        print("kill -9 points: " + kills.joined(separator: ", "))
        #expect(kills.count == 4, "the run finished before it could be killed 4 times: \(kills)")
        for file in ["checkpoint.safetensors", "metrics.jsonl"] {
            let full = try Data(contentsOf: URL(fileURLWithPath: work + "/reference/" + file))
            let resumed = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            #expect(full == resumed, "\(file) differs from the uninterrupted run's")
        }
        let final = try Checkpoint(path: checkpoint)
        #expect(final.metadata["phase"] == "done")
    }
}
