import MPLModel

/// The kinds of error the front end reports. The raw value is the stable id printed after each
/// message (`[E005]`); ids are never renumbered, so users, tests and docs/DSL.md can rely on them.
public enum DiagnosticKind: String, CaseIterable, Sendable {
    case syntax = "E001"
    case unknownLayer = "E002"
    case unknownSetting = "E003"
    /// An argument label the callee does not have, a missing label, or an argument too many.
    case unexpectedArgument = "E004"
    case wrongType = "E005"
    case outOfRange = "E006"
    case shapeMismatch = "E007"
    case duplicate = "E008"
    case undefinedName = "E009"
    case missingDeclaration = "E010"
    case unsupported = "E011"
    case missingArgument = "E012"
    case unreadableFile = "E013"
    /// The file's name cannot be the model's name (it becomes a directory and a C string).
    case invalidModelName = "E014"

    /// A short title, for the error table in docs/DSL.md.
    public var title: String {
        switch self {
        case .syntax: return "syntax error"
        case .unknownLayer: return "unknown layer"
        case .unknownSetting: return "unknown setting"
        case .unexpectedArgument: return "unknown argument label, missing label or extra argument"
        case .wrongType: return "wrong argument type"
        case .outOfRange: return "value out of range"
        case .shapeMismatch: return "shape mismatch"
        case .duplicate: return "duplicate setting, declaration or argument"
        case .undefinedName: return "undefined name"
        case .missingDeclaration: return "missing required declaration"
        case .unsupported: return "unsupported statement or expression"
        case .missingArgument: return "missing argument"
        case .unreadableFile: return "unreadable file"
        case .invalidModelName: return "file name not usable as the model's name"
        }
    }

    /// Whether the diagnostic points into the source text, so a rendering can quote the line.
    var quotesSource: Bool { self != .unreadableFile && self != .invalidModelName }
}

/// One error in a model file.
public struct Diagnostic: Equatable, Sendable {
    public var kind: DiagnosticKind
    public var message: String
    /// 1-based line and column; the column counts UTF-8 bytes, as swiftc and clang do.
    public var location: MPLModel.SourceLocation
    /// UTF-8 offset of the location in the source, which orders diagnostics in file order.
    public var offset: Int

    /// The stable id, such as "E005".
    public var id: String { kind.rawValue }

    public init(kind: DiagnosticKind, message: String, location: MPLModel.SourceLocation, offset: Int) {
        self.kind = kind
        self.message = message
        self.location = location
        self.offset = offset
    }
}

/// Every error found in one file, in source order. Never empty when returned by the front end.
public struct DiagnosticList: Error, Equatable, Sendable, RandomAccessCollection {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public var startIndex: Int { diagnostics.startIndex }
    public var endIndex: Int { diagnostics.endIndex }
    public subscript(position: Int) -> Diagnostic { diagnostics[position] }
}
