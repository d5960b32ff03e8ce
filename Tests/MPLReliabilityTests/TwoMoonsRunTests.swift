import Foundation
import Testing

/// A short two-moons run by `mplc train` (a Features(2) model), shared by the tests: `mplc predict` on feature
/// vectors (CSV, NPY) of its run directory, and its picture, boundary.svg.
@Suite("A two-moons run: predict on feature vectors, the decision-region picture")
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

    @Test(
        "boundary.svg: under 200 KB, parses as XML, axes with ticks in both panels, a legend, the accuracies in the titles"
    )
    func picture() throws {
        let work = try Self.trained.get()
        let path = work + "/run/boundary.svg"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size < 200_000, "boundary.svg has \(size) bytes")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/run/summary.json")))
                as? [String: Any])
        let accuracy = try #require(summary["test_accuracy"] as? [String: Double])
        // Python's XML parser reads the file; the structure it finds is printed one item a line.
        let script = """
            import sys, xml.etree.ElementTree as ET
            ns = "{http://www.w3.org/2000/svg}"
            root = ET.parse(sys.argv[1]).getroot()
            for g in root.iter(ns + "g"):
                if g.get("class") == "panel":
                    print("panel", next(g.iter(ns + "text")).text)
                if g.get("class") == "axes":
                    print("axes", len([t for t in g.iter(ns + "text")]))
                if g.get("class") == "legend":
                    print("legend", " / ".join(t.text for t in g.iter(ns + "text")))
            """
        let parsed = try run(["python3", "-c", script, path])
        try #require(parsed.status == 0, "\(parsed.output)")
        let lines = parsed.output.split(separator: "\n").map(String.init)
        func percent(_ key: String) -> String { String(format: "%.2f%%", 100 * (accuracy[key] ?? -1)) }
        #expect(lines.contains("panel student: test accuracy " + percent("student_after_finetune")), "\(lines)")
        #expect(lines.contains("panel teacher: test accuracy " + percent("teacher_after_finetune")), "\(lines)")
        // Each panel's axes: at least 4 tick values on each axis and the two axis names.
        let axes = lines.filter { $0.hasPrefix("axes ") }.compactMap { Int($0.dropFirst(5)) }
        #expect(axes.count == 2 && axes.allSatisfy { $0 >= 10 }, "\(lines)")
        #expect(
            lines.contains { $0.hasPrefix("legend class 0, labeled / class 1, labeled / unlabeled") }, "\(lines)")
    }
}
