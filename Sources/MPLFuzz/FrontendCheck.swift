// What "handled" means for one input: the front end returns a model, or diagnostics that a user can read.

import Foundation
import MPLCompiler
import MPLFrontend
import MPLModel

public enum InputOutcome: Equatable, Sendable {
    /// A valid model (compiled too, with `compile`).
    case model
    /// Rejected with well-formed diagnostics; their ids, in order.
    case diagnostics([String])
    /// Neither: the front end broke a promise of its interface (empty or unlocatable diagnostics...).
    case malformed(String)

    /// One line for the worker protocol: "model", "diag E001,E006" or "malformed <why>".
    var line: String {
        switch self {
        case .model: return "model"
        case .diagnostics(let ids): return "diag " + ids.joined(separator: ",")
        case .malformed(let why): return "malformed " + why.replacingOccurrences(of: "\n", with: " ")
        }
    }

    init?(line: String) {
        if line == "model" {
            self = .model
        } else if line.hasPrefix("diag ") {
            self = .diagnostics(line.dropFirst(5).split(separator: ",").map(String.init))
        } else if line.hasPrefix("malformed ") {
            self = .malformed(String(line.dropFirst(10)))
        } else {
            return nil
        }
    }
}

public enum FrontendCheck {
    /// Runs the front end on `bytes` as `mplc` does on a file (invalid UTF-8 decoded lossily, as
    /// `Frontend.readSource` does) and checks the result.
    public static func run(_ bytes: [UInt8], fileName: String = "mutant.swiftdsl", compile: Bool = false)
        -> InputOutcome
    {
        let source = String(decoding: bytes, as: UTF8.self)
        return check(
            Frontend.parse(source: source, fileName: fileName), source: source, fileName: fileName, compile: compile)
    }

    /// The same for a file on disk, through `Frontend.parseFile` (what `mplc check FILE` runs).
    public static func run(path: String, compile: Bool = false) -> InputOutcome {
        let result = Frontend.parseFile(path: path)
        let source = (try? Frontend.readSource(path: path).get()) ?? ""
        return check(result, source: source, fileName: path, compile: compile)
    }

    /// Lines as the front end (and swift-syntax) counts them: a line ends at "\n", "\r\n" or a lone "\r".
    static func lineCount(_ source: String) -> Int {
        var count = 1
        var previous: UInt8 = 0
        for byte in source.utf8 {
            if byte == UInt8(ascii: "\r") || (byte == UInt8(ascii: "\n") && previous != UInt8(ascii: "\r")) {
                count += 1
            }
            previous = byte
        }
        return count
    }

    static func check(_ result: Result<Model, DiagnosticList>, source: String, fileName: String, compile: Bool)
        -> InputOutcome
    {
        switch result {
        case .success(let model):
            guard compile else { return .model }
            // The rest of the pipeline must take any model the front end accepts, and the arena sizes
            // that `mplc` checks against the machine must not overflow.
            do {
                let compiled = try Compiler.compile(model, regenerateCommand: "mplc fuzz")
                let arenas = ResourceLimits.arenaBytes(compiled)
                if arenas.total < 0 || arenas.state < 0 || arenas.scratch < 0 {
                    return .malformed("arena sizes overflow: \(arenas)")
                }
                return .model
            } catch let failure as CompileFailure where failure.exceedsResources {
                return .model  // valid, but too large for 64-bit sizes: refused with the numbers, as it should be
            } catch {
                return .malformed("the front end accepted the model but compiling it failed: \(error)")
            }
        case .failure(let list):
            let diagnostics = list.diagnostics
            if diagnostics.isEmpty { return .malformed("failure with no diagnostics") }
            let lineCount = Self.lineCount(source)
            for diagnostic in diagnostics {
                let location = diagnostic.location
                if diagnostic.message.isEmpty { return .malformed("\(diagnostic.id) with an empty message") }
                if location.line < 1 || location.column < 1 || location.line > lineCount {
                    return .malformed(
                        "\(diagnostic.id) at \(location.line):\(location.column), outside the file's \(lineCount) lines"
                    )
                }
                if diagnostic.offset < 0 || diagnostic.offset > source.utf8.count {
                    return .malformed("\(diagnostic.id) at offset \(diagnostic.offset) of \(source.utf8.count) bytes")
                }
            }
            let rendered = Frontend.render(list, source: source, fileName: fileName)
            let headers = rendered.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { $0.hasPrefix(fileName + ":") && $0.contains(": error: ") }.count
            if headers != diagnostics.count {
                return .malformed("\(diagnostics.count) diagnostics rendered as \(headers) error lines")
            }
            if rendered.unicodeScalars.contains(where: {
                $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t"
            }) {
                return .malformed("a control character reached the rendered diagnostics")
            }
            return .diagnostics(diagnostics.map(\.id))
        }
    }
}
