// Building `mplc-run` for a model, and the programs the tests run: the built `mplc` and the sanitizing clang.

import Foundation
import MPLCompiler
import MPLModel

/// The `mplc` built next to this test binary (test targets that run it depend on it, so that
/// `swift build --build-tests` builds both into the same directory).
public let mplcBinary: String = {
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: me).deletingLastPathComponent()
    // The test binary may sit inside an .xctest bundle directory on some platforms.
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("mplc").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return "mplc"
}()

/// clang with libFuzzer and the sanitizers: the Swift toolchain's.
public let clang: String = {
    if let override = ProcessInfo.processInfo.environment["MPLC_FUZZ_CC"] { return override }
    for candidate in ["/opt/swift/usr/bin/clang", "/usr/bin/clang"]
    where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
    }
    return "clang"
}()

public let sanitizerFlags = [
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1",
]

/// Runners (`mplc-run`) of models: the generated C compiled with the runner, as `mplc train` builds it.
public enum Runners {
    public enum Flavour: String, Sendable { case production, sanitized }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: [String: Result<String, Error>] = [:]

    /// The path of the runner of a model file; the build happens on first use and is shared by every test.
    public static func binary(modelFile: String, flavour: Flavour) throws -> String {
        let key = modelFile + "|" + flavour.rawValue
        lock.lock()
        defer { lock.unlock() }
        if let result = built[key] { return try result.get() }
        let result = Result {
            let model = try Compiler.load(path: modelFile).get()
            let directory = try temporaryDirectory("runner-\(model.name)-\(flavour.rawValue)")
            return try build(model, generatedDirectory: directory, flavour: flavour)
        }
        built[key] = result
        return try result.get()
    }

    /// Compiles `model` into `generatedDirectory` and builds its runner there (or at `output`); returns the runner.
    @discardableResult
    public static func build(
        _ model: Model, generatedDirectory: String, output: String? = nil, flavour: Flavour = .production,
        extraFlags: [String] = []
    ) throws -> String {
        let compiled = try Compiler.compile(model, regenerateCommand: "tests")
        try Compiler.write(compiled.files, to: generatedDirectory)
        let binary = output ?? generatedDirectory + "/mplc-run"
        switch flavour {
        case .production:
            try RunnerBuild.build(
                generatedDirectory: generatedDirectory, output: binary, templatesDirectory: Compiler.templatesDirectory,
                extraFlags: extraFlags, objectCache: testObjectCache)
        case .sanitized:
            let linker =
                FileManager.default.isExecutableFile(
                    atPath: URL(fileURLWithPath: clang).deletingLastPathComponent().path + "/ld.lld")
                ? ["-fuse-ld=lld"] : []
            try RunnerBuild.build(
                generatedDirectory: generatedDirectory, output: binary, templatesDirectory: Compiler.templatesDirectory,
                extraFlags: sanitizerFlags + extraFlags, linkFlags: linker, compiler: clang,
                objectCache: testObjectCache)
        }
        return binary
    }
}

/// Where the tests' trainer builds keep the runner's model-independent objects (RunnerBuild.build): shared by every
/// test and test run, each set in a folder keyed by the runner's sources, compiler and flags.
public let testObjectCache = NSTemporaryDirectory() + "mplc-test-objects"

/// Builds the trainer of `model` (generated C + runner) into a fresh directory; returns the directory.
public func buildTrainer(_ model: Model) throws -> String {
    let directory = try temporaryDirectory("trainer-\(model.name)")
    try Runners.build(model, generatedDirectory: directory)
    return directory
}
