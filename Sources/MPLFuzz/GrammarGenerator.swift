// Random model files drawn from the DSL's grammar (the README's DSL reference; Tests/MPLFrontendTests/
// GrammarTests.swift): every layer and setting with argument values at and beyond their bounds. Most are
// well-formed, so the fuzz campaign also reaches the checks behind the parser (ranges, shapes, names).

import MPLIR
import MPLModel

public enum GrammarGenerator {
    /// A whole model file: input, classes, one or two networks and the MPL block, in a random order.
    public static func model(using rng: inout SplitMix64) -> String {
        let input: String
        if Int.random(in: 0..<4, using: &rng) == 0 {
            input = "let input = Features(\(size(using: &rng)))"
        } else {
            let side = [1, 2, 3, 7, 8, 28, 28, 28, 32, 1000, 1_000_000].randomElement(using: &rng)!
            input =
                "let input = Image(channels: \(["1", "3", size(using: &rng)].randomElement(using: &rng)!), "
                + "height: \(side), width: \(Bool.random(using: &rng) ? side : Int.random(in: 1...64, using: &rng)))"
        }
        let classes = "let classes = \([2, 10, 10, 1, 0, 100, 1_000_000].randomElement(using: &rng)!)"
        let shared = Int.random(in: 0..<4, using: &rng) == 0
        let teacher = "let teacher = Sequential {\n\(network(using: &rng))}"
        let student = "let student = Sequential {\n\(network(using: &rng))}"
        let settings = (0..<Int.random(in: 0...10, using: &rng)).map { _ in "    " + setting(using: &rng) }.joined(
            separator: "\n")
        let mpl = "let mpl = MPL(teacher: teacher, student: \(shared ? "teacher" : "student")) {\n\(settings)\n}"
        var declarations = [input, classes, teacher, mpl] + (shared ? [] : [student])
        if Int.random(in: 0..<3, using: &rng) == 0 { declarations.shuffle(using: &rng) }
        return "// drawn from the grammar\n" + declarations.joined(separator: "\n\n") + "\n"
    }

    static func network(using rng: inout SplitMix64) -> String {
        var lines: [String] = []
        if Bool.random(using: &rng) { lines.append("Flatten()") }
        for _ in 0..<Int.random(in: 0...6, using: &rng) { lines.append(layer(using: &rng)) }
        lines.append("Dense(\([10, 10, 2, 1, 0].randomElement(using: &rng)!))")
        return lines.map { "    " + $0 + "\n" }.joined()
    }

    public static func layer(using rng: inout SplitMix64) -> String {
        switch Int.random(in: 0..<14, using: &rng) {
        case 0: return "Dense(\(size(using: &rng)))"
        case 1: return "Dense(units: \(size(using: &rng)))"
        case 2:
            return
                "Conv2D(\(size(using: &rng)), kernel: \(small(using: &rng)), stride: \(small(using: &rng)), padding: \(small(using: &rng)))"
        case 3: return "Conv2D(filters: \(size(using: &rng)), kernel: \(small(using: &rng)))"
        case 4: return "MaxPool2D(\(small(using: &rng)))"
        case 5: return "AvgPool2D(size: \(small(using: &rng)), stride: \(small(using: &rng)))"
        case 6: return "Dropout(rate: \(real(using: &rng)))"
        case 7, 8:
            // An activation that takes an argument, given it unlabelled or labelled.
            let kind = Activation.Kind.allCases.filter { $0.argument != nil }.randomElement(using: &rng)!
            let label = kind.argument!.label
            return "\(kind.rawValue)(" + (Bool.random(using: &rng) ? "" : "\(label): ") + "\(real(using: &rng)))"
        case 9: return Activation.Kind.allCases.randomElement(using: &rng)!.rawValue + "()"
        case 10: return "GlobalAvgPool()"
        case 11: return "Flatten()"
        case 12: return "MaxPool2D(size: \(small(using: &rng)), stride: \(small(using: &rng)))"
        default: return "Dropout(\(real(using: &rng)))"
        }
    }

    public static func setting(using rng: inout SplitMix64) -> String {
        switch Int.random(in: 0..<17, using: &rng) {
        case 0: return "labeledBatch(\(size(using: &rng)))"
        case 1: return "unlabeledRatio(\(small(using: &rng)))"
        case 2:
            return
                "pseudoLabels(\([".hard(.argmax)", ".hard(.sampled)", ".soft(temperature: \(real(using: &rng)))"].randomElement(using: &rng)!))"
        case 3: return "feedback(\([".dotProduct", ".lossDifference", ".other"].randomElement(using: &rng)!))"
        case 4:
            return
                "uda(temperature: \(real(using: &rng)), threshold: \(real(using: &rng)), weight: \(real(using: &rng)), rampSteps: \(count(using: &rng)))"
        case 5: return "labelSmoothing(\(real(using: &rng)))"
        case 6:
            return
                "\(Bool.random(using: &rng) ? "teacher" : "student")Optimizer(SGD(learningRate: \(real(using: &rng)), "
                + "momentum: \(real(using: &rng)), nesterov: \(Bool.random(using: &rng)), weightDecay: \(real(using: &rng)), "
                + "warmupSteps: \(count(using: &rng)), cosineDecay: \(Bool.random(using: &rng))))"
        case 7:
            return
                "\(Bool.random(using: &rng) ? "teacher" : "student")Optimizer(\(Bool.random(using: &rng) ? "Adam" : "AdamW")("
                + "learningRate: \(real(using: &rng)), beta1: \(real(using: &rng)), beta2: \(real(using: &rng)), "
                + "epsilon: \(real(using: &rng)), weightDecay: \(real(using: &rng)), warmupSteps: \(count(using: &rng))))"
        case 8: return "studentWaitSteps(\(count(using: &rng)))"
        case 9: return "steps(\(count(using: &rng)))"
        case 10:
            return
                "finetune(steps: \(count(using: &rng)), learningRate: \(real(using: &rng)), batch: \(size(using: &rng)), momentum: \(real(using: &rng)))"
        case 11: return "seed(\(count(using: &rng)))"
        case 12: return "evalBatch(\(size(using: &rng)))"
        case 13: return "initialization(\(Bool.random(using: &rng) ? ".uniform(\(real(using: &rng)))" : ".heUniform"))"
        case 14: return "emaDecay(\(real(using: &rng)))"
        case 15: return "pseudoLabelsFrom(\([".strongView", ".weakView", ".other"].randomElement(using: &rng)!))"
        default: return "finetune(batch: \(size(using: &rng)))"
        }
    }

    public static func statement(using rng: inout SplitMix64) -> String {
        Bool.random(using: &rng) ? "let x = Sequential { \(layer(using: &rng)) }\n" : setting(using: &rng) + "\n"
    }

    /// Sizes (units, filters, channels, batches): typical values, the bounds 1 and 1,000,000, and beyond.
    static func size(using rng: inout SplitMix64) -> String {
        Int.random(in: 0..<5, using: &rng) == 0
            ? edgeNumber(using: &rng)
            : String(
                [1, 2, 3, 8, 10, 16, 32, 64, 128, 256, 512, 1_000, 999_999, 1_000_000, 1_000_001].randomElement(
                    using: &rng)!)
    }

    static func small(using rng: inout SplitMix64) -> String {
        Int.random(in: 0..<6, using: &rng) == 0 ? edgeNumber(using: &rng) : String(Int.random(in: 0...7, using: &rng))
    }

    static func count(using rng: inout SplitMix64) -> String {
        Int.random(in: 0..<5, using: &rng) == 0
            ? edgeNumber(using: &rng)
            : String([0, 1, 2, 10, 100, 300, 5_000, 1_000_000, Int.max].randomElement(using: &rng)!)
    }

    static func real(using rng: inout SplitMix64) -> String {
        Int.random(in: 0..<5, using: &rng) == 0
            ? edgeNumber(using: &rng)
            : [
                "0", "0.0", "0.1", "0.5", "0.6", "0.7", "0.9", "0.99", "1", "1.0", "2", "5e-4", "1e-9", "1e9", "1e308",
                "4.9e-324", "0x1p-1", "1_0.5", "true",
            ].randomElement(using: &rng)!
    }

    /// Numbers that probe the edges: overflow, negatives, zero, infinity, underflow, odd spellings.
    public static func edgeNumber(using rng: inout SplitMix64) -> String {
        Bool.random(using: &rng)
            ? edgeNumbers.randomElement(using: &rng)! : String(Int.random(in: -100...100_000, using: &rng))
    }

    private static let edgeNumbers = [
        "99999999999999999999999", "-1", "0", "-0.5", "1e400", "1e-400", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "0x7fffffffffffffff", "0xffffffffffffffff", "1_000_000_000",
        "3.5", "1_0", "0b101", "-0", "2", "0o777", "1e", "0x", "0x1p", ".5", "5.", "1__0", "0_", "1e+", "--1", "+1",
        "1.7976931348623157e308", "2.2250738585072014e-308", "1000001", "999999", "65536", "2147483648", "4294967296",
    ]
}
