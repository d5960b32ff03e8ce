import Foundation
import Testing

/// A short two-moons run by `mplc train` (a Features(2) model), shared by the tests: `mplc predict` on feature
/// vectors (CSV, NPY) of its run directory.
@Suite("A two-moons run: predict on feature vectors")
struct TwoMoonsRunTests {
    /// The folder holding the run, run/.
    static let trained: Result<String, Error> = Result {
        let work = try temporaryDirectory("two-moons-run")
        let train = try run(
            [
                mplcBinary, "train", repositoryRoot + "/Examples/two_moons_adam.swiftdsl", "--data", "two-moons",
                "--labels", "6", "--steps", "300", "--finetune-steps", "50", "--threads", "1", "--out", "run",
                "--quiet",
            ], directory: work)
        guard train.status == 0 else { throw TestFailure("mplc train failed:\n" + train.output) }
        return work
    }

    @Test("predict on CSV rows (with a header, with or without a label) and float32 NPY rows: the same probabilities")
    func predictFeatures() throws {
        let work = try Self.trained.get()
        let points: [(Float, Float)] = [(-1, 0.2), (0, 1), (1, 0), (2, 0.4), (0.5, -0.3), (1.5, -0.4), (-0.75, 0.5)]
        try ("x1,x2\n" + points.map { "\($0.0),\($0.1)\n" }.joined())
            .write(toFile: work + "/points.csv", atomically: true, encoding: .utf8)
        try points.enumerated().map { "\($1.0), \($1.1), \($0 % 2)\r\n" }.joined()
            .write(toFile: work + "/labeled.csv", atomically: true, encoding: .utf8)
        try writeNPY(work + "/points.npy", floats: points.flatMap { [$0.0, $0.1] }, shape: [points.count, 2])
        let predicted = try run(
            [mplcBinary, "predict", "run", "points.csv", "labeled.csv", "points.npy", "--json"], directory: work)
        try #require(predicted.status == 0, "\(predicted.output)")
        let lines = try predicted.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let n = points.count
        try #require(lines.count == 3 * n, "\(predicted.output)")
        let first = lines[0..<n].map { $0["probabilities"] as? [Double] }
        for (k, file) in ["points.csv", "labeled.csv", "points.npy"].enumerated() {
            let rows = lines[(k * n)..<((k + 1) * n)]
            #expect(rows.map { $0["file"] as? String } == Array(repeating: file, count: n))
            #expect(rows.map { $0["index"] as? Int } == Array(0..<n))
            #expect(rows.map { $0["probabilities"] as? [Double] } == first, "\(file)")
        }
        #expect(first.allSatisfy { ($0?.count ?? 0) == 2 && abs(($0 ?? []).reduce(0, +) - 1) < 1e-9 })

        // Bad files: exit 1, the file and the cause.
        try "1,2,3,4\n".write(toFile: work + "/wide.csv", atomically: true, encoding: .utf8)
        try "1,x\n".write(toFile: work + "/text.csv", atomically: true, encoding: .utf8)
        try Data(png(grey: [0], width: 1, height: 1)).write(to: URL(fileURLWithPath: work + "/dot.png"))
        let cases: [(file: String, message: String)] = [
            ("wide.csv", "wide.csv: rows of 4 fields; model two_moons_adam takes 2 features"),
            ("text.csv", "text.csv: line 1, field 2 is not a number"),
            ("dot.png", "dot.png: model two_moons_adam reads 2 features per example, not images"),
        ]
        for c in cases {
            let result = try run([mplcBinary, "predict", "run", "points.csv", c.file], directory: work)
            #expect(
                result.status == 1 && !result.signaled && result.output.contains(c.message),
                "\(c.file): \(result.output)")
        }
    }
}
