import Foundation
import MPLFrontend
import MPLFuzz
import MPLIR
import MPLModel
import Testing

/// One to three of the front end's own mutations, applied by MPLFuzz's mutator (whose `mplc fuzz` campaign adds
/// more kinds). The result may be invalid UTF-8; the same seed gives the same mutant.
func mutate(_ source: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
    let kinds: [Mutation] = [
        .truncate, .deleteToken, .duplicateToken, .swapTokens, .replaceNumber, .replaceWord, .insertBytes, .deepNesting,
    ]
    let mutator = Mutator(sources: [source])
    var bytes = source
    for _ in 0..<Int.random(in: 1...3, using: &rng) {
        bytes = mutator.apply(kinds.randomElement(using: &rng)!, to: bytes, using: &rng)
    }
    return bytes
}

/// The front end must end every input in a model or in diagnostics: no crash, no hang.
@Suite struct RobustnessTests {
    /// Seeded mutants of both examples. MPLC_FUZZ_COUNT raises the count for a longer soak;
    /// a failure names its seed, and `mutate` with that seed rebuilds the mutant. The seeds are
    /// spread over a few tasks so that the test uses every core.
    @Test func mutantsOfTheExamplesEndInAModelOrDiagnostics() async throws {
        let count = ProcessInfo.processInfo.environment["MPLC_FUZZ_COUNT"].flatMap(Int.init) ?? 1000
        let examples = try ["fashion_mlp.swiftdsl", "fashion_cnn.swiftdsl"].map {
            try Array(Data(contentsOf: URL(fileURLWithPath: Repository.example($0))))
        }
        let tasks = 8
        let tally = await withTaskGroup(of: FuzzTally.self) { group in
            for task in 0..<tasks {
                group.addTask { FuzzTally(seeds: Array(stride(from: task, to: count, by: tasks)), examples: examples) }
            }
            return await group.reduce(into: FuzzTally()) { $0.add($1) }
        }
        for failure in tally.malformed {
            Issue.record(Comment(rawValue: failure))
        }
        #expect(tally.models + tally.rejected == count)
        // Not vacuous: some mutants (a number swapped for a valid one) still parse, most do not.
        #expect(tally.models > 0 && tally.rejected > count / 2)
    }

    @Test func theMutatorIsDeterministicAndChangesItsInput() throws {
        let example = try Array(Data(contentsOf: URL(fileURLWithPath: Repository.example("fashion_mlp.swiftdsl"))))
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        #expect(mutate(example, using: &first) == mutate(example, using: &second))
        var rng = SplitMix64(seed: 1)
        let changed = (0..<100).filter { _ in mutate(example, using: &rng) != example }.count
        #expect(changed > 90)
    }

    @Test(arguments: ["(", "{", "[", "<", "Dense(", ".hard(", "-", "!", "try ", "await ", "#if X\n", "@a "])
    func twoThousandLevelsOfNesting(opener: String) {
        let closer =
            ["(": ")", "{": "}", "[": "]", "<": ">", "Dense(": ")", ".hard(": ")", "#if X\n": "#endif\n"][opener] ?? ""
        let deep = String(repeating: opener, count: 2000) + "1" + String(repeating: closer, count: 2000)
        for source in [
            smallModel(layers: "Dense(\(deep))"), "let x = \(deep)", deep, String(repeating: opener, count: 2000),
        ] {
            guard case .failure(let diagnostics) = Frontend.parse(source: source, fileName: "deep.swiftdsl") else {
                Issue.record("a deeply nested file parsed")
                continue
            }
            #expect(!diagnostics.isEmpty)
            #expect(!Frontend.render(diagnostics, source: source, fileName: "deep.swiftdsl").isEmpty)
        }
    }

    /// Inputs that crash swift-syntax 603.0.1 or take it minutes when given to it directly (stack
    /// overflows in recursive lookahead and deep trees, exponential backtracking on `[`, a trapping
    /// Fix-It, errors whose cost grows with the square of their number). SourceScreen keeps them
    /// from the parser; each must end in diagnostics within seconds.
    @Test(arguments: [
        ("[", 3000), ("[(", 20), ("a.", 30_000), ("a()", 10_000), ("x?", 3000), ("try ", 3000), ("some ", 3000),
        ("any ", 3000), ("repeat ", 3000), ("borrowing ", 3000), ("#if X\n", 3000), ("@a ", 3000), ("- ", 3000),
        ("\\.", 3000), ("1 ", 3000), ("Dense() ", 3000), (", ", 3000), ("a \u{6}= ", 3000), ("x \u{FFFD}= ", 300),
        ("return ", 3000), ("case ", 3000), ("a{}", 10_000),
    ])
    func swiftSyntaxHazardsEndInDiagnosticsQuickly(pattern: String, count: Int) {
        let source = "let x = " + String(repeating: pattern, count: count) + "1\n"
        let start = ContinuousClock.now
        guard case .failure(let diagnostics) = Frontend.parse(source: source, fileName: "hazard.swiftdsl") else {
            Issue.record("a hazard parsed")
            return
        }
        _ = Frontend.render(diagnostics, source: source, fileName: "hazard.swiftdsl")
        // Generous for a loaded machine and a debug build (each takes well under 2 s alone); the
        // hazards take minutes or crash without the screen.
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func invalidUTF8InAFileIsDecodedLossilyAndReported() throws {
        var bytes = Array(smallModel().utf8)
        bytes.insert(contentsOf: [0xFF, 0xC3], at: 0)  // invalid UTF-8 at the start of a line of code
        bytes.append(contentsOf: Array("// a comment with a bad byte: ".utf8) + [0x80, 0x0A])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mplc-invalid-\(getpid()).swiftdsl")
            .path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard case .failure(let diagnostics) = Frontend.parseFile(path: path) else {
            Issue.record("invalid UTF-8 in code was accepted")
            return
        }
        #expect(diagnostics.map(\.id).allSatisfy { $0 == "E001" })
        #expect(diagnostics.first?.location.line == 1)
        let source = try Frontend.readSource(path: path).get()
        #expect(source.hasPrefix("\u{FFFD}\u{FFFD}let input"))
    }

    @Test func controlCharactersAreNotPrintedRaw() {
        let source = smallModel(layers: "Flatten()\u{1B}[2J\n    Dense(10)")
        let rendered = diagnose(source)
        #expect(!rendered.isEmpty)
        #expect(!rendered.contains("\u{1B}"))
    }

    @Test func aLargeFileIsCheckedQuickly() throws {
        let layers =
            Array(repeating: "Dense(16)\n    ReLU()", count: 2000).joined(separator: "\n    ") + "\n    Dense(10)"
        let start = ContinuousClock.now
        let model = try #require(parsedModel(smallModel(layers: "Flatten()\n    " + layers)))
        #expect(model.teacher.layers.count == 4002)
        // Checking is linear; a debug build of swift-syntax parses about 5,000 statements a second.
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test(arguments: [
        "", "\0", "let", "let input", "let input =", "}", "{", "let mpl = MPL(", "\u{FEFF}", "#!/bin/mplc\n",
    ])
    func fragments(source: String) {
        guard case .failure(let diagnostics) = Frontend.parse(source: source, fileName: "f.swiftdsl") else {
            Issue.record("a fragment parsed")
            return
        }
        #expect(!diagnostics.isEmpty)
    }
}

/// What a run of mutants ended in.
struct FuzzTally: Sendable {
    var models = 0
    var rejected = 0
    /// Seeds whose diagnostics were empty or malformed, with their rendering.
    var malformed: [String] = []

    init() {}

    init(seeds: [Int], examples: [[UInt8]]) {
        for seed in seeds {
            var rng = SplitMix64(seed: UInt64(seed))
            let source = String(decoding: mutate(examples[seed % examples.count], using: &rng), as: UTF8.self)
            switch Frontend.parse(source: source, fileName: "mutant.swiftdsl") {
            case .success:
                models += 1
            case .failure(let diagnostics):
                rejected += 1
                let rendered = Frontend.render(diagnostics, source: source, fileName: "mutant.swiftdsl")
                let wellFormed =
                    !diagnostics.isEmpty && diagnostics.allSatisfy { $0.location.line >= 1 && $0.location.column >= 1 }
                    && rendered.components(separatedBy: ": error: ").count == diagnostics.count + 1
                if !wellFormed {
                    malformed.append("seed \(seed): malformed diagnostics\n\(rendered)")
                }
            }
        }
    }

    mutating func add(_ other: FuzzTally) {
        models += other.models
        rejected += other.rejected
        malformed += other.malformed
    }
}
