// `mplc export`: a lowered forward pass and its weights → <name>.h and <name>.c, a standalone inference library
// (Templates/export.h.mustache and export.c.mustache; docs/EXPORT.md).

import Foundation
import MPLIR
import MPLLower

extension CEmitter {
    /// The library of `program`, whose one entry point maps the pointer argument `x` ([batch, ...]) to `logits`
    /// ([batch, classes]) with the program's state as constant weights. `weights` holds every state tensor's
    /// values by name; `origin` says where they came from (a comment line of both files). Files are named after
    /// the model, as a C identifier, which also prefixes every public name.
    public static func emitExport(
        _ program: KernelProgram, weights: [String: [Float]], origin: String,
        templatesDirectory: String = defaultTemplatesDirectory
    ) throws -> [(fileName: String, contents: String)] {
        guard program.entryPoints.count == 1, let function = program.entryPoints.first,
            function.bindings.argumentInputs.count == 1, function.bindings.argumentOutputs.count == 1,
            !function.bindings.usesIO, !function.bindings.writesState
        else { throw EmitError(description: "an exported library has one entry point from x to logits") }
        let x = function.bindings.argumentInputs[0].shape
        let logits = function.bindings.argumentOutputs[0].shape
        let batch = x[0]
        let inputFloats = x.count / max(batch, 1)
        let classes = logits[1]
        let (height, width, channels) = x.rank == 4 ? (x[1], x[2], x[3]) : (1, 1, inputFloats)
        // The forward pass's scratch, then one padded batch of images and its logits (the last call of a predict).
        let aligned = { (n: Int) in (n + arenaAlignment - 1) / arenaAlignment * arenaAlignment }
        let planFloats = aligned(function.plan.scratchFloats)
        let stagedImages = aligned(batch * inputFloats)
        let scratchFloats = planFloats + stagedImages + aligned(batch * classes)
        guard scratchFloats <= Int(Int32.max) else {
            throw EmitError(
                description: "the scratch of a batch of \(batch) is \(scratchFloats) floats, more than a C int "
                    + "holds; export a smaller batch")
        }

        let prefix = CSyntax.identifier(program.modelName)
        var writer = FunctionWriter(function: function)
        writer.isStatic = true
        let common: [String: Any] = [
            "fileName": prefix,
            "prefix": prefix,
            "modelName": CSyntax.commentText(program.modelName),
            "regenerateCommand": CSyntax.commentText(program.regenerateCommand),
            "origin": CSyntax.commentText(origin),
            "height": height, "width": width, "channels": channels, "inputFloats": inputFloats, "classes": classes,
            "batch": batch, "scratchFloats": scratchFloats,
        ]
        let header = common.merging(["guard": prefix.uppercased() + "_H"]) { a, _ in a }
        let source = common.merging([
            "runtime": try TemplateFile.read("runtime/mplc_runtime.h", in: templatesDirectory),
            "stateFloats": max(program.state.floats, 1),
            "weightLines": try weightLines(program.state, weights),
            "kernels": function.kernels.enumerated().map { writer.kernelDefinition($0.offset, $0.element) },
            "forward": writer.entryDefinition,
            "forwardName": function.name,
            "planFloats": planFloats,
            "stagedImages": stagedImages,
        ]) { a, _ in a }
        let headerTemplate = try TemplateFile.parse("export.h.mustache", in: templatesDirectory)
        let sourceTemplate = try TemplateFile.parse("export.c.mustache", in: templatesDirectory)
        return [(prefix + ".h", headerTemplate.render(header)), (prefix + ".c", sourceTemplate.render(source))]
    }
}

/// The initialiser of the weights array: each tensor under a comment naming it, 8 floats a line, and zeros where
/// the arena's alignment leaves a gap.
private func weightLines(_ state: ArenaLayout, _ weights: [String: [Float]]) throws -> [String] {
    var lines: [String] = []
    var position = 0
    for tensor in state.tensors {
        guard let values = weights[tensor.name], values.count == tensor.count else {
            throw EmitError(description: "no values, or not \(tensor.count), for the weights \(tensor.name)")
        }
        if tensor.offset > position {
            lines.append(Array(repeating: "0.0f", count: tensor.offset - position).joined(separator: ", ") + ",")
        }
        lines.append(CSyntax.comment(["\(tensor.name) \(tensor.shape.dims)"]))
        for start in stride(from: 0, to: values.count, by: 8) {
            lines.append(
                values[start..<min(start + 8, values.count)].map { CSyntax.floatLiteral(Double($0)) }
                    .joined(separator: ", ") + ",")
        }
        position = tensor.offset + tensor.count
    }
    if lines.isEmpty { lines.append("0.0f /* no weights */") }
    return lines
}
