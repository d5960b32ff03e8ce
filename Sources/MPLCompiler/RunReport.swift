// `mplc report`: one self-contained HTML page (no network) about one or more run directories: learning curves from
// metrics.jsonl drawn as SVG by the page's own script, settings and results side by side, the recipe, and the
// student's confusion matrix on the test set.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the page shows of one run directory, read from its files.
public struct RunRecord {
    public var directory: String
    /// summary.json as parsed (nil: the run has not finished).
    public var summary: [String: Any]?
    /// recipe.txt (nil: a run trained without mplc train, or before the run directory described itself).
    public var recipe: String?
    /// Every metrics.jsonl line, in order.
    public var metrics: [[String: Any]]
    public var evaluation: Evaluation?

    /// Reads RUN_DIR/metrics.jsonl (required), summary.json and recipe.txt (if present); fails naming the file and
    /// the line on anything that is not what the runner writes.
    public init(directory: String, evaluation: Evaluation? = nil) throws {
        self.directory = directory
        self.evaluation = evaluation
        let metricsPath = directory + "/metrics.jsonl"
        let text = try RunRecord.readText(metricsPath)
        metrics = try text.split(separator: "\n", omittingEmptySubsequences: true).enumerated().map { index, line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                object["global_step"] is NSNumber
            else { throw CompileFailure("error: \(metricsPath):\(index + 1): not a metrics line of mplc-run") }
            return object
        }
        let summaryPath = directory + "/summary.json"
        if FileManager.default.fileExists(atPath: summaryPath) {
            guard
                let object = try? JSONSerialization.jsonObject(with: Data(RunRecord.readText(summaryPath).utf8))
                    as? [String: Any]
            else { throw CompileFailure("error: \(summaryPath): not a summary.json of mplc-run") }
            summary = object
        }
        let recipePath = directory + "/recipe.txt"
        if FileManager.default.fileExists(atPath: recipePath) { recipe = try RunRecord.readText(recipePath) }
    }

    /// A regular file of at most 256 MiB, as UTF-8.
    static func readText(_ path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CompileFailure("error: \(path): cannot read: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw CompileFailure("error: \(path): not a regular file") }
        guard info.st_size <= 256 << 20 else { throw CompileFailure("error: \(path): larger than 256 MiB") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw CompileFailure("error: \(path): cannot read it as UTF-8 text") }
        return text
    }
}

public enum RunReport {
    /// The page. Every text from the runs is escaped; the data reaches the script as JSON in a
    /// `<script type="application/json">` whose `<` are escaped, so no run file can end it early.
    public static func html(_ runs: [RunRecord]) throws -> String {
        let payload: [[String: Any]] = runs.map { run in
            var entry: [String: Any] = ["name": run.directory, "metrics": run.metrics]
            if let summary = run.summary { entry["summary"] = summary }
            return entry
        }
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]), as: UTF8.self
        )
        .replacingOccurrences(of: "<", with: "\\u003c")
        var body = "<h1>mplc runs</h1>\n<table class=\"settings\">\n" + settingsRows(runs) + "</table>\n"
        body += "<h2>Learning curves</h2>\n<div id=\"plots\"></div>\n"
        for run in runs {
            if let evaluation = run.evaluation {
                body +=
                    "<h2>Confusion matrix: \(escape(run.directory)), \(escape(evaluation.network.replacingOccurrences(of: "_", with: " "))), "
                    + "test accuracy \(String(format: "%.2f%%", 100 * evaluation.accuracy))</h2>\n"
                    + confusionTable(evaluation)
            }
            if let recipe = run.recipe {
                body += "<h2>Recipe: \(escape(run.directory))</h2>\n<pre>\(escape(recipe))</pre>\n"
            }
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>mplc report</title>
            <style>
            body { font: 14px sans-serif; margin: 2em; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
            th { background: #f4f4f4; } td.name, th.name { text-align: left; }
            .plot { margin: 0 1em 1em 0; border: 1px solid #ddd; } .axis { stroke: #888; } .curve { fill: none; stroke-width: 1.5; }
            text { font: 11px sans-serif; } #errors { color: #b00; }
            </style></head>
            <body>
            <div id="errors"></div>
            \(body)
            <script type="application/json" id="runs">\(json)</script>
            <script>
            \(script)
            </script>
            </body></html>

            """
    }

    static func settingsRows(_ runs: [RunRecord]) -> String {
        let keys = [
            "model", "mode", "seed", "labels", "steps", "finetune_steps", "data", "test_examples", "wall_seconds",
        ]
        let accuracies = [
            "student_after_finetune", "student_ema_after_finetune", "teacher_after_finetune",
            "student_before_finetune",
        ]
        var rows =
            "<tr><th class=\"name\">run</th>" + runs.map { "<th>\(escape($0.directory))</th>" }.joined() + "</tr>\n"
        for key in keys {
            rows +=
                "<tr><td class=\"name\">\(key)</td>"
                + runs.map { "<td>\(escape(describe($0.summary?[key])))</td>" }.joined() + "</tr>\n"
        }
        for key in ["examples", "best_step", "best_acc_student", "stopped_at_step"] {
            rows +=
                "<tr><td class=\"name\">validation \(key.replacingOccurrences(of: "_", with: " "))</td>"
                + runs.map {
                    "<td>\(escape(describe(($0.summary?["validation"] as? [String: Any])?[key])))</td>"
                }.joined() + "</tr>\n"
        }
        // The teacher's gradient part by part, main-phase means: does the feedback move the teacher at all?
        for (key, label) in [
            ("teacher_grad_sup_norm", "supervised"), ("teacher_grad_uda_norm", "UDA"),
            ("teacher_grad_feedback_norm", "feedback"),
        ] {
            rows +=
                "<tr><td class=\"name\">teacher gradient norm, \(label) (main-phase mean)</td>"
                + runs.map { run in
                    let value = (run.summary?["main_phase_means"] as? [String: Any])?[key] as? Double
                    return "<td>" + (value.map { String(format: "%.3g", $0) } ?? "-") + "</td>"
                }.joined() + "</tr>\n"
        }
        for key in accuracies {
            rows +=
                "<tr><td class=\"name\">test accuracy, \(key.replacingOccurrences(of: "_", with: " "))</td>"
                + runs.map { run in
                    let value = (run.summary?["test_accuracy"] as? [String: Any])?[key] as? Double
                    return "<td>" + (value.map { String(format: "%.2f%%", 100 * $0) } ?? "-") + "</td>"
                }.joined() + "</tr>\n"
        }
        return rows
    }

    static func confusionTable(_ e: Evaluation) -> String {
        let names = Evaluation.classNames(count: e.confusion.count)
        let peak = max(1, e.confusion.joined().max() ?? 1)
        var rows =
            "<table class=\"confusion\"><tr><th class=\"name\">true \\ predicted</th>"
            + (0..<e.confusion.count).map { "<th>\($0)</th>" }.joined() + "<th>accuracy</th></tr>\n"
        for (k, row) in e.confusion.enumerated() {
            rows += "<tr><th class=\"name\">\(k)" + (names.map { " " + escape($0[k]) } ?? "") + "</th>"
            for (j, count) in row.enumerated() {
                // Shade by count: blue on the diagonal (right), red off it (wrong).
                let alpha = Double(count) / Double(peak)
                let colour =
                    j == k
                    ? "rgba(40,90,200,\(String(format: "%.2f", alpha)))"
                    : "rgba(200,40,40,\(String(format: "%.2f", alpha)))"
                rows += "<td style=\"background:\(colour)\">\(count)</td>"
            }
            rows += "<td>" + (e.perClass[k].accuracy.map { String(format: "%.1f%%", 100 * $0) } ?? "-") + "</td></tr>\n"
        }
        return rows + "</table>\n"
    }

    static func describe(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: return "-"
        case let number as NSNumber: return number.stringValue
        case let string as String: return string
        default: return "\(value!)"
        }
    }

    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Draws one SVG per group of metrics (losses; h and mask rate; learning rates; test and validation accuracies)
    /// with a curve per run, key and evaluation set against global_step, axes with their ranges and a legend; errors go into #errors.
    static let script = #"""
        "use strict";
        window.onerror = (message) => { document.getElementById("errors").textContent += "script error: " + message + "\n"; };
        const runs = JSON.parse(document.getElementById("runs").textContent);
        const groups = [
          ["losses", k => k.startsWith("loss")],
          ["h and mask rate", k => k === "h" || k === "mask_rate" || k === "uda_weight"],
          // Orders of magnitude apart (the feedback's part is often far below the others): drawn as log10.
          ["teacher's gradient parts, log10 of the norm", k => k.startsWith("teacher_grad_"), Math.log10],
          ["learning rates", k => k.startsWith("lr")],
          ["accuracy", k => k.startsWith("acc_")],
        ];
        const colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];
        const NS = "http://www.w3.org/2000/svg";
        function el(name, attributes, parent) {
          const node = document.createElementNS(NS, name);
          for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
          parent.appendChild(node);
          return node;
        }
        function format(v) { return Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3); }
        let drawn = 0;
        for (const [title, wanted, transform] of groups) {
          const series = [];
          for (const run of runs) {
            // One series per key and evaluation set ("test" or "validation" lines; none for the log lines).
            const named = new Map();
            for (const line of run.metrics)
              for (const k of Object.keys(line))
                if (wanted(k) && typeof line[k] === "number") {
                  const name = (typeof line.eval === "string" ? line.eval + " " : "") + k;
                  const y = transform ? transform(line[k]) : line[k];
                  if (!Number.isFinite(y)) continue;
                  if (!named.has(name)) named.set(name, []);
                  named.get(name).push([line.global_step, y]);
                }
            for (const [name, points] of named) series.push({label: (runs.length > 1 ? run.name + " " : "") + name, points});
          }
          if (!series.length) continue;
          const W = 560, H = 300, L = 60, R = 10, T = 24, B = 36;
          const all = series.flatMap(s => s.points);
          let [x0, x1] = [Math.min(...all.map(p => p[0])), Math.max(...all.map(p => p[0]))];
          let [y0, y1] = [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
          if (x1 === x0) x1 = x0 + 1;
          if (y1 === y0) y1 = y0 + 1;
          const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
          const svg = el("svg", {width: W, height: H + 16 * series.length, class: "plot", "data-title": title}, document.getElementById("plots"));
          el("text", {x: L, y: 16}, svg).textContent = title;
          el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis"}, svg);
          el("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"}, svg);
          for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) el("text", {x: sx(x), y: H - B + 14, "text-anchor": anchor}, svg).textContent = format(x);
          el("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle"}, svg).textContent = "global step";
          for (const y of [y0, y1]) el("text", {x: L - 4, y: sy(y) + 4, "text-anchor": "end"}, svg).textContent = format(y);
          series.forEach((s, i) => {
            const colour = colours[i % colours.length];
            const d = s.points.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join("");
            el("path", {d, class: "curve", stroke: colour}, svg);
            el("text", {x: L, y: H + 12 + 16 * i, fill: colour}, svg).textContent = s.label;
          });
          drawn++;
        }
        document.body.setAttribute("data-plots", String(drawn));
        """#
}
