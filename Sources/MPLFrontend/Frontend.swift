import MPLModel
import SwiftParser
import SwiftSyntax

/// The front end: model file text in, checked Model or every error in the file out.
public enum Frontend {
    /// Parses and checks a model file's text. `fileName` appears in diagnostics, and its base name
    /// without extension becomes `Model.name`.
    public static func parse(source: String, fileName: String) -> Result<Model, DiagnosticList> {
        let lines = LineTable(source)
        let diagnostics = DiagnosticCollector(fileName: fileName, lines: lines)
        // Only text made of the language's own tokens reaches swift-syntax; see SourceScreen.
        let limit = SyntaxErrorReporter.limit
        let screen = SourceScreen(lines.bytes, findingLimit: limit)
        for finding in screen.findings.prefix(limit) {
            diagnostics.error(.syntax, finding.message, at: AbsolutePosition(utf8Offset: finding.offset))
        }
        if screen.findings.count > limit {
            diagnostics.error(
                .syntax, SyntaxErrorReporter.tooManyMessage,
                at: AbsolutePosition(utf8Offset: screen.findings[limit].offset))
        }
        if let offset = screen.tooDeepOffset {
            diagnostics.error(.syntax, SourceScreen.tooDeepMessage, at: AbsolutePosition(utf8Offset: offset))
            return .failure(DiagnosticList(diagnostics.sorted))
        }
        // The screened text has the same length, so the tree's offsets are the source's offsets.
        // The parser's own nesting limit is set to the screen's, the same in debug and release.
        var parser = Parser(
            String(decoding: screen.text, as: UTF8.self), maximumNestingLevel: SourceScreen.nestingLimit + 1)
        let tree = SourceFileSyntax.parse(from: &parser)
        // On a line where the screen blanked something, the parser's errors are its consequences.
        let screenedLines = Set(screen.findings.map { lines.location(ofOffset: $0.offset).line })
        for error in SyntaxErrorReporter.errors(in: tree, budget: max(0, limit - screen.findings.count))
        where !screenedLines.contains(lines.location(ofOffset: error.position.utf8Offset).line) {
            diagnostics.error(.syntax, error.message, at: error.position)
        }
        let name = modelName(fileName)
        if let problem = modelNameProblem(name) {
            diagnostics.errorAtStartOfFile(.invalidModelName, problem)
        }
        var analyzer = FileAnalyzer(
            tree: tree, modelName: name, hasSyntaxErrors: tree.hasError || !screen.findings.isEmpty,
            diagnostics: diagnostics)
        let model = analyzer.run()
        if let model, diagnostics.isEmpty {
            return .success(model)
        }
        return .failure(DiagnosticList(diagnostics.sorted))
    }

    /// Reads and checks a model file. An unreadable file is reported as an E013 diagnostic.
    public static func parseFile(path: String) -> Result<Model, DiagnosticList> {
        readSource(path: path).flatMap { parse(source: $0, fileName: path) }
    }

    /// The text of a model file, with invalid UTF-8 replaced by U+FFFD (which the parser then
    /// reports if it is outside a comment). Use it to render the diagnostics of `parseFile`.
    public static func readSource(path: String) -> Result<String, DiagnosticList> {
        switch SourceFile.readBytes(path: path) {
        case .success(let bytes):
            return .success(String(decoding: bytes, as: UTF8.self))
        case .failure(let error):
            let location = MPLModel.SourceLocation(file: path, line: 1, column: 1)
            let message = "cannot read the model file: \(error.reason)"
            return .failure(
                DiagnosticList([Diagnostic(kind: .unreadableFile, message: message, location: location, offset: 0)]))
        }
    }

    /// Renders diagnostics as `file:line:col: error: message [E0xx]`, each followed by its source
    /// line and a caret under the column.
    public static func render(_ diagnostics: DiagnosticList, source: String, fileName: String) -> String {
        DiagnosticRenderer(source: source, fileName: fileName).render(diagnostics.diagnostics)
    }

    /// The longest model name, in bytes.
    static let modelNameLimit = 64

    /// Why `name` cannot name a model, or nil. The name becomes a directory (generated/NAME) and a C string, so
    /// it is kept to characters that mean nothing in a path, a shell or C: ASCII letters, digits, `_`, `-` and
    /// `.`, starting with a letter, digit or `_` (so never `.`, `..`, a hidden name or an option).
    static func modelNameProblem(_ name: String) -> String? {
        let isAllowed = { (byte: UInt8) -> Bool in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        let bytes = Array(name.utf8)
        guard let first = bytes.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "."),
            bytes.count <= modelNameLimit, bytes.allSatisfy(isAllowed)
        else {
            return "the file name gives the model the name `\(name)`, which is not allowed: a model's name (the file's "
                + "name without its extension) is 1 to \(modelNameLimit) ASCII letters, digits, `_`, `-` or `.`, and starts "
                + "with a letter, digit or `_`; rename the file"
        }
        return nil
    }

    /// "models/fashion_mlp.swiftdsl" -> "fashion_mlp".
    static func modelName(_ fileName: String) -> String {
        let baseName =
            fileName.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? fileName
        guard let dot = baseName.lastIndex(of: "."), dot != baseName.startIndex else { return baseName }
        return String(baseName[..<dot])
    }
}
