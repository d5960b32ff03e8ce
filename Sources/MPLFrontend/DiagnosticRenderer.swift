/// Formats diagnostics the way compilers do:
///
///     model.swiftdsl:12:5: error: unknown layer `Dense2`; did you mean `Dense`? [E002]
///         Dense2(10)
///         ^
struct DiagnosticRenderer {
    let fileName: String
    private let lines: LineTable

    init(source: String, fileName: String) {
        self.fileName = fileName
        self.lines = LineTable(source)
    }

    func render(_ diagnostics: [Diagnostic]) -> String {
        diagnostics.map(render).joined()
    }

    private func render(_ diagnostic: Diagnostic) -> String {
        let location = diagnostic.location
        var text =
            "\(printable(fileName)):\(location.line):\(location.column): error: \(printable(diagnostic.message)) [\(diagnostic.id)]\n"
        guard diagnostic.kind.quotesSource else { return text }
        let excerpt = Excerpt(lines.line(location.line), column: location.column)
        text += excerpt.prefix + printable(String(decoding: excerpt.bytes, as: UTF8.self)) + excerpt.suffix + "\n"
        text +=
            String(repeating: " ", count: excerpt.prefix.count) + caretIndent(excerpt.bytes, before: excerpt.caret)
            + "^\n"
        return text
    }

    /// The part of a line that is shown: all of it, or for a long line a window around the column
    /// marked with "…", so that a huge line is not printed once per diagnostic.
    private struct Excerpt {
        static let window = 100

        var bytes: ArraySlice<UInt8>
        /// Offset of the caret in `bytes`.
        var caret: Int
        var prefix = ""
        var suffix = ""

        init(_ line: ArraySlice<UInt8>, column: Int) {
            let caretIndex = line.startIndex + min(max(column - 1, 0), line.count)
            guard line.count > 2 * Self.window else {
                bytes = line
                caret = caretIndex - line.startIndex
                return
            }
            var start = max(line.startIndex, caretIndex - Self.window)
            var end = min(line.endIndex, caretIndex + Self.window)
            // Cut only at the start of a UTF-8 sequence, never inside a character.
            while start > line.startIndex && line[start] & 0xC0 == 0x80 { start -= 1 }
            while end < line.endIndex && line[end] & 0xC0 == 0x80 { end += 1 }
            bytes = line[start..<end]
            caret = caretIndex - start
            prefix = start > line.startIndex ? "…" : ""
            suffix = end < line.endIndex ? "…" : ""
        }
    }

    /// Whitespace that puts the caret under the column, which counts UTF-8 bytes: one space per
    /// character before it, and tabs kept as tabs so that the caret lines up in a terminal.
    private func caretIndent(_ line: ArraySlice<UInt8>, before byteCount: Int) -> String {
        let prefix = String(decoding: line.prefix(byteCount), as: UTF8.self)
        return String(prefix.map { $0 == "\t" ? "\t" : " " })
    }

    /// Control characters from a damaged file could drive the terminal; show them as U+FFFD.
    private func printable(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { scalar in
                    scalar.properties.generalCategory == .control && scalar != "\t" ? "\u{FFFD}" : scalar
                }))
    }
}
