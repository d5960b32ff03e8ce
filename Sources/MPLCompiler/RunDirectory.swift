// A run directory as `mplc eval`, `mplc predict` and `mplc export` read it (docs/RUNNER.md, "Run directory"): the
// checkpoint (or best.safetensors), the copy of the model file under the model's name and recipe.txt, the recipe it
// trained with. The copy must be the model the checkpoint was trained from: compiled with the run's recipe overrides
// it has the checkpoint's model hash, or the directory is refused naming the file that does not fit.

import Foundation
import MPLModel

public struct RunDirectory {
    /// checkpoint.safetensors, or best.safetensors.
    public var checkpoint: String
    /// `<model name>.swiftdsl` in the directory.
    public var modelFile: String
    /// The copy, compiled with the recipe overrides recipe.txt records (`mplc train --pseudo-labels/--feedback`).
    public var compiled: CompiledModel
    /// The checkpoint's metadata: where the run's data ("data") and teacher cache ("teacher_cache") are.
    public var metadata: [String: String]

    public init(path: String, best: Bool, memoryLimit: ResourceLimits.Limit = ResourceLimits.unlimited) throws {
        checkpoint = path + "/" + (best ? "best.safetensors" : "checkpoint.safetensors")
        if best, !FileManager.default.fileExists(atPath: checkpoint) {
            throw CompileFailure(
                "error: \(checkpoint): missing: --best needs a run trained with --validation N")
        }
        metadata = try CheckpointFile(path: checkpoint).metadata
        // The name comes from a file: only a plain identifier may become a path.
        guard let name = metadata["model"], let first = name.unicodeScalars.first,
            name.unicodeScalars.count <= 128, first == "_" || CharacterSet.letters.contains(first),
            name.unicodeScalars.allSatisfy({ $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) })
        else { throw CompileFailure("error: \(checkpoint): its metadata names no model (\"model\")") }
        modelFile = path + "/" + name + ".swiftdsl"
        let recipeFile = path + "/recipe.txt"
        for file in [modelFile, recipeFile] where !FileManager.default.fileExists(atPath: file) {
            throw CompileFailure(
                "error: \(file): missing: the run directory has no copy of the model file and its recipe (a run of an "
                    + "older mplc, or of mplc-run without --model-file); give the model file and --checkpoint \(checkpoint)"
            )
        }
        var model = try Compiler.load(path: modelFile).get()
        let recipe = try String(contentsOfFile: recipeFile, encoding: .utf8)
        let lines = recipe.split(separator: "\n").map(String.init)
        // With soft pseudo labels the step descends the exact meta-gradient whatever `feedback` says, and
        // `mplc train --feedback` refuses a hard rule beside them: the line is then left to the comparison below.
        let pseudoLabels = Self.override(lines, "pseudoLabels")
        try RecipeOverrides.apply(
            pseudoLabels: pseudoLabels,
            feedback: pseudoLabels?.hasPrefix("soft") == true ? nil : Self.override(lines, "feedback"), to: &model)
        if let differ = zip(lines, model.recipe.resolvedLines).first(where: { $0 != $1 })
            ?? (lines.count == model.recipe.resolvedLines.count ? nil : ("(\(lines.count) lines)", ""))
        {
            throw CompileFailure(
                "error: \(recipeFile) does not match \(modelFile): '\(differ.0)' where the model file has "
                    + "'\(differ.1)'; was one of them edited after the run?")
        }
        // A data-parallel run's model was compiled for its rank count (part of the hash); older checkpoints have none.
        guard let ranks = Int(metadata["ranks"] ?? "1"), (1...65536).contains(ranks) else {
            throw CompileFailure("error: \(checkpoint): its metadata \"ranks\" is not a rank count")
        }
        compiled = try Compiler.compile(
            model, regenerateCommand: "mplc train \(modelFile)", memoryLimit: memoryLimit, ranks: ranks,
            modelFile: modelFile)
        let header = compiled.files.first { $0.fileName == "model.h" }?.contents ?? ""
        let hash = header.split(separator: "\n").first { $0.hasPrefix("#define MPLC_MODEL_HASH ") }
            .map { $0.dropFirst("#define MPLC_MODEL_HASH ".count).trimmingCharacters(in: ["\""]) }
        guard let stored = metadata["model_hash"], stored == hash else {
            throw CompileFailure(
                "error: \(modelFile) is not the model \(checkpoint) was trained from (model hash "
                    + "\(metadata["model_hash"].map { String($0.prefix(16)) } ?? "none") in the checkpoint, "
                    + "\(hash.map { String($0.prefix(16)) } ?? "none") compiled now): the copy was edited, or mplc "
                    + "changed since the run; to use the weights anyway give a model file and --checkpoint \(checkpoint)"
            )
        }
    }

    /// The `mplc train` override that gives recipe.txt's line `key VALUE` ("pseudoLabels .soft(temperature: 2.0)"),
    /// or nil for a value the override cannot write (the comparison with the copy then names it). A default is
    /// applied too: `--pseudo-labels hard-argmax` over a file that says `.soft` records a default.
    static func override(_ lines: [String], _ key: String) -> String? {
        guard let line = lines.first(where: { $0.hasPrefix(key + " ") }) else { return nil }
        var value = line.dropFirst(key.count + 1)
        if value.hasSuffix(" (default)") { value = value.dropLast(" (default)".count) }
        switch value {
        case ".hard(.argmax)": return "hard-argmax"
        case ".hard(.sampled)": return "hard-sampled"
        case ".dotProduct": return "dot-product"
        case ".lossDifference": return "loss-difference"
        default:
            guard value.hasPrefix(".soft(temperature: "), value.hasSuffix(")") else { return nil }
            return "soft:" + value.dropFirst(".soft(temperature: ".count).dropLast()
        }
    }
}
