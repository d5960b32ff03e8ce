// Builds the trainer: the generated model.c linked with the C runner of Templates/runner, by the system cc.

import Foundation

public enum RunnerBuild {
    /// Flags every build uses; `-Werror` so that a warning in generated code fails loudly, not silently.
    public static let baseFlags = ["-std=c11", "-O3", "-march=native", "-Wall", "-Wextra", "-Werror"]
    public static let libraries = ["-lopenblas", "-lz", "-lm"]

    /// Compiles `generatedDirectory/model.c` with every runner source into the executable `output`.
    public static func build(generatedDirectory: String, output: String, templatesDirectory: String,
                             extraFlags: [String] = [], compiler: String = "cc") throws {
        let runnerDirectory = templatesDirectory + "/runner"
        let sources = try FileManager.default.contentsOfDirectory(atPath: runnerDirectory)
            .filter { $0.hasSuffix(".c") }.sorted().map { runnerDirectory + "/" + $0 }
        let arguments = baseFlags + extraFlags + ["-I", generatedDirectory, "-I", templatesDirectory + "/runtime",
                                                  generatedDirectory + "/model.c"] + sources + ["-o", output] + libraries
        try run(compiler, arguments)
    }

    /// Runs a tool, failing with its output when it exits non-zero.
    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { throw CompileFailure("error: cannot run \(tool): \(error.localizedDescription)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CompileFailure("error: \(tool) failed (exit \(process.terminationStatus)):\n"
                + String(decoding: output, as: UTF8.self))
        }
    }
}
