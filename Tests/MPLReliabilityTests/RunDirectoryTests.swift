import Foundation
import Testing

/// A runner process started in the background, its stdout and stderr going to a log file.
struct Launched {
    var process: Process
    var log: String

    init(_ runner: String, _ arguments: [String], log: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: runner)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = process.standardOutput
        self.log = log
        try process.run()
    }

    /// Waits (at most 120 s) until metrics.jsonl has a line containing `text` or the process has ended.
    func wait(for text: String, in metrics: String) {
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning, Date() < deadline {
            if let lines = try? String(contentsOfFile: metrics, encoding: .utf8), lines.contains(text) { return }
            Thread.sleep(forTimeInterval: 0.002)
        }
    }

    func finish() -> (status: Int32, signaled: Bool, output: String) {
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal, output)
    }
}

/// A run directory belongs to one run: locked while it is used, never mixed with another run's files, written
/// only through files the runner creates itself, and every write checked (docs/RUNNER.md, "Run directory").
/// The runner's suite (Tests/runner/rundir_tests.sh) covers the same with the fake model, and more.
@Suite("Run directories: lock, another run, --overwrite, planted symlinks, failed writes")
struct RunDirectoryTests {
    static func settings(_ data: String, steps: Int) -> [String] {
        [
            "train", "--data", data, "--steps", String(steps), "--finetune-steps", "0", "--labels", "1000",
            "--eval-every", "50", "--threads", "1", "--quiet",
        ]
    }

    @Test("Two runs started together on one --out: one trains, the other exits 1 at once naming its pid")
    func twoRunsOneDirectory() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let work = try temporaryDirectory("rundir-race")
        let runs = try (1...2).map {
            try Launched(runner, Self.settings(data, steps: 400) + ["--out", work + "/run"], log: work + "/\($0).log")
        }
        let results = runs.map { $0.finish() }
        let winner = try #require(results.firstIndex { $0.status == 0 }, "\(results.map(\.output))")
        let loser = results[1 - winner]
        // Should the winner be done before the loser looks, the loser finds a finished run instead: refused too.
        let refused =
            loser.output.contains("run is used by another run (pid \(runs[winner].process.processIdentifier))")
            || loser.output.contains(
                "run holds another run (checkpoint.safetensors, metrics.jsonl, summary.json, options.json)")
        #expect(loser.status == 1 && !loser.signaled && refused, "\(loser.output)")
    }

    @Test("A new run in a finished run's directory is refused and changes nothing; --overwrite replaces the whole run")
    func finishedRun() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let out = try temporaryDirectory("rundir-finished") + "/run"
        try #require(try run([runner] + Self.settings(data, steps: 230) + ["--out", out]).status == 0)
        let files = ["checkpoint.safetensors", "metrics.jsonl", "summary.json"]
        let before = try files.map { try Data(contentsOf: URL(fileURLWithPath: out + "/" + $0)) }
        let again = try run([runner] + Self.settings(data, steps: 220) + ["--out", out])
        #expect(again.status == 1 && again.output.contains("holds another run"), "\(again.output)")
        #expect(try files.map { try Data(contentsOf: URL(fileURLWithPath: out + "/" + $0)) } == before)
        // Stopped early, the replacing run has no summary yet: the old one must not sit beside it.
        let replaced = try run(
            [runner] + Self.settings(data, steps: 220) + ["--out", out, "--overwrite", "--stop-at", "5"])
        #expect(replaced.status == 0, "\(replaced.output)")
        #expect(!FileManager.default.fileExists(atPath: out + "/summary.json"))
        #expect(try Checkpoint(path: out + "/checkpoint.safetensors").metadata["steps"] == "220")
    }

    @Test(
        "Symlinks planted at the temporary files are not written through; a metrics line that cannot be written stops the run"
    )
    func plantedSymlinksAndFailedWrites() throws {
        let runner = try Runners.binary(modelFile: exampleMLP, flavour: .production)
        let data = try SmallData.directory(testImages: 1000)
        let work = try temporaryDirectory("rundir-symlinks")
        let victim = work + "/victim"
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        let out = work + "/run"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for name in ["checkpoint.safetensors.tmp", "summary.json.tmp"] {
            try FileManager.default.createSymbolicLink(atPath: out + "/" + name, withDestinationPath: victim)
        }
        let planted = try run([runner] + Self.settings(data, steps: 220) + ["--out", out])
        #expect(planted.status == 0, "\(planted.output)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        for name in ["checkpoint.safetensors", "summary.json"] {  // before, the planted links themselves
            let type = try FileManager.default.attributesOfItem(atPath: out + "/" + name)[.type] as? FileAttributeType
            try #require(type == .typeRegular, "\(name) is a \(type.map { "\($0)" } ?? "?")")
        }
        #expect(try Checkpoint(path: out + "/checkpoint.safetensors").metadata["phase"] == "done")

        // A file size limit (SIGXFSZ ignored) fails writes as a full disk does. Before, metrics lines were lost
        // silently and the run went on (with metrics.jsonl a symlink to /dev/full it even exited 0).
        let limited = try run(
            [
                "bash", "-c", "trap '' XFSZ; ulimit -f 4; exec \"$@\"", "limited", runner,
            ] + Self.settings(data, steps: 400) + ["--checkpoint-every", "400", "--out", work + "/limited"])
        #expect(limited.status == 1, "\(limited.output)")
        #expect(
            limited.output.contains("limited/metrics.jsonl: write failed: File too large; stopping the run"),
            "\(limited.output)")
    }
}
