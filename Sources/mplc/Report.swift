// `mplc report`: one self-contained HTML page about run directories (Sources/MPLCompiler/RunReport.swift).

import ArgumentParser
import Foundation
import MPLCompiler

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one self-contained HTML page with the learning curves, settings, results, recipe and "
            + "confusion matrix of one or more runs.",
        discussion: """
            Reads each RUN_DIR's metrics.jsonl, summary.json and recipe.txt; the confusion matrix is the student's \
            on the test set, counted as `mplc eval` does with the run's own copy of the model file \
            (RUN_DIR/<model>.swiftdsl) and its data directory (summary.json's, or --data).
            Example:
              mplc report runs/fashion_cnn-mpl-seed0                      writes runs/fashion_cnn-mpl-seed0/report.html
              mplc report runs/a runs/b -o compare.html
            """)

    @Argument(help: "Run directories.")
    var runs: [String]
    @Option(name: .shortAndLong, help: "The page to write (default: RUN_DIR/report.html for one run).")
    var output: String?
    @Option(help: "Data directory for the confusion matrices (default: each run's, from summary.json).")
    var data: String?
    @Flag(help: "No confusion matrices (no trainer is built or run).")
    var noEval = false

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one run directory") }
        if runs.count > 1 && output == nil { throw ValidationError("give -o FILE for a page about several runs") }
    }

    func run() throws {
        try reportingFailures {
            let records = try runs.map { directory in
                try RunRecord(directory: directory, evaluation: noEval ? nil : try evaluation(of: directory))
            }
            let path = output ?? runs[0] + "/report.html"
            do {
                try Data(try RunReport.html(records).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch let failure as CompileFailure {
                throw failure
            } catch {
                throw CompileFailure("error: \(path): cannot write: \(error.localizedDescription)")
            }
            print("wrote \(path)")
        }
    }

    /// The student's evaluation on the test set by the run's trainer; nil for a run without a model copy or checkpoint.
    private func evaluation(of directory: String) throws -> Evaluation? {
        let summary =
            (try? JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json")))
                as? [String: Any])
        let checkpoint = directory + "/checkpoint.safetensors"
        // The run's copy of its model file, named after the model (docs/RUNNER.md, "Run directory").
        guard let name = summary?["model"] as? String, !name.contains("/"),
            case let model = directory + "/" + name + ".swiftdsl",
            FileManager.default.fileExists(atPath: model), FileManager.default.fileExists(atPath: checkpoint)
        else {
            FileHandle.standardError.write(
                Data(
                    "mplc: \(directory): no summary.json, copy of the model file or checkpoint; no confusion matrix\n"
                        .utf8))
            return nil
        }
        var arguments = [
            "eval", "--checkpoint", checkpoint, "--threads", String(ProcessInfo.processInfo.activeProcessorCount),
        ]
        if let data = data ?? summary?["data"] as? String { arguments += ["--data", data] }
        let trained = try TrainedModel(directory, checkpoint: nil, best: false)
        return try Evaluation(runnerOutput: try trainerOutput(trained, arguments), network: "student")
    }
}
