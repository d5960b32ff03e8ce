import SwiftSyntax

/// A number as written in the file, after an optional leading `-`.
struct NumberLiteral {
    enum Value {
        case integer(Int)
        case real(Double)
        /// An integer literal that does not fit in Int; reported as out of range, not as a crash.
        case tooLarge
    }

    var value: Value
    private let expression: ExprSyntax

    /// Reads `12`, `1_000`, `0x1F`, `2.5e-3`, `-4`; nil for anything else (identifiers, `+1`, `1 + 1`).
    init?(_ expression: ExprSyntax) {
        var negative = false
        var body = expression
        if let prefix = expression.as(PrefixOperatorExprSyntax.self), prefix.operator.text == "-" {
            negative = true
            body = prefix.expression
        }
        if let integer = body.as(IntegerLiteralExprSyntax.self) {
            value = Self.integerValue(integer.literal.text, negative: negative)
        } else if let real = body.as(FloatLiteralExprSyntax.self) {
            value = Self.realValue(real.literal.text, negative: negative)
        } else {
            return nil
        }
        self.expression = expression
    }

    /// The source text, for messages ("got -0.5"); computed only when a message needs it.
    var text: String { expression.trimmedDescription }

    /// The value as an Int, if it is an integer literal that fits.
    var integer: Int? {
        if case .integer(let value) = value { return value }
        return nil
    }

    /// The value as a Double; integer literals are numbers too, so `weight: 1` means 1.0.
    var real: Double? {
        switch value {
        case .integer(let value): return Double(value)
        case .real(let value): return value.isFinite ? value : nil
        case .tooLarge: return nil
        }
    }

    var isInteger: Bool {
        switch value {
        case .integer, .tooLarge: return true
        case .real: return false
        }
    }

    private static func integerValue(_ text: String, negative: Bool) -> Value {
        var digits = Substring(text.filter { $0 != "_" })
        var radix = 10
        for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] where digits.hasPrefix(prefix) {
            digits = digits.dropFirst(2)
            radix = base
        }
        // Parse the sign together with the digits so that Int.min is representable.
        guard let value = Int((negative ? "-" : "") + digits, radix: radix) else { return .tooLarge }
        return .integer(value)
    }

    /// Double(_:) accepts decimal and hexadecimal float literals; it returns ±infinity when the
    /// literal overflows, which the range check then rejects.
    private static func realValue(_ text: String, negative: Bool) -> Value {
        let cleaned = (negative ? "-" : "") + text.filter { $0 != "_" }
        return .real(Double(cleaned) ?? .infinity)
    }
}

extension SyntaxProtocol {
    /// Source text for a message: whitespace collapsed and long text shortened, so a message stays one line.
    var snippet: String {
        let limit = 40
        let full = trimmedDescription
        let head = full.prefix(4 * limit)
        let text = head.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).joined(separator: " ")
        let shortened = text.count > limit || head.endIndex != full.endIndex
        return shortened ? String(text.prefix(limit)) + "…" : text
    }
}
