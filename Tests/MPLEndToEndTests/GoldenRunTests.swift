import Foundation
import MPLCompiler
import Testing

/// A short fixed-seed run of the two-moons model: the same seed gives the same run (byte for byte, 1 thread),
/// and its losses match the committed golden file. Re-record with MPLC_RECORD_GOLDEN=1 after an intended change.
@Suite("Fixed-seed training run")
struct GoldenRunTests {
    static let goldenPath = repositoryRoot + "/Tests/Golden/two_moons_seed0_metrics.jsonl"

    func train(_ binary: String, into directory: String) throws -> String {
        try shell([
            binary, "train", "--data", "two-moons", "--labels", "6", "--steps", "400", "--finetune-steps", "0",
            "--eval-every", "100", "--threads", "1", "--seed", "0", "--out", directory, "--quiet",
        ])
        // Each line's wall-clock "time" (its last key) left out: the rest must repeat from run to run.
        return try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
            .replacing(#/,"time":"[^"]*"\}\n/#, with: "}\n")
    }

    /// Every number of every metrics line, in order, with the line's keys (so a reordered file fails too).
    func numbers(_ metrics: String) throws -> [(key: String, value: Double)] {
        try metrics.split(separator: "\n").flatMap { line -> [(key: String, value: Double)] in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.keys.sorted().compactMap { key in (object[key] as? NSNumber).map { (key, $0.doubleValue) } }
        }
    }

    @Test("Same seed, same run; losses match the golden file")
    func goldenLosses() throws {
        let model = try Compiler.load(path: repositoryRoot + "/Examples/two_moons.swiftdsl").get()
        let directory = try buildTrainer(model)
        let first = try train(directory + "/mplc-run", into: directory + "/run1")
        let second = try train(directory + "/mplc-run", into: directory + "/run2")
        #expect(first == second, "two runs with seed 0 and 1 thread differ")

        if ProcessInfo.processInfo.environment["MPLC_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(
                atPath: (Self.goldenPath as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true)
            try first.write(toFile: Self.goldenPath, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOfFile: Self.goldenPath, encoding: .utf8)
        let got = try numbers(first)
        let expected = try numbers(golden)
        #expect(got.count == expected.count && got.count > 20, "\(got.count) numbers, golden has \(expected.count)")
        // Another CPU may pick other OpenBLAS kernels, which round differently: 1e-4 relative allows that,
        // while a changed step (a wrong sign, a missing term) moves the losses by far more.
        for (g, e) in zip(got, expected) {
            #expect(
                g.key == e.key && abs(g.value - e.value) <= 1e-4 * max(abs(e.value), 1e-3),
                "\(g.key): \(g.value), golden \(e.value) (re-record with MPLC_RECORD_GOLDEN=1 if intended)")
        }
    }
}
