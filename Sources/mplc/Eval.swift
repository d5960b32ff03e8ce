// `mplc eval`: a checkpoint's test accuracy, per-class accuracy and confusion matrix, counted by the model's trainer
// (`mplc-run eval`, the evaluation training runs use).

import ArgumentParser
import Foundation
import MPLCompiler

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Test accuracy, per-class accuracy and confusion matrix of a run's student (or its EMA, or teacher).",
        discussion: """
            Builds (or reuses) the model's trainer as `mplc train` does and runs `mplc-run eval` on the test set of \
            --data (docs/RUNNER.md, "Data"; for a run directory, by default the data it trained on).
            Examples:
              mplc eval runs/fashion_cnn-mpl-seed0
              mplc eval runs/fashion_cnn-mpl-seed0 --best --ema
              mplc eval Examples/fashion_cnn.swiftdsl --checkpoint runs/fashion_cnn-mpl-seed0/checkpoint.safetensors
            """)

    @OptionGroup var source: TrainedModelArguments
    @Flag(help: "The EMA of the student (the checkpoint's ema/ tensors) instead of the student.")
    var ema = false
    @Flag(help: "The teacher instead of the student.")
    var teacher = false
    @Option(help: "Data directory whose test set is used (default: the run directory's, else Fashion-MNIST).")
    var data: String?
    @Option(
        help: ArgumentHelp(
            "Reduced MPL: the large teacher's cached predictions, as for training (default: the run directory's).",
            valueName: "FILE.npy"))
    var teacherCache: String?
    @Option(help: "Threads (default: every core of this machine).")
    var threads: Int?
    @Flag(help: "Print JSON (accuracy, per_class, confusion) instead of tables.")
    var json = false

    func validate() throws {
        if ema && teacher { throw ValidationError("--ema and --teacher choose different networks: give one") }
    }

    func run() throws {
        try reportingFailures {
            let trained = try source.load()
            var arguments = [
                "eval", "--checkpoint", trained.checkpoint,
                "--threads", String(threads ?? ProcessInfo.processInfo.activeProcessorCount),
            ]
            if let data = data ?? trained.metadata["data"] { arguments += ["--data", data] }
            let readsCache = trained.compiled.map { $0.model.recipe.teacherInput == .cachedPredictions } ?? false
            if let teacherCache = teacherCache ?? (readsCache ? trained.metadata["teacher_cache"] : nil) {
                arguments += ["--teacher-cache", teacherCache]
            }
            let output = try trainerOutput(trained, arguments)
            let evaluation = try Evaluation(
                runnerOutput: output, network: ema ? "student_ema" : teacher ? "teacher" : "student")
            print(
                json
                    ? evaluation.json
                    : evaluation.text(classNames: try trained.classNames(count: evaluation.confusion.count)))
        }
    }
}
