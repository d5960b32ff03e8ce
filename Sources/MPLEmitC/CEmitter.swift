// MPLEmitC: kernel program + Templates/*.mustache → model.h, model.c and the runtime header it includes (docs/ABI.md).
// The templates hold the files' fixed text and layout; this module fills in tables, sizes and one
// function per kernel. Every list is rendered in program order (no Dictionary or Set is iterated), so
// the output is byte-identical on every run.

import Foundation
import MPLIR
import MPLLower
import Mustache

public struct EmitError: Error, CustomStringConvertible {
    public var description: String
}

public enum CEmitter {
    /// The repository's `Templates/` directory, found from this source file (for tests and as the default).
    public static var defaultTemplatesDirectory: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // MPLEmitC
            .deletingLastPathComponent()  // Sources
            .deletingLastPathComponent()  // the repository
            .appendingPathComponent("Templates").path
    }

    /// Lowers `program` and emits it.
    public static func emit(
        _ program: Program, options: LoweringOptions = LoweringOptions(),
        templatesDirectory: String = defaultTemplatesDirectory
    ) throws -> [(fileName: String, contents: String)] {
        try emit(Lowering.lower(program, options: options), templatesDirectory: templatesDirectory)
    }

    /// `model.h`, `model.c` and `mplc_runtime.h`: the runtime's helpers (Templates/runtime), which model.c
    /// includes, copied beside it so that the folder builds on its own. model.h's MPLC_MODEL_HASH is `modelHash`
    /// of the three.
    public static func emit(
        _ program: KernelProgram,
        templatesDirectory: String = defaultTemplatesDirectory
    ) throws -> [(fileName: String, contents: String)] {
        let templates = try Templates(directory: templatesDirectory)
        let context = try ProgramContext(program)
        let source = templates.source.render(context.source)
        func header(hash: String) -> String {
            templates.header.render(
                context.header.merging(["modelHash": CSyntax.stringLiteral(hash)]) { _, new in new })
        }
        let hash = modelHash(header: header(hash: ""), source: source, runtime: templates.runtime)
        return [("model.h", header(hash: hash)), ("model.c", source), (runtimeFileName, templates.runtime)]
    }

    /// The runtime header model.c includes, written beside it.
    public static let runtimeFileName = "mplc_runtime.h"

    /// What MPLC_MODEL_HASH names: the SHA-256 of model.c, model.h and the runtime header without the lines that
    /// depend on how the model was compiled rather than on what was compiled (the command after "Regenerate
    /// with:", and the MPLC_MODEL_HASH line itself). The same as
    /// `sed '/Regenerate with:$/{n;d}; /^#define MPLC_MODEL_HASH /d' model.c model.h mplc_runtime.h | sha256sum`.
    public static func modelHash(header: String, source: String, runtime: String) -> String {
        var hasher = SHA256.Hasher()
        for text in [source, header, runtime] {
            var skipNext = false
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(
                text.hasSuffix("\n") ? 1 : 0)
            {
                defer { skipNext = line.hasSuffix("Regenerate with:") }
                if skipNext || line.hasPrefix("#define MPLC_MODEL_HASH ") { continue }
                hasher.update(line.utf8)
                hasher.update([UInt8(ascii: "\n")])
            }
        }
        return hasher.finalizeHex()
    }

    /// A debug harness (`harness.c`, built with model.c): `harness ENTRY FILE...` reads each pointer argument of
    /// ENTRY except scratch from a raw little-endian f32 file, calls ENTRY, and writes them all back.
    public static func emitHarness(_ program: KernelProgram, templatesDirectory: String = defaultTemplatesDirectory)
        throws -> String
    {
        let templates = try Templates(directory: templatesDirectory)
        return templates.harness.render(try ProgramContext(program).harness)
    }
}

private struct Templates {
    var header: MustacheTemplate
    var source: MustacheTemplate
    var harness: MustacheTemplate
    /// The runtime header (`runtimeFileName`), included by model.c and pasted into exported libraries.
    var runtime: String

    init(directory: String) throws {
        header = try TemplateFile.parse("model.h.mustache", in: directory)
        source = try TemplateFile.parse("model.c.mustache", in: directory)
        harness = try TemplateFile.parse("harness.c.mustache", in: directory)
        runtime = try TemplateFile.read("runtime/mplc_runtime.h", in: directory)
    }
}

/// Reading the files of Templates/.
enum TemplateFile {
    static func read(_ name: String, in directory: String) throws -> String {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw EmitError(description: "cannot read template \(path)")
        }
        return text
    }

    static func parse(_ name: String, in directory: String) throws -> MustacheTemplate {
        let text = try read(name, in: directory)
        do {
            return try MustacheTemplate(string: text)
        } catch {
            throw EmitError(description: "template \(name): \(error)")
        }
    }
}

/// The values the templates render, built once per program.
private struct ProgramContext {
    var header: [String: Any] = [:]
    var source: [String: Any] = [:]
    var harness: [String: Any] = [:]

    init(_ program: KernelProgram) throws {
        let writers = program.entryPoints.map { FunctionWriter(function: $0) }
        let ioEntries = program.entryPoints.filter(\.bindings.usesIO)
        let ioTables: [[String: Any]] = try ioEntries.map { function in
            let name = CSyntax.identifier(function.tableName)
            return [
                "tableName": name,
                "upperName": name.uppercased(),
                "ioFloats": function.bindings.ioFloats,
                "inputCount": function.bindings.ioInputs.count,
                "outputCount": function.bindings.ioOutputs.count,
                "inputRows": try tableRows(function.bindings.ioInputs),
                "outputRows": try tableRows(function.bindings.ioOutputs),
            ]
        }
        let common: [String: Any] = [
            "modelName": CSyntax.commentText(program.modelName),
            "regenerateCommand": CSyntax.commentText(program.regenerateCommand),
        ]
        header = common.merging([
            "stateFloats": program.state.floats,
            "scratchFloats": program.scratchFloats,
            "maxThreads": maxThreads,
            "stateCount": program.state.tensors.count,
            "ioTables": ioTables,
            "macros": try program.macros.map { ["name": $0.name, "value": try macroValue($0.name, $0.value)] },
            "signatures": writers.map(\.signature),
        ]) { a, _ in a }
        source = common.merging([
            "stateRows": try tableRows(program.state.tensors),
            "ioTables": ioTables,
            "entryPoints": writers.map { writer -> [String: Any] in
                [
                    "name": writer.function.name,
                    "kernels": writer.function.kernels.enumerated().map {
                        writer.kernelDefinition($0.offset, $0.element)
                    },
                    "definition": writer.entryDefinition,
                ]
            },
        ]) { a, _ in a }
        harness = common.merging(["entryPoints": writers.map { harnessEntry($0, program) }]) { a, _ in a }
    }
}

/// A macro's value as C: a string through `CSyntax.stringLiteral`, a number only if it is a plain C number.
private func macroValue(_ name: String, _ value: MacroValue) throws -> String {
    switch value {
    case .string(let text):
        return CSyntax.stringLiteral(text)
    case .number(let text):
        guard let first = text.first, first.isNumber || first == "-",
            text.allSatisfy({ "0123456789.eE+-".contains($0) })
        else {
            throw EmitError(description: "macro \(name): \(text) is not a C number")
        }
        return text
    }
}

/// Symbol-table rows; C has no empty arrays, so an empty table gets one all-zero row (its count macro is 0).
private func tableRows(_ tensors: [ArenaTensor]) throws -> [String] {
    if tensors.isEmpty { return ["{ \"\", 0, {0, 0, 0, 0}, 0, 0, 0, 0, 0.0 } /* empty table */"] }
    return try tensors.map { tensor in
        let dims = tensor.shape.dims
        guard dims.count <= 4 else {
            throw EmitError(description: "\(tensor.name) has rank \(dims.count); the symbol table holds 4")
        }
        let shape = (dims + Array(repeating: 0, count: 4 - dims.count)).map(String.init).joined(separator: ", ")
        let info = tensor.info
        return "{ \(CSyntax.stringLiteral(tensor.name)), \(dims.count), {\(shape)}, \(tensor.offset), \(tensor.count), "
            + "\(info.fanIn), \(info.isWeight ? 1 : 0), \(CSyntax.doubleLiteral(info.dropoutRate)) }"
    }
}

/// What the harness needs to call one entry point: one file per pointer argument except scratch.
private func harnessEntry(_ writer: FunctionWriter, _ program: KernelProgram) -> [String: Any] {
    let function = writer.function
    let files = writer.entryParameters.filter { $0.arena != .scratch }
    let buffers: [[String: Any]] = files.enumerated().map { index, parameter in
        let count: String
        switch parameter.arena {
        case .state: count = "MPLC_STATE_FLOATS"
        case .io: count = "MPLC_\(CSyntax.identifier(function.tableName).uppercased())_IO_FLOATS"
        case .argument(let name):
            let tensor = (function.bindings.argumentInputs + function.bindings.argumentOutputs).first {
                $0.name == name
            }!
            count = "\(tensor.shape.count)"
        case .scratch: count = "0"
        }
        return ["index": index, "argumentIndex": index + 2, "count": count, "name": parameter.name]
    }
    let arguments = (0..<files.count).map { "buffer\($0)" } + ["scratch"]
    return [
        "name": function.name,
        "buffers": buffers,
        "argc": files.count + 2,
        "call": "\(function.name)(\(arguments.joined(separator: ", ")))",
        "usage": ([function.name] + files.map { "\($0.name).f32" }).joined(separator: " "),
    ]
}
