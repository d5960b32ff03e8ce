// The pipeline from a model file to files on disk and a runnable trainer. The CLI is a thin shell over this.

import Foundation
import MPLEmitC
import MPLFrontend
import MPLIR
import MPLLower
import MPLModel
import MPLStep

/// A failure the user must see: already rendered (diagnostics with source and caret, or a plain message).
public struct CompileFailure: Error, CustomStringConvertible {
    public var description: String
    public var exitCode: Int32
    /// The model is valid but needs more memory than the limit, or sizes beyond 64 bits (ResourceLimits).
    public var exceedsResources: Bool
    public init(_ description: String, exitCode: Int32 = 1, exceedsResources: Bool = false) {
        self.description = description
        self.exitCode = exitCode
        self.exceedsResources = exceedsResources
    }
}

/// Everything the compiler produced for one model.
public struct CompiledModel {
    public var model: Model
    public var program: Program
    public var kernels: KernelProgram
    /// model.h, model.c, mplc_runtime.h, model.ir and model.json, in that order.
    public var files: [(fileName: String, contents: String)]

    /// Peak scratch of the plan next to the naive sum (one buffer per value), in bytes.
    public var memorySummary: String {
        let state = kernels.state.floats * 4
        return "state \(bytes(state)), scratch \(bytes(kernels.scratchBytes)) "
            + "(naive sum of scratch buffers \(bytes(kernels.naiveScratchBytes)), "
            + String(format: "%.1f%%", 100 * Double(kernels.scratchBytes) / Double(max(kernels.naiveScratchBytes, 1)))
            + ")"
    }
}

extension CompiledModel {
    /// Where the scratch arena goes (`mplc --memory-report`): for each entry point, the kernel at which the most
    /// scratch is live, and the `top` largest buffers live there with what they hold and how long they live.
    public func memoryReport(top: Int = 15) -> String {
        var lines: [String] = []
        for function in kernels.entryPoints {
            let plan = function.plan
            let live = plan.liveFloatsByKernel(kernelCount: function.kernels.count)
            guard let peak = live.indices.max(by: { (live[$0], $1) < (live[$1], $0) }), live[peak] > 0 else {
                continue
            }
            func kernelName(_ index: Int) -> String {
                index < function.kernels.count ? function.kernels[index].name : "final copies"
            }
            lines.append(
                "\(function.name): \(function.kernels.count) kernels, scratch arena \(bytes(plan.scratchFloats * 4)) "
                    + "(naive sum \(bytes(plan.naiveScratchFloats * 4))); most live at once: \(bytes(live[peak] * 4)) "
                    + "during kernel \(peak) \(kernelName(peak))")
            let buffers = plan.buffersLive(atKernel: peak)
            // What is live at the peak, by the pass that computed it: forward values kept for the backward pass
            // show up as `fwd`.
            var byKind: [String: (floats: Int, count: Int)] = [:]
            for buffer in buffers {
                let kind =
                    buffer.temporaryOf != nil
                    ? "kernel temporaries"
                    : buffer.value.flatMap { function.graph.origin(of: $0)?.pass.rawValue } ?? "staging"
                byKind[kind, default: (0, 0)].floats += buffer.floats
                byKind[kind, default: (0, 0)].count += 1
            }
            lines.append(
                "  live there, by pass: "
                    + byKind.sorted { ($0.value.floats, $0.key) > ($1.value.floats, $1.key) }.map {
                        "\($0.key) \(bytes($0.value.floats * 4)) in \($0.value.count)"
                    }.joined(separator: ", "))
            lines.append("  the \(min(top, buffers.count)) largest of its \(buffers.count) buffers:")
            for buffer in buffers.prefix(top) {
                let what: String
                if let value = buffer.value {
                    let origin = function.graph.origin(of: value).map { "  \($0)" } ?? ""
                    what =
                        "\(value) = \(function.graph.op(of: value).mnemonic) \(function.graph.shape(of: value))\(origin)"
                } else {
                    what = buffer.label
                }
                lines.append(
                    "    \(bytes(buffer.floats * 4).padding(toLength: 10, withPad: " ", startingAt: 0)) \(what); "
                        + "kernels \(buffer.firstKernel) \(kernelName(buffer.firstKernel)) to \(buffer.lastKernel) "
                        + kernelName(buffer.lastKernel))
            }
        }
        return lines.joined(separator: "\n")
    }
}

func bytes(_ n: Int) -> String {
    if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / Double(1 << 10)) }
    return "\(n) B"
}

public enum Compiler {
    /// Parses and checks a model file; on failure the rendered diagnostics of every error.
    public static func load(path: String) -> Result<Model, CompileFailure> {
        switch Frontend.parseFile(path: path) {
        case .success(let model):
            return .success(model)
        case .failure(let diagnostics):
            let source = (try? Frontend.readSource(path: path).get()) ?? ""
            return .failure(CompileFailure(Frontend.render(diagnostics, source: source, fileName: path)))
        }
    }

    /// Builds the program of `model`, lowers it and renders every output file. The arenas must fit in
    /// `memoryLimit`: a cheap estimate is checked before lowering (so an absurd model never reaches the expensive
    /// passes or their size arithmetic), the exact sizes after it, before anything is emitted.
    /// `ranks`: the processes that share each global batch (data parallelism over MPI, docs/STEP.md "Ranks");
    /// every batch of the recipe must divide by it. `modelFile` names the model in that error.
    public static func compile(
        _ model: Model, regenerateCommand: String,
        templatesDirectory: String = Compiler.templatesDirectory,
        options: LoweringOptions = LoweringOptions(),
        memoryLimit: ResourceLimits.Limit = ResourceLimits.unlimited,
        ranks: Int = 1, modelFile: String? = nil
    ) throws -> CompiledModel {
        try checkRanks(ranks, model: model, modelFile: modelFile ?? model.name)
        let program = StepBuilder(model: model, ranks: ranks).program(regenerateCommand: regenerateCommand)
        try ResourceLimits.checkBeforeLowering(program, model: model, limit: memoryLimit)
        let kernels = Lowering.lower(program, options: options)
        try ResourceLimits.check(kernels, model: model, limit: memoryLimit)
        var files = try CEmitter.emit(kernels, templatesDirectory: templatesDirectory)
        files.append(("model.ir", irDump(program, kernels)))
        files.append(("model.json", ReferenceSpec.json(for: model)))
        return CompiledModel(model: model, program: program, kernels: kernels, files: files)
    }

    /// Each rank takes an equal share of every global batch of the recipe, so each must divide by `ranks`.
    static func checkRanks(_ ranks: Int, model: Model, modelFile: String) throws {
        guard ranks >= 1 else {
            throw CompileFailure("error: --ranks must be at least 1, got \(ranks)", exitCode: 2)
        }
        let recipe = model.recipe
        // The unlabeled batch μ·B_l divides whenever B_l does.
        for (name, batch) in [("labeled batch", recipe.labeledBatch), ("finetune batch", recipe.finetune.batch)]
        where batch % ranks != 0 {
            throw CompileFailure(
                "error: \(modelFile): the \(name) \(batch) does not divide over \(ranks) ranks; choose a rank count "
                    + "that divides every batch of the recipe, or change the batch")
        }
    }

    /// The IR of every entry point before lowering, then after it with its kernels in order, for readers and for
    /// `git diff` between commits. Each equation ends with its origin (layer and pass); the lowered graphs' ids are
    /// the ones of model.c (buffers tN, elements vN, kernel comments), and the kernels have model.c's names.
    static func irDump(_ program: Program, _ kernels: KernelProgram) -> String {
        var text =
            "// IR of the model \"\(CSyntax.commentText(program.modelName))\", generated by mplc. Regenerate with:\n"
            + "//   \(CSyntax.commentText(program.regenerateCommand))\n"
        for entry in program.entryPoints {
            text += "\nfunc \(entry.name) {\n" + entry.graph.text + "}\n"
        }
        text += "\n// After lowering: the graphs model.c computes (its ids), then its kernels in the order they run.\n"
        for function in kernels.entryPoints {
            text +=
                "\nlowered func \(function.name) {\n" + function.graph.text
                + function.kernels.map { $0.summary + "\n" }.joined() + "}\n"
        }
        return text
    }

    /// Writes the files into `directory`, each through a temporary file and a rename, so that a reader never
    /// sees half a file and a failed run leaves the previous output intact.
    public static func write(_ files: [(fileName: String, contents: String)], to directory: String) throws {
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in files {
                let url = URL(fileURLWithPath: directory).appendingPathComponent(file.fileName)
                try Data(file.contents.utf8).write(to: url, options: .atomic)
            }
        } catch {
            throw CompileFailure("error: cannot write to \(directory): \(error.localizedDescription)")
        }
    }
}

extension Compiler {
    /// Templates/ of this checkout; `MPLC_TEMPLATES` overrides it (an installed mplc, or tests of other templates).
    public static var templatesDirectory: String {
        ProcessInfo.processInfo.environment["MPLC_TEMPLATES"] ?? CEmitter.defaultTemplatesDirectory
    }
}
