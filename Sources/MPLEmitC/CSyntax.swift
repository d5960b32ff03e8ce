// Small pieces of C text: literals, identifiers, comments. All output is a pure function of its input.
// Text from outside the compiler (a model's name, a path, a tensor name) reaches C only through `stringLiteral`,
// `commentText` (and `comment`, built on it) or `identifier`; each makes any input inert in its context.

import Foundation
import MPLIR

public enum CSyntax {
    /// A float literal that reads back as the same f32: the shortest round-trip digits of the Float, then `f`.
    static func floatLiteral(_ x: Double) -> String {
        let f = Float(x)
        if f.isNaN { return "NAN" }
        if f.isInfinite { return f < 0 ? "(-INFINITY)" : "INFINITY" }
        var digits = "\(f)"  // Swift prints the shortest representation that round-trips
        if !digits.contains(".") && !digits.contains("e") { digits += ".0" }
        return digits + "f"
    }

    /// A double literal (symbol tables): shortest round-trip digits of the Double.
    static func doubleLiteral(_ x: Double) -> String {
        var digits = "\(x)"
        if !digits.contains(".") && !digits.contains("e") && !digits.contains("n") { digits += ".0" }
        return digits
    }

    /// Whether the identifier `name` occurs in `lines` as a whole token (not inside a longer identifier).
    static func mentions(_ name: String, in lines: [String]) -> Bool {
        let isIdentifierCharacter: (Character) -> Bool = { $0 == "_" || $0.isLetter || $0.isNumber }
        for line in lines {
            var rest = line[...]
            while let range = rest.range(of: name) {
                let before = range.lowerBound == line.startIndex ? nil : line[line.index(before: range.lowerBound)]
                let after = range.upperBound == line.endIndex ? nil : line[range.upperBound]
                if !(before.map(isIdentifierCharacter) ?? false) && !(after.map(isIdentifierCharacter) ?? false) {
                    return true
                }
                rest = line[range.upperBound...]
            }
        }
        return false
    }

    /// A C string literal of `s`. Quotes, backslashes, `?` (trigraphs: `??/` is a backslash in C11) and every
    /// byte outside printable ASCII are escaped, so the literal ends where it should and stays on one line.
    public static func stringLiteral(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "?": out += "\\?"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 || scalar.value > 0x7e {
                    // Octal, not hex: an octal escape ends after 3 digits, a hex escape would swallow the next one.
                    for byte in String(scalar).utf8 { out += "\\" + String(byte, radix: 8).leftPadded(to: 3) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// `s` as one line of comment text, inert inside a `/* */` comment and after `//`: `/` and `*` never
    /// stand next to each other (a space goes between), and `\`, `?` (trigraphs), control characters (a
    /// newline would end a `//` comment) and every byte outside printable ASCII are written as `\xHH`.
    public static func commentText(_ s: String) -> String {
        var out = ""
        var last: UInt8 = 0
        for byte in s.utf8 {
            if byte < 0x20 || byte > 0x7e || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "?") {
                out += "\\x" + String(byte, radix: 16).leftPadded(to: 2)
                last = 0
                continue
            }
            let pair = (last, byte)
            if pair == (UInt8(ascii: "/"), UInt8(ascii: "*")) || pair == (UInt8(ascii: "*"), UInt8(ascii: "/")) {
                out += " "
            }
            out.unicodeScalars.append(Unicode.Scalar(byte))
            last = byte
        }
        return out
    }

    /// Letters, digits and underscores only; never starts with a digit.
    public static func identifier(_ s: String) -> String {
        var out = String(
            s.unicodeScalars.map { scalar -> Character in
                let isASCIIAlphanumeric =
                    scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar))
                return isASCIIAlphanumeric ? Character(scalar) : "_"
            })
        if out.isEmpty || out.first!.isNumber { out = "_" + out }
        if reservedWords.contains(out) { out += "_" }
        return out
    }

    static let reservedWords: [String] = [
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
        "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
        "state", "io", "scratch",
    ]

    /// A block comment of `lines`, each made inert by `commentText`.
    static func comment(_ lines: [String], indent: String = "") -> String {
        let safe = lines.map(commentText)
        if safe.count == 1 { return "\(indent)/* \(safe[0]) */" }
        return "\(indent)/* " + safe.joined(separator: "\n\(indent) * ") + " */"
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
