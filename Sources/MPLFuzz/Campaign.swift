// The fuzz campaign of `mplc fuzz`: a supervisor process runs the front end on inputs in a worker
// process, so that a crash or a hang is observed, recorded and saved instead of ending the campaign.
//
// Protocol: the worker prints one line per input, "<index> <outcome>" (InputOutcome.line), flushed. The
// supervisor reads them with a deadline; no line within `timeout` seconds is a hang (the worker is killed),
// end of output before the last index is a crash (the worker died). Either way the input is saved and a
// new worker continues with the next index.

import Foundation
import MPLCompiler

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where the inputs of a campaign come from.
public enum InputSource: Sendable {
    /// Mutants of `sources` (and models from the grammar), input i a function of (seed, i).
    case mutants(sources: [String], seed: UInt64)
    /// The files of a corpus directory, sorted by name, read through `Frontend.parseFile`.
    case files([String])

    public func count(default requested: Int) -> Int {
        if case .files(let paths) = self { return paths.count }
        return requested
    }

    /// The bytes of input `index` and how it was made.
    public func input(_ index: Int) -> (bytes: [UInt8], recipe: String) {
        inputs()(index)
    }

    /// A function from index to input that reads the source files once.
    public func inputs() -> (Int) -> (bytes: [UInt8], recipe: String) {
        switch self {
        case .mutants(let sources, let seed):
            let mutator = Self.mutator(sources)
            return { mutator.input(seed: seed, index: $0) }
        case .files(let paths):
            return { index in
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: paths[index]))).map { Array($0) } ?? []
                return (bytes, "file \(paths[index])")
            }
        }
    }

    /// Files over 64 KB are not mutated (each mutant would cost as much as the file): replay them instead.
    private static func mutator(_ sources: [String]) -> Mutator {
        Mutator(
            sources: sources.compactMap { try? Data(contentsOf: URL(fileURLWithPath: $0)) }.map { Array($0) }
                .filter { $0.count <= 65_536 })
    }

    /// `.swiftdsl` files named directly or found (not recursively) in the directories named.
    public static func modelFiles(_ paths: [String]) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.filter { $0.hasSuffix(".swiftdsl") }.sorted().map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        return files
    }
}

public struct CampaignOptions: Sendable {
    public var source: InputSource
    public var range: Range<Int>
    public var timeout: Double = 10
    public var compile = false
    /// Where crashing, hanging and malformed inputs are written (nil: not written).
    public var saveDirectory: String?
    /// The command that starts a worker: this executable and its arguments before the worker's own.
    public var workerCommand: [String]

    public init(source: InputSource, range: Range<Int>, workerCommand: [String]) {
        self.source = source
        self.range = range
        self.workerCommand = workerCommand
    }
}

public struct CampaignReport: Sendable {
    public var inputs = 0
    public var models = 0
    public var rejected = 0
    public var diagnosticCounts: [String: Int] = [:]
    public var crashes: [Finding] = []
    public var hangs: [Finding] = []
    public var malformed: [Finding] = []
    public var slowestSeconds = 0.0
    public var slowestIndex = -1
    public var seconds = 0.0

    public struct Finding: Sendable {
        public var index: Int
        public var recipe: String
        public var detail: String
        public var savedAs: String?
    }

    public var failed: Bool { !crashes.isEmpty || !hangs.isEmpty || !malformed.isEmpty }

    public func summary(label: String) -> String {
        var text = String(
            format: "fuzz: %d inputs (%@) in %.1f s (%.0f/s): %d models, %d rejected with diagnostics; "
                + "%d crashes, %d hangs, %d malformed; slowest input %.0f ms (#%d)\n",
            inputs, label, seconds, Double(inputs) / max(seconds, 1e-9), models, rejected,
            crashes.count, hangs.count, malformed.count, slowestSeconds * 1000, slowestIndex)
        let ids = diagnosticCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        if !ids.isEmpty {
            text += "fuzz: first diagnostic of each rejected input, by id: " + ids.joined(separator: ", ") + "\n"
        }
        for (kind, findings) in [("CRASH", crashes), ("HANG", hangs), ("MALFORMED", malformed)] {
            for finding in findings {
                text +=
                    "fuzz: \(kind) #\(finding.index) (\(finding.recipe)): \(finding.detail)"
                    + (finding.savedAs.map { "; saved as \($0)" } ?? "") + "\n"
            }
        }
        return text
    }
}

public enum Campaign {
    // MARK: worker

    /// Runs inputs `range` in this process, printing one protocol line per input. `MPLC_FUZZ_INJECT`
    /// ("crash@I,hang@J") makes input I trap and input J sleep: the self-test of the supervisor.
    public static func work(source: InputSource, range: Range<Int>, compile: Bool) {
        setvbuf(stdout, nil, _IOLBF, 0)
        let inject = ProcessInfo.processInfo.environment["MPLC_FUZZ_INJECT"] ?? ""
        let inputs = source.inputs()
        for index in range {
            if inject.contains("crash@\(index),") || inject.hasSuffix("crash@\(index)") {
                fatalError("MPLC_FUZZ_INJECT: crash at input \(index)")
            }
            if inject.contains("hang@\(index),") || inject.hasSuffix("hang@\(index)") {
                sleep(100_000)
            }
            let outcome: InputOutcome
            switch source {
            case .files(let paths): outcome = FrontendCheck.run(path: paths[index], compile: compile)
            case .mutants: outcome = FrontendCheck.run(inputs(index).bytes, compile: compile)
            }
            print("\(index) \(outcome.line)")
        }
    }

    // MARK: supervisor

    public static func run(_ options: CampaignOptions, progress: ((String) -> Void)? = nil) throws -> CampaignReport {
        var report = CampaignReport()
        let start = Date()
        var next = options.range.lowerBound
        while next < options.range.upperBound {
            let worker = try Worker(
                command: options.workerCommand + [
                    "--from", String(next), "--count",
                    String(options.range.upperBound - next),
                ])
            var lastLine = Date()
            while next < options.range.upperBound {
                let remaining = options.timeout - Date().timeIntervalSince(lastLine)
                switch worker.readLine(timeout: max(remaining, 0)) {
                case .line(let line):
                    let elapsed = Date().timeIntervalSince(lastLine)
                    lastLine = Date()
                    let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                    guard parts.count == 2, let index = Int(parts[0]), index == next,
                        let outcome = InputOutcome(line: parts[1])
                    else {
                        continue  // not a protocol line (e.g. a print from a library): ignore it
                    }
                    if elapsed > report.slowestSeconds {
                        (report.slowestSeconds, report.slowestIndex) = (elapsed, index)
                    }
                    report.inputs += 1
                    switch outcome {
                    case .model: report.models += 1
                    case .diagnostics(let ids):
                        report.rejected += 1
                        report.diagnosticCounts[ids.first ?? "?", default: 0] += 1
                    case .malformed(let why):
                        report.malformed.append(finding(next, why, "malformed", options))
                    }
                    next += 1
                    if report.inputs % 1000 == 0 { progress?("fuzz: \(report.inputs) inputs...") }
                case .timeout:
                    worker.kill()
                    report.inputs += 1
                    report.hangs.append(
                        finding(next, String(format: "no result after %.0f s", options.timeout), "hang", options))
                    next += 1
                    lastLine = Date()
                case .end:
                    let status = worker.wait()
                    if next < options.range.upperBound {
                        report.inputs += 1
                        let tail = worker.stderrTail()
                        report.crashes.append(
                            finding(next, status + (tail.isEmpty ? "" : ": " + tail), "crash", options))
                        next += 1
                    }
                }
                if worker.finished { break }
            }
            worker.kill()
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    private static func finding(_ index: Int, _ detail: String, _ kind: String, _ options: CampaignOptions)
        -> CampaignReport.Finding
    {
        let input = options.source.input(index)
        var saved: String?
        if let directory = options.saveDirectory {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let tag: String
            if case .mutants(_, let seed) = options.source {
                tag = "seed\(seed)-\(index)"
            } else {
                tag = "file\(index)"
            }
            let path = directory + "/\(kind)-\(tag).swiftdsl"
            if (try? Data(input.bytes).write(to: URL(fileURLWithPath: path))) != nil { saved = path }
        }
        return .init(index: index, recipe: input.recipe, detail: detail, savedAs: saved)
    }
}

/// A worker process whose stdout is read line by line with a deadline.
final class Worker {
    enum Read {
        case line(String)
        case timeout, end
    }

    private let process = Process()
    private let stdoutPipe = Pipe()
    private let scratch: String  // holds the worker's stderr
    private let stderrFile: String
    private var buffer: [UInt8] = []
    private var eof = false
    private(set) var finished = false

    init(command: [String]) throws {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash should end the worker at once, not after a backtrace
        process.environment = environment
        process.standardOutput = stdoutPipe
        scratch = try TemporaryDirectory.make(prefix: "mplc-fuzz-worker-")
        stderrFile = scratch + "/stderr"
        _ = FileManager.default.createFile(atPath: stderrFile, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        try process.run()
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func readLine(timeout: Double) -> Read {
        let fd = stdoutPipe.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return .line(line)
            }
            if eof { return .end }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return .timeout }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left * 1000, 1000)) + 1)
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { eof = true } else { buffer += chunk[..<count] }
        }
    }

    /// "signal 4 (SIGILL)" or "exit 1".
    func wait() -> String {
        process.waitUntilExit()
        finished = true
        let code = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            let name = String(cString: strsignal(code))
            return "killed by signal \(code) (\(name))"
        }
        return "exited with status \(code) before the last input"
    }

    func kill() {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        finished = true
    }

    /// What the worker said when it died: the runtime's fatal error line if there is one, else its last lines.
    func stderrTail() -> String {
        let text = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        if let fatal = lines.first(where: { $0.contains("Fatal error") || $0.contains("error:") }) {
            return String(fatal.prefix(400))
        }
        return String(lines.suffix(3).joined(separator: " | ").prefix(400))
    }
}
