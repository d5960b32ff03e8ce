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
              mplc eval RUN                               test accuracy, confusion matrix of a run's student
              mplc predict RUN shirt.png                  class and probabilities by the run's student
              mplc export RUN -o DIR                      the student as a C library (--format onnx: an ONNX model)
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
    @Option(help: pseudoLabelsFromHelp)
    var pseudoLabelsFrom: String?
    @Option(
        help: ArgumentHelp(
            "Override the recipe's feedback: off, dot (dot-product), loss-difference or soft (soft pseudo labels, "
                + "exact meta-gradient); off compiles the dot product with no feedback as the trainer's default."))
    var feedback: String?
    @Option(
        help: "Processes (MPI ranks) that share each batch of the recipe; every batch must divide by it (default 1).")
    var ranks: Int = 1
    @Flag(help: "Also print where the scratch arena goes: the largest buffers live when the most scratch is.")
    var memoryReport = false

    func run() throws {
        try reportingFailures {
            var model = try Compiler.load(path: self.model).get()
            try RecipeOverrides.apply(
                pseudoLabels: pseudoLabels, pseudoLabelsFrom: pseudoLabelsFrom, feedback: feedback, to: &model)
            let overrides =
                (pseudoLabels.map { " --pseudo-labels \($0)" } ?? "")
                + (pseudoLabelsFrom.map { " --pseudo-labels-from \($0)" } ?? "")
                + (feedback.map { " --feedback \($0)" } ?? "") + (ranks == 1 ? "" : " --ranks \(ranks)")
            let command = "mplc \(self.model)" + overrides + (output.map { " -o \($0)" } ?? "")
            let compiled = try Compiler.compile(
                model, regenerateCommand: command, memoryLimit: ResourceLimits.memoryLimit(), ranks: ranks,
                modelFile: self.model)
            let directory = output ?? "generated/\(model.name)"
            try Compiler.write(compiled.files, to: directory)
            print("wrote \(directory)/{\(compiled.files.map(\.fileName).joined(separator: ","))}")
            print("memory plan: \(compiled.memorySummary)")
            if memoryReport { print(compiled.memoryReport()) }
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
            + "--pseudo-labels-from and --ranks, which change the compiled step, as --feedback dot, loss-difference "
            + "and soft also do. For the trainer's --stop-at, run the trainer that mplc prints it built or reused "
            + "(.build-mplc/<model>-<key>/mplc-run) directly; docs/RUNNER.md has all its options. With --ranks N > 1 "
            + "the trainer is built with mpicc and started as N processes by `mpirun -np N` (Open MPI; Debian: "
            + RunnerBuild.mpiPackages + "); on a cluster, run the built trainer under your own mpirun "
            + "(docs/RUNNER.md, \"Running under MPI\")."
    )

    @Argument(help: "The model file (.swiftdsl); not with --resume, which takes the run directory's copy.")
    var model: String?

    @Option(help: "Data directory: IDX files (gzip or not) or train_x.npy/train_y.npy/test_x.npy/test_y.npy.")
    var data: String?
    @Option(help: "Labeled examples, class-balanced (default 1000).")
    var labels: Int?
    @Option(help: "Training steps (default: the recipe's steps); with --resume, more than the run's extend it.")
    var steps: Int?
    @Option(help: "Random seed (default: the recipe's seed).")
    var seed: Int?
    @Option(
        help: ArgumentHelp(
            "Threads for BLAS and the runner, per rank (default: the cores of this machine / the ranks; on "
                + "--resume, the run's)."))
    var threads: Int?
    @Option(
        help: ArgumentHelp(
            "Train data parallel in N processes (MPI ranks, started by mpirun), each on 1/N of every batch; every "
                + "batch of the recipe must divide by N (default 1: one process, no MPI).",
            valueName: "N"))
    var ranks: Int = 1
    @Option(help: "Run directory for metrics, checkpoints and summary.json.")
    var out: String?
    @Option(
        help: ArgumentHelp(
            "Continue the run in RUN_DIR from its last checkpoint, with the model, recipe overrides and options it "
                + "records (RUN_DIR/options.json); an option given again must agree, but --threads and --steps "
                + "(to extend the run) may change.",
            valueName: "RUN_DIR"))
    var resume: String?
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
                + "randaugment (strongly augmented ones) or uda (supervised + UDA; default: the recipe's teacherObjective)."
        ))
    var teacherObjective: String?
    @Option(help: "Finetuning steps of the student on labels after training.")
    var finetuneSteps: Int?
    @Option(help: "Override the recipe's pseudo labels: hard-argmax, hard-sampled, soft or soft:T.")
    var pseudoLabels: String?
    @Option(help: pseudoLabelsFromHelp)
    var pseudoLabelsFrom: String?
    @Option(
        help: ArgumentHelp(
            "The teacher's feedback: off (the trainer's option: the teacher only distills), dot (dot-product), "
                + "loss-difference, or soft (soft pseudo labels, exact meta-gradient); the last three compile the step."
        ))
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
    // The feedback variants (issue 21, docs/RUNNER.md "Feedback variants"): passed on as given, the trainer checks them.
    @Option(help: "Multiply the teacher's feedback part by W > 0 (default 1: the paper's rule).")
    var feedbackWeight: String?
    @Option(help: "Subtract from h its moving average of decay 0 < D < 1 (the official code's 0.99; default none).")
    var feedbackBaseline: String?
    @Option(help: "Divide the feedback coefficient by the moving average (decay D) of its magnitude (default none).")
    var feedbackNormalise: String?
    @Option(help: "Give the teacher no feedback before main-phase step N (default 0).")
    var feedbackWait: String?
    @Option(help: "Random horizontal flips of the training images: auto (on for CIFAR-10 only), yes or no.")
    var flip: String?
    @Option(
        help: ArgumentHelp(
            "The strong view's ops (RandAugment) draw their magnitude from [0, M], 0 <= M <= 1 (default 1: the full "
                + "ranges, rotations up to 30 degrees, shifts up to 30 %).",
            valueName: "M"))
    var strongMagnitude: String?
    @Flag(
        help: ArgumentHelp(
            "Image folders: resize images of another size than the model's to it (stretched, not cropped) instead of "
                + "refusing them; the run records it, so eval, predict and --resume read images as training did."))
    var resize = false
    @Flag(help: "Only a summary line at the end.")
    var quiet = false

    func run() throws {
        try reportingFailures {
            guard ranks >= 1 else {
                throw CompileFailure("error: --ranks must be at least 1, got \(ranks)", exitCode: 2)
            }
            // Before compiling and building: a missing mpirun is said at once.
            let launcher = ranks > 1 ? try mpirun(ranks: ranks) : []
            if let resume {
                try self.resume(resume, launcher: launcher)
            }
            guard let model else {
                throw CompileFailure("error: mplc train needs a model file, or --resume RUN_DIR", exitCode: 2)
            }
            let (binary, recipe) = try trainer(
                modelPath: model, pseudoLabels: pseudoLabels, pseudoLabelsFrom: pseudoLabelsFrom, feedback: feedback,
                runtimeFeedbackOff: true, ranks: ranks)
            // The run directory keeps the model file, the recipe and the options it trained with (docs/RUNNER.md,
            // "Run directory"); the recipe overrides are recorded for --resume.
            try launch(
                binary, launcher, ["train"] + runnerArguments + ["--model-file", model, "--recipe", recipe] + overrides)
        }
    }

    /// --resume RUN_DIR: the run's copy of its model file compiled with the recipe overrides it records, and its
    /// trainer continuing it; the trainer takes every option not given from RUN_DIR/options.json.
    func resume(_ runDirectory: String, launcher: [String]) throws -> Never {
        for (given, flag) in [
            (model != nil, "a model file"), (out != nil, "--out"), (overwrite, "--overwrite"),
            (initFrom != nil, "--init-from"),
        ] where given {
            throw CompileFailure(
                "error: --resume \(runDirectory) continues the run there with its own model file; do not give \(flag)",
                exitCode: 2)
        }
        let recorded = try RunOptions(runDirectory: runDirectory)
        for (flag, given, was) in [
            ("--pseudo-labels", pseudoLabels, recorded.pseudoLabels),
            ("--pseudo-labels-from", pseudoLabelsFrom, recorded.pseudoLabelsFrom),
            ("--feedback", feedback, recorded.feedback),
        ] {
            if let given, given != (was ?? given) || was == nil {
                throw CompileFailure(
                    "error: \(recorded.path): the run was compiled with \(was.map { "\(flag) \($0)" } ?? "no \(flag)"), "
                        + "but this command says \(flag) \(given) (drop the flag, or start a new run)",
                    exitCode: 1)
            }
        }
        // The rank count is compiled into the model (and so into its hash, which the checkpoint records): a run
        // resumes with the --ranks it was started with, or the trainer refuses the checkpoint.
        let (binary, recipe) = try trainer(
            modelPath: recorded.modelFile, pseudoLabels: recorded.pseudoLabels,
            pseudoLabelsFrom: recorded.pseudoLabelsFrom, feedback: recorded.feedback, runtimeFeedbackOff: true,
            ranks: ranks)
        try launch(
            binary, launcher,
            ["train", "--resume", "--out", runDirectory] + runnerArguments
                + ["--model-file", recorded.modelFile, "--recipe", recipe] + overrides)
    }

    /// Runs the trainer in this process, or as `launcher` (mpirun -np N ...) when there is one.
    func launch(_ binary: String, _ launcher: [String], _ arguments: [String]) throws -> Never {
        if launcher.isEmpty { try exec(binary, arguments) }
        try exec(launcher[0], Array(launcher.dropFirst()) + [binary] + arguments)
    }

    /// The recipe overrides --pseudo-labels and --pseudo-labels-from, passed to the trainer to be recorded in
    /// options.json (they are compiled in); --feedback goes to the trainer with the other options
    /// (runnerArguments), which records it too.
    var overrides: [String] {
        (pseudoLabels.map { ["--pseudo-labels", $0] } ?? [])
            + (pseudoLabelsFrom.map { ["--pseudo-labels-from", $0] } ?? [])
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
        // A resumed run keeps its own thread count unless one is given; ranks share the cores.
        add(
            "--threads", threads ?? (resume == nil ? max(1, ProcessInfo.processInfo.activeProcessorCount / ranks) : nil)
        )
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
        add("--feedback-weight", feedbackWeight)
        add("--feedback-baseline", feedbackBaseline)
        add("--feedback-normalise", feedbackNormalise)
        add("--feedback-wait", feedbackWait)
        add("--flip", flip)
        add("--strong-magnitude", strongMagnitude)
        add("--init-from", initFrom)
        add("--validation", validation)
        add("--patience", patience)
        if overwrite { args.append("--overwrite") }
        if resize { args.append("--resize") }
        if quiet { args.append("--quiet") }
        return args
    }
}

/// What `mplc train --resume RUN_DIR` reads of RUN_DIR/options.json (written by the trainer; untrusted input): the
/// model, whose copy RUN_DIR/<model>.swiftdsl is compiled again, and the recipe overrides it was compiled with.
/// The trainer reads and checks the rest.
struct RunOptions {
    let path: String
    let modelFile: String
    let pseudoLabels: String?
    let pseudoLabelsFrom: String?
    let feedback: String?

    init(runDirectory: String) throws {
        let path = runDirectory + "/options.json"
        func failure(_ cause: String) -> CompileFailure { CompileFailure("error: \(path): \(cause)", exitCode: 1) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw CompileFailure("error: --resume \(runDirectory): no such run directory", exitCode: 1)
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let attributes, attributes[.type] as? FileAttributeType == .typeRegular else {
            throw failure(
                "missing or not a regular file; the run was started by an older mplc (resume it with its trainer: "
                    + "mplc-run train --resume --out \(runDirectory) and its options)")
        }
        guard (attributes[.size] as? Int ?? 0) <= 64 * 1024, let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data), let options = object as? [String: Any]
        else { throw failure("not a JSON object of at most 64 KiB") }
        func string(_ key: String) throws -> String? {
            switch options[key] {
            case nil, is NSNull: return nil
            case let value as String: return value
            default: throw failure("\"\(key)\" is not a string")
            }
        }
        // The model's name (an identifier, docs/DSL.md) names a file in the run directory: nothing else is read.
        guard let model = try string("model"), !model.isEmpty, model.count <= 128,
            model.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        else { throw failure("\"model\" is missing or not a model name") }
        let modelFile = runDirectory + "/" + model + ".swiftdsl"
        guard FileManager.default.fileExists(atPath: modelFile) else {
            throw CompileFailure("error: \(modelFile): the run's copy of its model file is missing", exitCode: 1)
        }
        (self.path, self.modelFile) = (path, modelFile)
        pseudoLabels = try string("pseudo_labels")
        pseudoLabelsFrom = try string("pseudo_labels_from")
        feedback = try string("feedback")
    }
}

/// `mpirun -np N` and the flags this machine needs: `--allow-run-as-root` as root (Open MPI refuses root
/// otherwise), `--oversubscribe` for more ranks than cores (Open MPI refuses that otherwise).
func mpirun(ranks: Int) throws -> [String] {
    guard let mpirun = RunnerBuild.findExecutable("mpirun") else {
        throw CompileFailure(
            "error: --ranks \(ranks) starts the trainer with mpirun, which is not installed "
                + "(Debian: apt-get install \(RunnerBuild.mpiPackages))")
    }
    var command = [mpirun, "-np", String(ranks)]
    if getuid() == 0 { command.append("--allow-run-as-root") }
    if ranks > ProcessInfo.processInfo.activeProcessorCount { command.append("--oversubscribe") }
    return command
}

/// The trainer `mplc-run` of a model, built once into .build-mplc (RunnerBuild.cachedBuild); says on stderr
/// whether it was built or reused, and where.
/// Also returns the resolved recipe, as `mplc check` prints it (overrides applied).
func trainer(
    modelPath: String, pseudoLabels: String? = nil, pseudoLabelsFrom: String? = nil, feedback: String? = nil,
    runtimeFeedbackOff: Bool = false, ranks: Int = 1
) throws -> (binary: String, recipe: String) {
    var model = try Compiler.load(path: modelPath).get()
    try RecipeOverrides.apply(
        pseudoLabels: pseudoLabels, pseudoLabelsFrom: pseudoLabelsFrom, feedback: feedback,
        runtimeFeedbackOff: runtimeFeedbackOff, to: &model)
    let started = Date()
    let compiled = try Compiler.compile(
        model, regenerateCommand: "mplc train \(modelPath)" + (ranks == 1 ? "" : " --ranks \(ranks)"),
        memoryLimit: ResourceLimits.memoryLimit(), ranks: ranks, modelFile: modelPath)
    return (try trainer(compiled, started: started), model.recipe.resolvedLines.map { $0 + "\n" }.joined())
}

/// The trainer of a compiled model (compiled since `started`).
func trainer(_ compiled: CompiledModel, started: Date = Date()) throws -> String {
    let model = compiled.model
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
    return binary
}

/// Runs `mplc-run COMMAND ARGUMENTS` of the model's trainer for its JSON output; a trainer that fails has said
/// why on stderr, and mplc exits with its code.
func trainerOutput(_ trained: TrainedModel, _ arguments: [String]) throws -> String {
    let binary = try trained.compiled.map { try trainer($0) } ?? trainer(modelPath: trained.modelPath).binary
    let (status, output) = try RunnerBuild.runTrainer(binary, arguments)
    guard status == 0 else { throw ExitCode(status) }
    return output
}

/// The first argument of eval, predict and export, and how it is read (TrainedModel).
struct TrainedModelArguments: ParsableArguments {
    @Argument(help: "The run directory, or with --checkpoint the model file (.swiftdsl) the run trained.")
    var runOrModel: String
    @Option(help: ArgumentHelp("A checkpoint of the model file.", valueName: "FILE.safetensors"))
    var checkpoint: String?
    @Flag(help: "The run directory's best.safetensors (the best validation accuracy) instead of its last checkpoint.")
    var best = false

    func load() throws -> TrainedModel { try TrainedModel(runOrModel, checkpoint: checkpoint, best: best) }
}

/// What eval, predict and export read from their first argument: a run directory (its copy of the model file, and
/// its checkpoint.safetensors or, with --best, best.safetensors), or a model file with --checkpoint.
struct TrainedModel {
    var modelPath: String
    var checkpoint: String
    /// The run directory's model, compiled to check it against the checkpoint; nil for a model file.
    var compiled: CompiledModel?
    /// The run directory's checkpoint metadata (its data and teacher cache); empty for a model file.
    var metadata: [String: String] = [:]

    init(_ argument: String, checkpoint: String?, best: Bool) throws {
        var isDirectory: ObjCBool = false
        let directory =
            FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) && isDirectory.boolValue
        if let checkpoint {
            if directory {
                throw CompileFailure(
                    "error: \(argument) is a folder: give a run directory alone (it has its checkpoint), or a model "
                        + "file with --checkpoint", exitCode: 2)
            }
            if best {
                throw CompileFailure(
                    "error: --best takes best.safetensors of a run directory; with a model file, give that file as "
                        + "--checkpoint", exitCode: 2)
            }
            (modelPath, self.checkpoint) = (argument, checkpoint)
            return
        }
        guard directory else {
            throw CompileFailure(
                "error: \(argument): not a run directory; give a run directory, or a model file with --checkpoint",
                exitCode: 2)
        }
        let run = try RunDirectory(path: argument, best: best, memoryLimit: ResourceLimits.memoryLimit())
        if let note = run.note { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        (modelPath, self.checkpoint, compiled, metadata) = (run.modelFile, run.checkpoint, run.compiled, run.metadata)
    }

    /// The class names the checkpoint records (an image-folder run's), nil if none; a model file's checkpoint is
    /// read for them.
    func classNames(count: Int) throws -> [String]? {
        let metadata = compiled == nil ? try CheckpointFile(path: checkpoint).metadata : metadata
        return try Evaluation.classNames(metadata: metadata, checkpoint: checkpoint, count: count)
    }
}

/// Replaces this process with `binary`, so signals, exit codes and the terminal belong to the trainer.
func exec(_ binary: String, _ arguments: [String]) throws -> Never {
    let argv = ([binary] + arguments).map { strdup($0) } + [nil]
    execv(binary, argv)
    throw CompileFailure("error: cannot start \(binary): \(String(cString: strerror(errno)))")
}

/// --pseudo-labels-from of `mplc` and `mplc train`.
let pseudoLabelsFromHelp = ArgumentHelp(
    "Override the recipe's pseudoLabelsFrom: strong-view (MPL.md's rule) or weak-view (FixMatch's: the teacher "
        + "labels the weakly augmented image, the student learns the label on the strong one).")
