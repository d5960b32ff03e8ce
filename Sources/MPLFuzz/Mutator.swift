// Seeded inputs for fuzzing the front end: mutants of model files and models drawn from the grammar.
//
// The first eight mutations are those the front end's own mutation test applies (Tests/MPLFrontendTests,
// RobustnessTests, uses this module); the campaign adds huge literals, invalid UTF-8, line edits, splices,
// grammar fragments and hostile characters. Everything is a pure function of the seed, so a failure reproduces
// from its index.

import MPLIR
import MPLModel

public enum Mutation: String, CaseIterable, Sendable {
    // The front end's mutation test.
    case truncate, deleteToken, duplicateToken, swapTokens, replaceNumber, replaceWord, insertBytes, deepNesting
    // Added by the campaign.
    case hugeLiteral, invalidUTF8, deleteLine, duplicateLine, splice, grammarFragment, hostileCharacters, flipByte
}

public struct Mutator {
    /// Inputs to mutate and to splice from (the examples and the corpus).
    public var sources: [[UInt8]]

    public init(sources: [[UInt8]]) {
        self.sources = sources.isEmpty ? [Array("let x = 1\n".utf8)] : sources
    }

    /// Input `index` of the campaign `seed`: usually one to three mutations of a source, sometimes of a
    /// model drawn from the grammar, sometimes that model as it is.
    public func input(seed: UInt64, index: Int) -> (bytes: [UInt8], recipe: String) {
        var rng = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(index))
        let base: [UInt8]
        var recipe: String
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<6:
            let which = Int.random(in: 0..<sources.count, using: &rng)
            base = sources[which]
            recipe = "source \(which)"
        case 6..<9:
            base = Array(GrammarGenerator.model(using: &rng).utf8)
            recipe = "grammar"
        default:
            return (Array(GrammarGenerator.model(using: &rng).utf8), "grammar, unmutated")
        }
        var bytes = base
        var applied: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let mutation = Mutation.allCases.randomElement(using: &rng)!
            bytes = apply(mutation, to: bytes, using: &rng)
            applied.append(mutation.rawValue)
        }
        recipe += " + " + applied.joined(separator: ", ")
        return (bytes, recipe)
    }

    public func apply(_ mutation: Mutation, to bytes: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
        let tokens = tokenRanges(bytes)
        guard !bytes.isEmpty, !tokens.isEmpty else {
            return bytes + Array(GrammarGenerator.statement(using: &rng).utf8)
        }
        let token = tokens.randomElement(using: &rng)!
        var result = bytes
        switch mutation {
        case .truncate:
            result.removeSubrange(Int.random(in: 0..<bytes.count, using: &rng)...)
        case .deleteToken:
            result.removeSubrange(token)
        case .duplicateToken:
            result.insert(contentsOf: bytes[token], at: token.lowerBound)
        case .swapTokens:
            let other = tokens.randomElement(using: &rng)!
            let (first, second) = token.lowerBound < other.lowerBound ? (token, other) : (other, token)
            guard first.upperBound <= second.lowerBound else { return bytes }
            result.replaceSubrange(second, with: bytes[first])
            result.replaceSubrange(first, with: bytes[second])
        case .replaceNumber:
            let numbers = tokens.filter { isDigit(bytes[$0.lowerBound]) }
            let target = numbers.randomElement(using: &rng) ?? token
            result.replaceSubrange(target, with: Array(GrammarGenerator.edgeNumber(using: &rng).utf8))
        case .replaceWord:
            result.replaceSubrange(token, with: Array(words.randomElement(using: &rng)!.utf8))
        case .insertBytes:
            let noise = (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            result.insert(contentsOf: noise, at: Int.random(in: 0...bytes.count, using: &rng))
        case .deepNesting:
            result.insert(contentsOf: nesting(using: &rng), at: token.lowerBound)
        case .hugeLiteral:
            result.replaceSubrange(token, with: hugeLiteral(using: &rng))
        case .invalidUTF8:
            let bad = invalidSequences.randomElement(using: &rng)!
            result.insert(contentsOf: bad, at: [token.lowerBound, token.upperBound].randomElement(using: &rng)!)
        case .deleteLine, .duplicateLine:
            let lines = lineRanges(bytes)
            let line = lines.randomElement(using: &rng)!
            if mutation == .deleteLine {
                result.removeSubrange(line)
            } else {
                result.insert(contentsOf: bytes[line], at: line.lowerBound)
            }
        case .splice:
            let other = sources.randomElement(using: &rng)!
            let cut = Int.random(in: 0...bytes.count, using: &rng)
            let from = other.isEmpty ? 0 : Int.random(in: 0..<other.count, using: &rng)
            result = Array(bytes[..<cut]) + Array(other[from...])
        case .grammarFragment:
            let fragment =
                Bool.random(using: &rng) ? GrammarGenerator.layer(using: &rng) : GrammarGenerator.setting(using: &rng)
            result.insert(contentsOf: Array((fragment + "\n").utf8), at: token.lowerBound)
        case .hostileCharacters:
            let hostile = hostileStrings.randomElement(using: &rng)!
            result.insert(contentsOf: Array(hostile.utf8), at: Int.random(in: 0...bytes.count, using: &rng))
        case .flipByte:
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            result[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        }
        return result
    }
}

/// Words that are valid somewhere in the DSL (every layer name among them), or Swift keywords, so that swaps
/// stay plausible.
private let words =
    Layer.Kind.allCases.map(\.name) + [
        "Sequential", "MPL",
        "steps", "seed", "uda", "SGD", "Adam", "AdamW", "teacher", "student", "input", "classes", "let", "var", "func",
        "in",
        "true", "false", "kernel", "padding", "stride", "Image", "Features", "hard", "soft", "_", "self",
        "finetune", "labeledBatch", "unlabeledRatio", "pseudoLabels",
        "feedback", "dotProduct", "lossDifference", "argmax", "sampled", "initialization", "uniform", "import",
        "struct", "if", "return", "#if", "@main", "inout", "nil", "Self", "super", "try", "throws", "async",
    ]

/// Malformed UTF-8: a lone continuation byte, overlong forms, a surrogate, a code point above U+10FFFF,
/// bytes that never occur, and sequences cut short.
private let invalidSequences: [[UInt8]] = [
    [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
    [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFE], [0xFF], [0xFF, 0xFE], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98],
    [0xEF, 0xBB, 0xBF], [0x00],
]

/// Characters that are valid UTF-8 but hostile to renderers and column arithmetic.
private let hostileStrings = [
    "\u{202E}", "\u{200B}", "\u{FEFF}", "\r", "\r\n\r", "\t\t", "\u{0B}", "\u{0C}", "\u{1B}[2J", "\u{7F}",
    "e\u{301}\u{301}\u{301}", "👩‍👩‍👧‍👦", "\u{10FFFF}", "\u{FFFD}", "𝟙𝟘", "١٠", "Ｄｅｎｓｅ", "\u{2028}", "/*", "*/", "//",
    "\"", "\"\"\"", "#", "\\", "`", "$0", "#sourceLocation(file: \"x\", line: 0)",
]

/// Numbers with thousands of digits, long identifiers, long strings and long comments.
private func hugeLiteral(using rng: inout SplitMix64) -> [UInt8] {
    // Up to 20,000 characters: enough to cross every buffer and Int bound; longer ones (50,000 to 200,000)
    // are in the corpus, replayed once each rather than mutated (they cost about a second each in a debug build).
    let length = [20, 400, 5_000, 20_000].randomElement(using: &rng)!
    let digits = String(repeating: "9", count: length)
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: return Array(digits.utf8)
    case 1: return Array(("1" + String(repeating: "0", count: length) + ".5").utf8)
    case 2: return Array(("0." + String(repeating: "0", count: length) + "1").utf8)
    case 3: return Array(("0x" + String(repeating: "f", count: length)).utf8)
    case 4: return Array(("1e" + digits).utf8)
    case 5: return Array(("a" + String(repeating: "b", count: length)).utf8)
    case 6: return Array(("\"" + String(repeating: "s", count: length) + "\"").utf8)
    default: return Array(("// " + String(repeating: "c", count: length) + "\n").utf8)
    }
}

/// Up to 2,000 levels of brackets, balanced or not, to probe the parser's recursion limits.
private func nesting(using rng: inout SplitMix64) -> [UInt8] {
    let pairs: [(String, String)] = [
        ("(", ")"), ("{", "}"), ("[", "]"), ("<", ">"), ("Dense(", ")"), ("Sequential {", "}"),
        ("-", ""), ("!", ""), ("#if X\n", "#endif\n"), ("\"\\(", ")\""),
    ]
    let (open, close) = pairs.randomElement(using: &rng)!
    let depth = [2000, 257, 256, 255, Int.random(in: 1...300, using: &rng)].randomElement(using: &rng)!
    let closes = Bool.random(using: &rng) ? depth : Int.random(in: 0...depth, using: &rng)
    return Array((String(repeating: open, count: depth) + String(repeating: close, count: closes)).utf8)
}

/// Byte ranges of crude tokens: runs of letters, digits, `_` and `.`, or single other bytes; spaces skipped.
func tokenRanges(_ bytes: [UInt8]) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var index = 0
    while index < bytes.count {
        let start = index
        if isWordByte(bytes[index]) {
            while index < bytes.count && isWordByte(bytes[index]) { index += 1 }
            ranges.append(start..<index)
        } else {
            index += 1
            if bytes[start] != UInt8(ascii: " ") && bytes[start] != UInt8(ascii: "\n") {
                ranges.append(start..<index)
            }
        }
    }
    return ranges
}

/// Byte ranges of lines, each with its newline.
func lineRanges(_ bytes: [UInt8]) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var start = 0
    for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
        ranges.append(start..<index + 1)
        start = index + 1
    }
    if start < bytes.count { ranges.append(start..<bytes.count) }
    return ranges
}

private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

private func isWordByte(_ byte: UInt8) -> Bool {
    isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
        || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || byte == UInt8(ascii: "_")
        || byte == UInt8(ascii: ".")
}
