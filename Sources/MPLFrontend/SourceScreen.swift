/// Checks a file against the model language's alphabet before swift-syntax parses it.
///
/// The model language is a small subset of Swift, but swift-syntax 603.0.1 parses all of Swift,
/// and on hostile input it can crash or take minutes: some lookaheads recurse once per `[` or
/// `<` without its nesting limit and backtrack exponentially, prefix keywords such as `try`,
/// `some` or `repeat` recurse once per word, long chains such as `a.a.a…` or `f()()…` build trees
/// whose depth overflows the stack, and a `=` after a stray control character makes its
/// diagnostics generator trap. Every one of these needs characters, words or shapes that the
/// model language never uses, so they are reported here and blanked out (replaced by spaces, which
/// keeps every offset), and only text made of the language's own tokens reaches the parser.
struct SourceScreen {
    struct Finding {
        var offset: Int
        var message: String
    }

    /// Brackets nest about four deep in a model; deeper nesting stops the check.
    static let nestingLimit = 64
    /// `Name(...) { ... }` chains two steps; longer chains of calls and member accesses are errors.
    static let chainLimit = 16
    /// Long lines make some of swift-syntax's diagnostics cost time proportional to the line.
    static let lineLimit = 1000

    /// The text to parse: the input with every rejected token replaced by spaces.
    private(set) var text: [UInt8]
    /// What was rejected, in file order; at most `findingLimit` + 1, so that a flood of garbage
    /// costs no more than the limit (the rest is still blanked).
    private(set) var findings: [Finding] = []
    private let findingLimit: Int
    /// The bracket that opens more than `nestingLimit` levels; the file is then not parsed at all.
    private(set) var tooDeepOffset: Int?
    static let tooDeepMessage =
        "brackets are nested more than \(nestingLimit) levels deep here; the file is not checked further"

    private var index = 0
    private var lineStart = 0
    /// Whether the next token begins a statement: at the start of the file or of a line, or after
    /// `{`, `}` or `;`.
    private var atStatementStart = true
    /// One entry per open bracket level: how long the current chain is and what came last.
    private var levels = [Level()]

    private struct Level {
        var chain = 0
        var last = TokenClass.other
    }

    private enum TokenClass {
        case name, number, dot, closing, other
    }

    init(_ bytes: [UInt8], findingLimit: Int) {
        text = bytes
        self.findingLimit = findingLimit
        while index < text.count && tooDeepOffset == nil {
            scanToken()
        }
    }

    // MARK: Tokens

    private mutating func scanToken() {
        let byte = text[index]
        if index - lineStart >= Self.lineLimit && !isLineBreak(byte) {
            rejectRestOfLine()
        } else if isLineBreak(byte) {
            index += 1
            lineStart = index
            atStatementStart = true
        } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
            index += 1
        } else if let end = commentEnd(at: index) {
            passOver(index..<end)
        } else {
            let startsStatement = atStatementStart
            atStatementStart = false
            if isNameStart(byte) {
                scanName(startsStatement: startsStatement)
            } else if isDigit(byte) {
                scanNumber()
            } else {
                scanPunctuation(byte)
                atStatementStart = byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: ";")
            }
        }
    }

    private mutating func scanName(startsStatement: Bool) {
        let start = index
        while index < text.count && (isNameStart(text[index]) || isDigit(text[index])) { index += 1 }
        let word = String(decoding: text[start..<index], as: UTF8.self)
        if Self.swiftKeywords.contains(word) {
            // A statement that starts with a keyword (`import Foundation`, `if x { ... }`) is ignored
            // as a whole, since its rest would only add errors; inside one (`seed(try 1)`), only the
            // keyword is.
            if startsStatement {
                reject(
                    start..<statementEnd(from: index),
                    "`\(word)` is a Swift keyword, not part of the model language; the statement is ignored")
            } else {
                reject(start..<index, "`\(word)` is a Swift keyword, not part of the model language")
            }
            return
        }
        // A name after `.` continues a chain (`.hard`, `a.b`); any other starts a new one.
        continueChain(counts: false, startsNew: levels[levels.count - 1].last != .dot, as: .name)
    }

    /// Digits, letters, `_`, a `.` before a digit, and a sign after an exponent letter: every
    /// spelling of a Swift number literal, valid or not (swift-syntax judges validity).
    private mutating func scanNumber() {
        while index < text.count {
            let byte = text[index]
            let isExponentSign =
                (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")) && isExponentLetter(text[index - 1])
            let isDecimalPoint = byte == UInt8(ascii: ".") && index + 1 < text.count && isDigit(text[index + 1])
            guard isNameStart(byte) || isDigit(byte) || isExponentSign || isDecimalPoint else { break }
            index += 1
        }
        continueChain(counts: false, startsNew: true, as: .number)
    }

    private mutating func scanPunctuation(_ byte: UInt8) {
        let last = levels[levels.count - 1].last
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: "{"):
            // `f(`, `f {` and `f() {` continue a chain; `(` or `{` elsewhere opens a fresh group.
            if last == .name || last == .closing {
                guard continueChain(counts: true, startsNew: false, as: .other) else { return }
            } else {
                index += 1
            }
            open(at: index - 1)
        case UInt8(ascii: ")"), UInt8(ascii: "}"):
            index += 1
            if levels.count > 1 {
                levels.removeLast()
            }
            levels[levels.count - 1].last = .closing
        case UInt8(ascii: "."):
            let isChained = last == .name || last == .number || last == .closing || last == .dot
            continueChain(counts: isChained, startsNew: !isChained, as: .dot)
        case UInt8(ascii: "-") where index + 1 < text.count && isDigit(text[index + 1]):
            index += 1
            levels[levels.count - 1].last = .other
        case UInt8(ascii: "-"):
            reject(index..<index + 1, "`-` must be written directly before a number")
        case UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            index += 1
            levels[levels.count - 1] = Level()
        default:
            rejectCharacters()
        }
    }

    // MARK: Structure

    /// Advances over the current token and records it in the chain. Returns false, after
    /// rejecting the token, if it makes the chain longer than `chainLimit`.
    @discardableResult
    private mutating func continueChain(counts: Bool, startsNew: Bool, as kind: TokenClass) -> Bool {
        let start = index
        if index < text.count && !(kind == .name || kind == .number) {
            index += 1
        }
        var level = levels[levels.count - 1]
        if startsNew {
            level.chain = 0
        }
        if counts {
            level.chain += 1
            if level.chain > Self.chainLimit {
                levels[levels.count - 1] = Level()
                reject(start..<index, "more than \(Self.chainLimit) calls or member accesses in a row")
                return false
            }
        }
        level.last = kind
        levels[levels.count - 1] = level
        return true
    }

    /// Opens a bracket level for the bracket at `offset`, which has been consumed.
    private mutating func open(at offset: Int) {
        levels[levels.count - 1].last = .other
        levels.append(Level())
        if levels.count - 1 > Self.nestingLimit {
            tooDeepOffset = offset
        }
    }

    // MARK: Comments and rejected text

    /// If a comment starts at `start`, the offset just after it. Block comments nest, as in Swift;
    /// an unterminated one runs to the end of the file and is reported by the parser.
    private func commentEnd(at start: Int) -> Int? {
        guard text[start] == UInt8(ascii: "/"), start + 1 < text.count else { return nil }
        var end = start + 2
        if text[start + 1] == UInt8(ascii: "/") {
            while end < text.count && !isLineBreak(text[end]) { end += 1 }
            return end
        }
        guard text[start + 1] == UInt8(ascii: "*") else { return nil }
        var depth = 1
        while end < text.count && depth > 0 {
            if text[end] == UInt8(ascii: "/") && end + 1 < text.count && text[end + 1] == UInt8(ascii: "*") {
                depth += 1
                end += 2
            } else if text[end] == UInt8(ascii: "*") && end + 1 < text.count && text[end + 1] == UInt8(ascii: "/") {
                depth -= 1
                end += 2
            } else {
                end += 1
            }
        }
        return end
    }

    /// Moves past `range`, keeping track of where the current line starts.
    private mutating func passOver(_ range: Range<Int>) {
        if let lastBreak = range.last(where: { isLineBreak(text[$0]) }) {
            lineStart = lastBreak + 1
        }
        index = range.upperBound
    }

    /// The end of the statement that continues at `start`: the next line break, `;` or closing
    /// bracket of an enclosing group, outside the brackets and comments that open after `start`.
    /// `[` counts here: it is rejected, but a statement such as `for x in [1, 2] { ... }` spans it.
    private func statementEnd(from start: Int) -> Int {
        var depth = 0
        var end = start
        while end < text.count {
            if let commentEnd = commentEnd(at: end) {
                end = commentEnd
                continue
            }
            switch text[end] {
            case UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
            case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"):
                if depth == 0 { return end }
                depth -= 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ";"):
                if depth == 0 { return end }
            default:
                break
            }
            end += 1
        }
        return end
    }

    /// A run of characters outside the alphabet, reported once by its first character. A lone `/`
    /// (not a comment) is in the alphabet but not in the language, so at least one byte is taken.
    private mutating func rejectCharacters() {
        let start = index
        repeat { index += 1 } while index < text.count && !isAlphabet(text[index])
        let first = String(decoding: text[start..<index], as: UTF8.self).unicodeScalars.first ?? "\u{FFFD}"
        reject(start..<index, "unexpected character \(Self.describe(first)); the model language does not use it")
    }

    private mutating func rejectRestOfLine() {
        let start = index
        while index < text.count && !isLineBreak(text[index]) { index += 1 }
        reject(start..<index, "line is longer than \(Self.lineLimit) bytes; the rest of it is ignored")
    }

    /// Reports `range` and replaces it by spaces (line breaks stay), so the parser sees the rest
    /// of the file at the same offsets and lines; the index moves past it.
    private mutating func reject(_ range: Range<Int>, _ message: @autoclosure () -> String) {
        if findings.count <= findingLimit {
            findings.append(Finding(offset: range.lowerBound, message: message()))
        }
        for position in range where !isLineBreak(text[position]) {
            text[position] = UInt8(ascii: " ")
        }
        passOver(range)
        levels[levels.count - 1].last = .other
    }

    /// "`?`", "`é` (U+00E9)", or just "U+0006" for what cannot be shown.
    private static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        if scalar.properties.generalCategory == .control || scalar == "\u{FFFD}" || scalar.properties.isWhitespace {
            return code
        }
        return scalar.isASCII ? "`\(scalar)`" : "`\(scalar)` (\(code))"
    }

    // MARK: Character classes

    private func isExponentLetter(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || byte == UInt8(ascii: "p") || byte == UInt8(ascii: "P")
    }

    private func isLineBreak(_ byte: UInt8) -> Bool { byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") }
    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private func isNameStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    /// Bytes that can start a token, comment or whitespace of the model language.
    private func isAlphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"),
            UInt8(ascii: "}"),
            UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "."),
            UInt8(ascii: "-"),
            UInt8(ascii: "/"):
            return true
        default:
            return isNameStart(byte) || isDigit(byte) || isLineBreak(byte)
        }
    }

    /// Swift's keywords, except `let`, `var`, `true` and `false`, and the contextual keywords that
    /// begin expressions, types or declarations. The model language names nothing with them.
    static let swiftKeywords: Set<String> = [
        "associatedtype", "borrowing", "class", "consuming", "deinit", "enum", "extension", "fileprivate", "func",
        "import", "init", "inout", "internal", "nonisolated", "open", "operator", "private", "precedencegroup",
        "protocol", "public", "rethrows", "static", "struct", "subscript", "typealias",
        "break", "case", "catch", "continue", "default", "defer", "do", "else", "fallthrough", "for", "guard", "if",
        "in", "repeat", "return", "throw", "switch", "where", "while",
        "Any", "as", "await", "is", "nil", "self", "Self", "super", "throws", "try", "_",
        "some", "any", "each", "consume", "copy", "discard", "macro", "actor", "async", "sending", "then", "yield",
        "unsafe", "isolated", "distributed", "mutating", "nonmutating", "override", "convenience", "dynamic", "final",
        "lazy", "indirect", "infix", "prefix", "postfix", "optional", "required", "unowned", "weak", "package",
        "Type", "Protocol",
    ]
}
