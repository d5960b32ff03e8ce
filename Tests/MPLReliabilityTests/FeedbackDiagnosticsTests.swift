import Foundation
import Testing

/// The teacher's feedback, watched: every main-phase line of metrics.jsonl carries h, ‖g_l‖, ‖g_u‖, their cosine
/// and h_positive, and summary.json their means over the main phase, also across a stop and --resume.
@Suite("Feedback diagnostics in metrics.jsonl and summary.json")
struct FeedbackDiagnosticsTests {
    func objects(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("two_moons, 300 steps: finite diagnostics in every main-phase line; the summary's means survive --resume")
    func logged() throws {
        let work = try temporaryDirectory("feedback")
        defer { try? FileManager.default.removeItem(atPath: work) }
        // two_moons with the teacher's gradient parts logged (teacherGradientParts(true), off by default).
        let example = try String(contentsOfFile: repositoryRoot + "/Examples/two_moons.swiftdsl", encoding: .utf8)
        let opening = "let mpl = MPL(teacher: teacher, student: student) {\n"
        #expect(example.contains(opening))
        try example.replacingOccurrences(of: opening, with: opening + "    teacherGradientParts(true)\n")
            .write(toFile: work + "/two_moons.swiftdsl", atomically: true, encoding: .utf8)
        let runner = try Runners.binary(modelFile: work + "/two_moons.swiftdsl", flavour: .production)
        let settings = [
            runner, "train", "--data", "two-moons", "--labels", "6", "--steps", "300", "--finetune-steps", "20",
            "--threads", "1", "--quiet",
        ]
        let whole = try run(settings + ["--out", work + "/whole"])
        #expect(whole.status == 0, "\(whole.output)")

        let lines = try objects(work + "/whole/metrics.jsonl").filter {
            $0["phase"] as? String == "mpl" && $0["eval"] == nil
        }
        #expect(lines.count == 20)
        var weightedH = 0.0
        var steps = 0.0
        for line in lines {
            let value = { (key: String) -> Double in (line[key] as? Double) ?? .nan }
            for key in [
                "h", "g_l_norm", "g_u_norm", "cos_g_l_g_u", "h_positive", "teacher_grad_sup_norm",
                "teacher_grad_uda_norm", "teacher_grad_feedback_norm",
            ] {
                #expect(value(key).isFinite, "\(key) in \(line)")
            }
            #expect(value("g_l_norm") > 0 && value("g_u_norm") > 0, "\(line)")
            #expect(abs(value("cos_g_l_g_u")) <= 1 && (0...1).contains(value("h_positive")), "\(line)")
            let n = try #require(line["mean_over_steps"] as? Double)
            weightedH += value("h") * n
            steps += n
        }
        #expect(steps == 300)

        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/whole/summary.json")))
                as? [String: Any])
        let means = try #require(summary["main_phase_means"] as? [String: Double], "\(summary.keys.sorted())")
        let meanH = try #require(means["h"])
        let fraction = try #require(means["h_positive"])
        #expect(
            abs(meanH - weightedH / steps) <= 1e-5 * max(abs(meanH), 1e-6),
            "summary \(meanH), lines \(weightedH / steps)")
        #expect(fraction > 0 && fraction < 1, "the student's step sometimes helps, sometimes not: \(fraction)")
        #expect(abs(try #require(means["cos_g_l_g_u"])) <= 1)
        // The teacher's gradient part by part: two_moons has no UDA (weight 0), a supervised and a feedback part.
        #expect(try #require(means["teacher_grad_sup_norm"]) > 0 && means["teacher_grad_feedback_norm"]! > 0)
        #expect(means["teacher_grad_uda_norm"] == 0)
        let report = try run([mplcBinary, "report", work + "/whole", "--no-eval", "-o", work + "/report.html"])
        #expect(report.status == 0, "\(report.output)")
        let html = try String(contentsOfFile: work + "/report.html", encoding: .utf8)
        #expect(html.contains("teacher gradient norm, feedback (main-phase mean)</td><td>"))
        #expect(html.contains("teacher's gradient parts, log10 of the norm"))
        // The progress line (one per 5 % when stderr is not a terminal) has the three parts.
        let loud = try run(Array(settings.dropLast()) + ["--out", work + "/loud"])
        #expect(loud.output.contains("|g_T| sup "), "\(loud.output.prefix(600))")

        // The means are kept in the checkpoint: a run stopped in the main phase and resumed reports the same.
        #expect(try run(settings + ["--out", work + "/split", "--stop-at", "150"]).status == 0)
        let resumed = try run(settings + ["--out", work + "/split", "--resume"])
        #expect(resumed.status == 0, "\(resumed.output)")
        let split = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/split/summary.json")))
                as? [String: Any])
        #expect(split["main_phase_means"] as? [String: Double] == means)
    }
}
