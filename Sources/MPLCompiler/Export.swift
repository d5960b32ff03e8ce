// `mplc export`: the trained student of a run as a standalone C inference library (docs/EXPORT.md). The student's
// tensors come from the checkpoint, BatchNorm is folded (MPLStep's InferenceNetwork), the forward pass goes through
// the same lowering and memory plan as the training step, on the caller's thread only.

import MPLEmitC
import MPLIR
import MPLLower
import MPLModel
import MPLStep

/// What `mplc export` wrote, and what to tell the user about it.
public struct ExportedLibrary {
    /// <name>.h and <name>.c.
    public var files: [(fileName: String, contents: String)]
    public var network: InferenceNetwork
    /// The size of the weights array, in floats.
    public var weightFloats: Int
}

extension Compiler {
    /// The largest batch of an exported forward pass (`--batch`).
    public static let maxExportBatch = 65_536

    /// The student of `model` with the weights of `checkpoint` (with `ema`, its `ema/` copies: the EMA of the
    /// student) as <name>.h and <name>.c, for batches of `batch` images.
    public static func export(
        _ model: Model, checkpoint path: String, ema: Bool, batch: Int, regenerateCommand: String,
        templatesDirectory: String = Compiler.templatesDirectory
    ) throws -> ExportedLibrary {
        guard (1...maxExportBatch).contains(batch) else {
            throw CompileFailure("error: --batch must be in [1, \(maxExportBatch)]; got \(batch)")
        }
        let network = InferenceNetwork(model: model)
        let student = try studentTensors(of: model, network: network, checkpoint: path, ema: ema)

        let entry = network.entryPoint(name: "mplc_forward", batch: batch)
        for value in entry.graph.values where entry.graph.shape(of: value).count > ResourceLimits.maxValueElements {
            throw CompileFailure(
                "error: a batch of \(batch) needs tensors of more than 2^44 elements; export a smaller batch")
        }
        let program = Program(
            modelName: model.name, regenerateCommand: regenerateCommand, state: network.tensors,
            entryPoints: [entry], macros: [])
        let kernels = Lowering.lower(program, options: LoweringOptions(splitBetweenThreads: false))
        let origin = (ema ? "the EMA of the student (ema/ tensors) in " : "the student in ") + path
        let files: [(fileName: String, contents: String)]
        do {
            files = try CEmitter.emitExport(
                kernels, weights: network.weights(from: student), origin: origin,
                templatesDirectory: templatesDirectory)
        } catch let error as EmitError {
            throw CompileFailure("error: \(error.description)")
        }
        return ExportedLibrary(files: files, network: network, weightFloats: kernels.state.floats)
    }

    /// The student's tensors (with `ema`, the EMA's) that `network` reads, from the checkpoint at `path`, checked
    /// (CheckpointFile) and by their checkpoint names.
    static func studentTensors(
        of model: Model, network: InferenceNetwork, checkpoint path: String,
        ema: Bool
    ) throws -> [String: [Float]] {
        let checkpoint = try CheckpointFile(path: path)
        if ema, checkpoint.metadata["ema_updates"] == "0" {
            throw CheckpointFile.failure(
                path, "the EMA of the student is still empty (0 updates); export the student without --ema")
        }
        var student: [String: [Float]] = [:]
        for info in network.checkpointTensors {
            do {
                student[info.name] = try checkpoint.tensor(info, stored: ema ? "ema/" + info.name : nil)
            } catch var failure as CompileFailure {
                // The likeliest cause: another model's run (a renamed model file may still fit, so it is no error).
                if let other = checkpoint.metadata["model"], other != model.name {
                    failure.description +=
                        " (it is a checkpoint of the model \(CSyntax.commentText(other)), not \(model.name))"
                }
                throw failure
            }
        }
        return student
    }
}
