import MPLModel
import SwiftSyntax

/// Accumulates diagnostics while the analyzers walk one file. A class, so that every analyzer of
/// the file appends to the same list without threading `inout` through each helper.
final class DiagnosticCollector {
    private let fileName: String
    private let lines: LineTable
    private(set) var diagnostics: [Diagnostic] = []

    init(fileName: String, lines: LineTable) {
        self.fileName = fileName
        self.lines = lines
    }

    var isEmpty: Bool { diagnostics.isEmpty }

    func error(_ kind: DiagnosticKind, _ message: String, at node: some SyntaxProtocol) {
        error(kind, message, at: node.positionAfterSkippingLeadingTrivia)
    }

    func error(_ kind: DiagnosticKind, _ message: String, at position: AbsolutePosition) {
        diagnostics.append(
            Diagnostic(kind: kind, message: message, location: location(of: position), offset: position.utf8Offset))
    }

    /// The error at 1:1, for things that are missing from the file as a whole.
    func errorAtStartOfFile(_ kind: DiagnosticKind, _ message: String) {
        error(kind, message, at: AbsolutePosition(utf8Offset: 0))
    }

    /// The 1-based line of a node, for messages that refer to an earlier occurrence.
    func line(of node: some SyntaxProtocol) -> Int {
        lines.location(ofOffset: node.positionAfterSkippingLeadingTrivia.utf8Offset).line
    }

    /// File order; diagnostics at the same position keep the order they were reported in.
    var sorted: [Diagnostic] {
        diagnostics.enumerated()
            .sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }
            .map(\.element)
    }

    private func location(of position: AbsolutePosition) -> MPLModel.SourceLocation {
        let (line, column) = lines.location(ofOffset: position.utf8Offset)
        return MPLModel.SourceLocation(file: fileName, line: line, column: column)
    }
}
