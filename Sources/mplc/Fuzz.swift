// `mplc fuzz` (hidden from --help): the front end's fuzz campaign, run by Tests/MPLReliabilityTests and by
// hand for long campaigns (docs/RELIABILITY.md). Inputs run in a worker process, so a crash or a hang is
// reported with its input instead of ending the campaign.

import ArgumentParser
import Foundation
import MPLFuzz

struct Fuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Fuzz the front end with seeded mutants of model files; report crashes, hangs and malformed diagnostics.",
        discussion: """
            Examples:
              mplc fuzz --count 10000 --seed 1 --corpus Examples --corpus Tests/Fuzz/corpus/models --save /tmp/findings
              mplc fuzz --replay Tests/Fuzz/corpus/models      every file of the corpus, through Frontend.parseFile
              mplc fuzz --seed 1 --from 1234 --dump > input.swiftdsl    input 1234 of campaign seed 1
            Exit status 1 if any input crashed, hung or produced malformed diagnostics.
            """,
        shouldDisplay: false)

    @Option(help: "Inputs to run.")
    var count = 10_000
    @Option(help: "Campaign seed: input i is a function of (seed, i).")
    var seed: UInt64 = 1
    @Option(help: "First input index.")
    var from = 0
    @Option(help: "Model files, or directories of .swiftdsl files, to mutate (default: Examples).")
    var corpus: [String] = []
    @Option(help: "Run the .swiftdsl files of this directory instead of mutants.")
    var replay: String?
    @Option(help: "Seconds one input may take before it counts as a hang.")
    var timeout = 10.0
    @Option(help: "Directory for crashing, hanging and malformed inputs.")
    var save: String?
    @Flag(help: "Also compile every accepted model (step builder, lowering, C emission).")
    var compile = false
    @Flag(help: "Print input --from to stdout and exit.")
    var dump = false
    @Flag(help: .hidden)
    var worker = false

    func run() throws {
        let source: InputSource
        if let replay {
            source = .files(InputSource.modelFiles([replay]))
        } else {
            let files = InputSource.modelFiles(corpus.isEmpty ? ["Examples"] : corpus)
            guard !files.isEmpty else {
                throw ValidationError("no .swiftdsl files in \(corpus.isEmpty ? ["Examples"] : corpus)")
            }
            source = .mutants(sources: files, seed: seed)
        }
        let total = source.count(default: from + count)
        if dump {
            FileHandle.standardOutput.write(Data(source.input(from).bytes))
            return
        }
        let range = from..<max(from, replay == nil ? from + count : total)
        if worker {
            Campaign.work(source: source, range: range, compile: compile)
            return
        }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var command = [executable, "fuzz", "--worker", "--seed", String(seed), "--timeout", String(timeout)]
        if let replay { command += ["--replay", replay] }
        for path in corpus { command += ["--corpus", path] }
        if compile { command.append("--compile") }
        var options = CampaignOptions(source: source, range: range, workerCommand: command)
        options.timeout = timeout
        options.compile = compile
        options.saveDirectory = save
        let report = try Campaign.run(options) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let label = replay.map { "replay of \($0)" } ?? "seed \(seed), inputs \(range.lowerBound)..<\(range.upperBound)"
        print(report.summary(label: label), terminator: "")
        if report.failed { throw ExitCode(1) }
    }
}
