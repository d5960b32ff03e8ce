// The command line: a thin shell over MPLCompiler. Subcommands: emit (the default), check, train, eval, predict,
// report, export, fuzz (one file each from eval on).

import ArgumentParser
import Foundation
import MPLCompiler

@main
struct MPLC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mplc",
        abstract:
            "Compile Meta Pseudo Labels training steps from .swiftdsl model files to fused C, and train with them.",
        discussion: """
            Examples:
              mplc Examples/fashion_mlp.swiftdsl          writes generated/fashion_mlp/ (model.h, model.c, mplc_runtime.h, model.ir, model.json)
              mplc Examples/fashion_mlp.swiftdsl -o DIR   the same, into DIR
              mplc check Examples/fashion_cnn.swiftdsl    parse and check only
              mplc train Examples/fashion_cnn.swiftdsl    compile, build the runner and train on Fashion-MNIST
              mplc eval Examples/fashion_cnn.swiftdsl --checkpoint RUN/checkpoint.safetensors   test accuracy, confusion matrix
              mplc predict Examples/fashion_cnn.swiftdsl --checkpoint RUN/checkpoint.safetensors shirt.png
            """,
        subcommands: [Emit.self, Check.self, Train.self, Eval.self, Predict.self, Report.self, Export.self, Fuzz.self],
        defaultSubcommand: Emit.self)
}

/// Runs `body`, printing a compile failure to stderr and exiting with its code instead of a stack trace.
func reportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as CompileFailure {
        FileHandle.standardError.write(
            Data((failure.description.hasSuffix("\n") ? failure.description : failure.description + "\n").utf8))
        throw ExitCode(failure.exitCode)
    }
}

struct Emit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compile a model file to C (the default subcommand).")

    @Argument(help: "The model file (.swiftdsl).")
    var model: String

    @Option(name: .shortAndLong, help: "Output directory (default: generated/<model name>).")
    var output: String?
    @Option(help: "Override the recipe's pseudo labels: hard-argmax, hard-sampled, soft or soft:T.")
    var pseudoLabels: String?
    @Option(
        help: ArgumentHelp(
            "Override the recipe's feedback: off, dot (dot-product), loss-difference or soft (soft pseudo labels, "
            + "exact meta-gradient); off compiles the dot product with no feedback as the trainer's default."))
    var feedback: String?

    func run() throws {
        try reportingFailures {
            var model = try Compiler.load(path: self.model).get()
            try RecipeOverrides.apply(pseudoLabels: pseudoLabels, feedback: feedback, to: &model)
            let overrides =
                (pseudoLabels.map { " --pseudo-labels \($0)" } ?? "") + (feedback.map { " --feedback \($0)" } ?? "")
            let command = "mplc \(self.model)" + overrides + (output.map { " -o \($0)" } ?? "")
            let compiled = try Compiler.compile(
                model, regenerateCommand: command, memoryLimit: ResourceLimits.memoryLimit())
            let directory = output ?? "generated/\(model.name)"
            try Compiler.write(compiled.files, to: directory)
            print("wrote \(directory)/{\(compiled.files.map(\.fileName).joined(separator: ","))}")
            print("memory plan: \(compiled.memorySummary)")
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Parse and check model files; print every diagnostic, or the resolved recipe (docs/DSL.md).")

    @Argument(help: "The model files (.swiftdsl).")
    var models: [String]

    func run() throws {
        var failed = false
        for path in models {
            switch Compiler.load(path: path) {
            case .success(let model):
                print(
                    "\(path): ok (\(model.teacher.layers.count)-layer teacher, \(model.student.layers.count)-layer student)"
                )
                print("recipe:\n" + model.recipe.resolvedLines.map { "  " + $0 }.joined(separator: "\n"))
            case .failure(let failure):
                FileHandle.standardError.write(Data(failure.description.utf8))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Compile a model, build its trainer with cc -O3 and OpenBLAS, and train on Fashion-MNIST (or --data).",
        discussion: "The options below are passed on to the trainer (`mplc-run train`), except --pseudo-labels, "
            + "which changes the compiled step, as --feedback dot, loss-difference and soft also do. For the trainer's "
            + "--stop-at, run the trainer that mplc "
            + "prints it built or reused (.build-mplc/<model>-<key>/mplc-run) directly; docs/RUNNER.md has all its options."
    )

    @Argument(help: "The model file (.swiftdsl).")
    var model: String

    @Option(help: "Data directory: IDX files (gzip or not) or train_x.npy/train_y.npy/test_x.npy/test_y.npy.")
    var data: String?
    @Option(help: "Labeled examples, class-balanced (default 1000).")
    var labels: Int?
    @Option(help: "Training steps (default: the recipe's steps).")
    var steps: Int?
    @Option(help: "Random seed (default: the recipe's seed).")
    var seed: Int?
    @Option(help: "Threads for BLAS and the runner (default: every core of this machine).")
    var threads: Int?
    @Option(help: "Run directory for metrics, checkpoints and summary.json.")
    var out: String?
    @Flag(help: "Continue the run in --out from its last checkpoint.")
    var resume = false
    @Flag(help: "Start a new run in an --out that holds another run (its files are replaced).")
    var overwrite = false
    @Option(
        help: ArgumentHelp(
            "Start from the weights of a checkpoint of another model hash or recipe, on purpose (e.g. to finetune).",
            valueName: "FILE.safetensors"))
    var initFrom: String?
    @Option(help: "Evaluate on the test set (with --validation: the validation set) every N steps.")
    var evalEvery: Int?
    @Option(
        help: ArgumentHelp(
            "Hold out N labeled examples (class-balanced, seeded) as a validation set; RUN_DIR/best.safetensors keeps the "
                + "student with the best validation accuracy, and the test set is evaluated at the end of each phase only.",
            valueName: "N"))
    var validation: Int?
    @Option(help: "With --validation: stop the main phase after P validation evaluations without a better student.")
    var patience: Int?
    @Option(help: "Checkpoint every N steps.")
    var checkpointEvery: Int?
    @Option(
        help: ArgumentHelp(
            "mpl (--teacher-objective uda, the compiled feedback), uda (--teacher-objective uda --feedback off) or "
            + "supervised (student on labels only, no teacher)."))
    var mode: String?
    @Option(
        help: ArgumentHelp(
            "What the teacher learns from besides the feedback: supervised (weakly augmented labeled images), "
            + "randaugment (strongly augmented ones) or uda (supervised + UDA; default: the recipe's teacherObjective)."))
    var teacherObjective: String?
    @Option(help: "Finetuning steps of the student on labels after training.")
    var finetuneSteps: Int?
    @Option(help: "Override the recipe's pseudo labels: hard-argmax, hard-sampled, soft or soft:T.")
    var pseudoLabels: String?
    @Option(
        help: ArgumentHelp(
            "The teacher's feedback: off (the trainer's option: the teacher only distills), dot (dot-product), "
            + "loss-difference, or soft (soft pseudo labels, exact meta-gradient); the last three compile the step."))
    var feedback: String?
    @Option(
        help: ArgumentHelp(
            "Reduced MPL: the large teacher's cached class distributions (NPY float32 [train + test images, classes]).",
            discussion: "Required for a model with teacherInput(.cachedPredictions), refused otherwise; write it with "
                + "`mplc-run cache --checkpoint C.safetensors --out FILE.npy` of the large teacher's model. Give it again "
                + "with --resume (docs/RUNNER.md, \"Reduced MPL\").",
            valueName: "FILE.npy"))
    var teacherCache: String?
    @Option(
        help: "Decay of the student's EMA, evaluated next to the student (0 <= D < 1; 0: none; default: the recipe's).")
    var emaDecay: Double?
    @Option(help: "Random horizontal flips of the training images: auto (on for CIFAR-10 only), yes or no.")
    var flip: String?
    @Flag(help: "Only a summary line at the end.")
    var quiet = false

    func run() throws {
        try reportingFailures {
            let (binary, recipe) = try trainer(
                modelPath: model, pseudoLabels: pseudoLabels, feedback: feedback, runtimeFeedbackOff: true)
            // The run directory keeps the model file and the recipe it trained with (docs/RUNNER.md, "Run directory").
            try exec(binary, ["train"] + runnerArguments + ["--model-file", model, "--recipe", recipe])
        }
    }

    var runnerArguments: [String] {
        var args: [String] = []
        func add(_ flag: String, _ value: CustomStringConvertible?) {
            if let value { args += [flag, value.description] }
        }
        add("--data", data)
        add("--labels", labels)
        add("--steps", steps)
        add("--seed", seed)
        add("--threads", threads ?? ProcessInfo.processInfo.activeProcessorCount)
        add("--out", out)
        add("--eval-every", evalEvery)
        add("--checkpoint-every", checkpointEvery)
        add("--mode", mode)
        add("--teacher-objective", teacherObjective)
        // The trainer checks it against the compiled step (a recompiled one always agrees) and applies `off`.
        add("--feedback", feedback == "dot" ? "dot-product" : feedback)
        add("--finetune-steps", finetuneSteps)
        add("--teacher-cache", teacherCache)
        add("--ema-decay", emaDecay)
        add("--flip", flip)
        add("--init-from", initFrom)
        add("--validation", validation)
        add("--patience", patience)
        if resume { args.append("--resume") }
        if overwrite { args.append("--overwrite") }
        if quiet { args.append("--quiet") }
        return args
    }
}

/// The trainer `mplc-run` of a model, built once into .build-mplc (RunnerBuild.cachedBuild); says on stderr
/// whether it was built or reused, and where.
/// Also returns the resolved recipe, as `mplc check` prints it (overrides applied).
func trainer(
    modelPath: String, pseudoLabels: String? = nil, feedback: String? = nil, runtimeFeedbackOff: Bool = false
) throws -> (binary: String, recipe: String) {
    var model = try Compiler.load(path: modelPath).get()
    try RecipeOverrides.apply(
        pseudoLabels: pseudoLabels, feedback: feedback, runtimeFeedbackOff: runtimeFeedbackOff, to: &model)
    let started = Date()
    let compiled = try Compiler.compile(
        model, regenerateCommand: "mplc train \(modelPath)",
        memoryLimit: ResourceLimits.memoryLimit())
    let (binary, built) = try RunnerBuild.cachedBuild(
        compiled.files, modelName: model.name,
        templatesDirectory: Compiler.templatesDirectory)
    FileHandle.standardError.write(
        Data(
            String(
                format: "mplc: %@ %@ in %.1f s; memory plan: %@\n",
                built ? "built" : "reused", binary,
                Date().timeIntervalSince(started), compiled.memorySummary
            ).utf8))
    return (binary, model.recipe.resolvedLines.map { $0 + "\n" }.joined())
}

/// Runs `mplc-run COMMAND ARGUMENTS` of the model's trainer for its JSON output; a trainer that fails has said
/// why on stderr, and mplc exits with its code.
func trainerOutput(model modelPath: String, _ arguments: [String]) throws -> String {
    let (status, output) = try RunnerBuild.runTrainer(try trainer(modelPath: modelPath).binary, arguments)
    guard status == 0 else { throw ExitCode(status) }
    return output
}

/// Replaces this process with `binary`, so signals, exit codes and the terminal belong to the trainer.
func exec(_ binary: String, _ arguments: [String]) throws -> Never {
    let argv = ([binary] + arguments).map { strdup($0) } + [nil]
    execv(binary, argv)
    throw CompileFailure("error: cannot start \(binary): \(String(cString: strerror(errno)))")
}
