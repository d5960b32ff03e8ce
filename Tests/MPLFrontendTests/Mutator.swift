// Seeded mutation of model files for the fuzz test. Reusable: a longer soak only needs a larger
// count (MPLC_FUZZ_COUNT), and a failing seed reproduces the exact mutant.

/// SplitMix64: tiny, fast and fully determined by its seed, so every mutant can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Mutation: CaseIterable {
    case truncate, deleteToken, duplicateToken, swapTokens, replaceNumber, replaceWord, insertBytes, deepNesting
}

/// Applies one to three random mutations to `source`. The result may be invalid UTF-8.
func mutate(_ source: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
    var bytes = source
    for _ in 0..<Int.random(in: 1...3, using: &rng) {
        bytes = apply(Mutation.allCases.randomElement(using: &rng)!, to: bytes, using: &rng)
    }
    return bytes
}

/// Numbers that probe the edges: overflow, negatives, zero, infinity, underflow, odd spellings.
private let edgeNumbers = [
    "99999999999999999999999", "-1", "0", "-0.5", "1e400", "1e-400", "9223372036854775807",
    "-9223372036854775808", "0x7fffffffffffffff", "1_000_000_000", "3.5", "1_0", "0b101", "-0", "2",
]

/// Words that are valid somewhere in the DSL, or Swift keywords, so that swaps stay plausible.
private let words = [
    "Dense", "Conv2D", "Flatten", "ReLU", "MaxPool2D", "GlobalAvgPool", "Dropout", "Sequential", "MPL",
    "steps", "seed", "uda", "SGD", "teacher", "student", "input", "classes", "let", "var", "func", "in",
    "true", "false", "kernel", "padding", "stride", "Image", "Features", "hard", "soft", "_", "self",
]

func apply(_ mutation: Mutation, to bytes: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
    let tokens = tokenRanges(bytes)
    guard !bytes.isEmpty, !tokens.isEmpty else { return bytes }
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
        let replacement =
            Bool.random(using: &rng)
            ? edgeNumbers.randomElement(using: &rng)! : String(Int.random(in: -100...100_000, using: &rng))
        result.replaceSubrange(target, with: Array(replacement.utf8))
    case .replaceWord:
        result.replaceSubrange(token, with: Array(words.randomElement(using: &rng)!.utf8))
    case .insertBytes:
        let noise = (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        result.insert(contentsOf: noise, at: Int.random(in: 0...bytes.count, using: &rng))
    case .deepNesting:
        result.insert(contentsOf: nesting(using: &rng), at: token.lowerBound)
    }
    return result
}

/// Up to 2,000 levels of brackets, balanced or not, to probe the parser's recursion limits.
private func nesting(using rng: inout SplitMix64) -> [UInt8] {
    let pairs: [(String, String)] = [("(", ")"), ("{", "}"), ("[", "]"), ("<", ">"), ("Dense(", ")")]
    let (open, close) = pairs.randomElement(using: &rng)!
    let depth = Bool.random(using: &rng) ? 2000 : Int.random(in: 1...300, using: &rng)
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

private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

private func isWordByte(_ byte: UInt8) -> Bool {
    isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
        || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || byte == UInt8(ascii: "_")
        || byte == UInt8(ascii: ".")
}
