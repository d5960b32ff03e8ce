// A run directory as `mplc eval`, `mplc predict` and `mplc export` read it (docs/RUNNER.md, "Run directory"): the
// checkpoint (or best.safetensors), the copy of the model file under the model's name and recipe.txt, the recipe it
// trained with. The copy must be the model the checkpoint was trained from: it has recipe.txt's recipe and the bytes
// whose hash the checkpoint records, and compiled with the run's recipe overrides its state table has the
// checkpoint's tensors (names, shapes, dtypes); else the directory is refused naming the file that does not fit.
// The generated code's hash (MPLC_MODEL_HASH) may differ: a newer mplc generates other C for the same model (a
// faster kernel), and the weights still mean the same (a note on stderr says so). A checkpoint of an older runner
// records no hash of the model file: then the model hash must match, as it cannot tell an edit from a new mplc.

import Foundation
import MPLEmitC
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
    /// A line for stderr when the run was trained by another mplc build (another model hash), else nil.
    public var note: String?

    public init(path: String, best: Bool, memoryLimit: ResourceLimits.Limit = ResourceLimits.unlimited) throws {
        checkpoint = path + "/" + (best ? "best.safetensors" : "checkpoint.safetensors")
        if best, !FileManager.default.fileExists(atPath: checkpoint) {
            throw CompileFailure(
                "error: \(checkpoint): missing: --best needs a run trained with --validation N")
        }
        let file = try CheckpointFile(path: checkpoint)
        metadata = file.metadata
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
            pseudoLabels: pseudoLabels, pseudoLabelsFrom: Self.override(lines, "pseudoLabelsFrom"),
            feedback: pseudoLabels?.hasPrefix("soft") == true ? nil : Self.override(lines, "feedback"), to: &model)
        // A setting mplc gained after the run (pseudoLabelsFrom) is absent from an older run's recipe.txt; at its
        // default it is what that mplc did, so it is left out of the comparison.
        let recorded = Set(lines.map { $0.prefix(while: { $0 != " " }) })
        let expected = model.recipe.resolvedLines.filter {
            recorded.contains($0.prefix(while: { $0 != " " })) || !$0.hasSuffix(" (default)")
        }
        if let differ = zip(lines, expected).first(where: { $0 != $1 })
            ?? (lines.count == expected.count ? nil : ("(\(lines.count) lines)", ""))
        {
            throw CompileFailure(
                "error: \(recipeFile) does not match \(modelFile): '\(differ.0)' where the model file has "
                    + "'\(differ.1)'; was one of them edited after the run?")
        }
        // Newer runners record the hash of the model file's bytes: an edit of the copy that keeps every tensor's
        // shape (ReLU to GELU) would pass the layout check below. Older checkpoints need the same model hash instead.
        let fileHash = metadata["model_file_hash"]
        let copyHash = Self.fnv1a64(FileManager.default.contents(atPath: modelFile) ?? Data())
        if let fileHash, fileHash != copyHash {
            throw CompileFailure(
                "error: \(modelFile) is not the model \(checkpoint) was trained from (the copy's bytes have hash "
                    + "\(copyHash), the checkpoint records \(CSyntax.commentText(String(fileHash.prefix(32))))): was "
                    + "the copy edited after the run? Give the model file the run trained, with --checkpoint "
                    + "\(checkpoint)")
        }
        // A data-parallel run's model was compiled for its rank count (part of the hash); older checkpoints have none.
        guard let ranks = Int(metadata["ranks"] ?? "1"), (1...65536).contains(ranks) else {
            throw CompileFailure("error: \(checkpoint): its metadata \"ranks\" is not a rank count")
        }
        compiled = try Compiler.compile(
            model, regenerateCommand: "mplc train \(modelFile)", memoryLimit: memoryLimit, ranks: ranks,
            modelFile: modelFile)
        if let difference = file.layoutDifference(from: compiled.kernels.state.tensors.map(\.info)) {
            throw CompileFailure(
                "error: \(modelFile) is not the model \(checkpoint) was trained from (\(difference)): was the copy "
                    + "edited after the run? Give the model file the run trained, with --checkpoint \(checkpoint)")
        }
        let header = compiled.files.first { $0.fileName == "model.h" }?.contents ?? ""
        let hash = header.split(separator: "\n").first { $0.hasPrefix("#define MPLC_MODEL_HASH ") }
            .map { $0.dropFirst("#define MPLC_MODEL_HASH ".count).trimmingCharacters(in: ["\""]) }
        guard metadata["model_hash"] != hash else { return }
        let hashes =
            "model hash \(metadata["model_hash"].map { CSyntax.commentText(String($0.prefix(16))) } ?? "none") in "
            + "the checkpoint, \(hash.map { String($0.prefix(16)) } ?? "none") compiled now"
        guard fileHash != nil else {
            throw CompileFailure(
                "error: \(modelFile) is not the model \(checkpoint) was trained from (\(hashes)): the copy was edited, or "
                    + "mplc changed since the run (whose checkpoint records no hash of its model file to tell which); "
                    + "to use the weights anyway give a model file and --checkpoint \(checkpoint)")
        }
        note = "mplc: note: \(checkpoint) was trained by another mplc build (\(hashes)); its model file and tensors fit"
    }

    /// FNV-1a, 64 bits, as the runner writes it ("fnv1a64:" and 16 hex digits; util.c).
    static func fnv1a64(_ bytes: Data) -> String {
        let hash = bytes.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let hex = String(hash, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
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
            if let view = RecipeOverrides.viewValues.first(where: { "." + $0.view.rawValue == value }) {
                return view.text
            }
            guard value.hasPrefix(".soft(temperature: "), value.hasSuffix(")") else { return nil }
            return "soft:" + value.dropFirst(".soft(temperature: ".count).dropLast()
        }
    }
}
