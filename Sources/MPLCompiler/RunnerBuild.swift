// Builds the trainer: the generated model.c linked with the C runner of Templates/runner, by the system cc.

import Foundation
import MPLEmitC

#if canImport(Glibc)
    import Glibc
#endif

public enum RunnerBuild {
    /// Flags every build uses; `-Werror` so that a warning in generated code fails loudly, not silently.
    public static let baseFlags = ["-std=c11", "-O3", "-march=native", "-Wall", "-Wextra", "-Werror"]
    public static let libraries = ["-lopenblas", "-lz", "-lm"]
    /// The Debian packages that provide `mpicc` and `mpirun` (Open MPI), named when either is missing.
    public static let mpiPackages = "openmpi-bin libopenmpi-dev"

    /// `MPLC_RANKS` of a generated model.h: the processes that share each batch (1 when absent).
    public static func ranks(header: String) -> Int {
        for line in header.split(separator: "\n") where line.hasPrefix("#define MPLC_RANKS ") {
            return Int(line.dropFirst("#define MPLC_RANKS ".count).trimmingCharacters(in: .whitespaces)) ?? 1
        }
        return 1
    }

    /// How a model's trainer is compiled: with `cc`, or for a model compiled for several ranks with `mpicc
    /// -DMPLC_MPI` (the runner and the runtime's all-reduce then call MPI; docs/RUNNER.md, "Running under MPI").
    public static func toolchain(header: String, compiler: String = "cc") throws
        -> (compiler: String, flags: [String])
    {
        let ranks = ranks(header: header)
        guard ranks > 1 else { return (compiler, []) }
        guard let mpicc = findExecutable("mpicc") else {
            throw CompileFailure(
                "error: the model was compiled for \(ranks) ranks, and its trainer is built with mpicc, which is not "
                    + "installed (Debian: apt-get install \(mpiPackages))")
        }
        return (mpicc, ["-DMPLC_MPI"])
    }

    /// The first executable `name` on PATH, or nil.
    public static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Compiles `generatedDirectory/model.c` and every runner source, in parallel (one compiler per core), and links
    /// them into the executable `output`. The runner files that do not read the model (`modelIndependentSources`)
    /// are the same for every model: with `objectCache`, they are compiled once per runner, compiler, flags and CPU
    /// into `objectCache/runner-objects-<key>` (`objectsKey`), in a temporary folder renamed into place under a
    /// lock as `cachedBuild` does, and linked from there; a new model compiles only its own code and the runner
    /// files that include its header. `linkFlags` go to the link only (clang refuses `-fuse-ld` in a `-c` compile
    /// under `-Werror`).
    public static func build(
        generatedDirectory: String, output: String, templatesDirectory: String,
        extraFlags: [String] = [], linkFlags: [String] = [], compiler: String = "cc", objectCache: String? = nil
    ) throws {
        let runnerDirectory = templatesDirectory + "/runner"
        let sources = try runnerSources(runnerDirectory)
        let shared = objectCache == nil ? [] : try modelIndependentSources(in: runnerDirectory)
        let flags = baseFlags + extraFlags
        let scratch = try TemporaryDirectory.make(prefix: "mplc-objects-")  // this build's own objects
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let own = [generatedDirectory + "/model.c"] + sources.filter { !shared.contains($0) }
        let ownObjects = own.map { scratch + "/" + ($0.hasPrefix(runnerDirectory + "/") ? objectName($0) : "model.o") }
        var jobs = own.indices.map { flags + ["-I", generatedDirectory, "-c", own[$0], "-o", ownObjects[$0]] }
        var sharedObjects: [String] = []
        var lock: BuildLock?
        defer { lock?.release() }
        var pending: (temporary: String, directory: String)?  // shared objects compiled now, renamed when complete
        if let objectCache, !shared.isEmpty {
            let key = try objectsKey(templatesDirectory: templatesDirectory, compiler: compiler, extraFlags: extraFlags)
            let directory = objectCache + "/runner-objects-" + key
            sharedObjects = shared.map { directory + "/" + objectName($0) }
            // A folder is complete when it appears (rename); one with an object deleted since is built again.
            let complete = { sharedObjects.allSatisfy { FileManager.default.fileExists(atPath: $0) } }
            if !complete() {
                try createDirectory(objectCache)
                lock = try BuildLock(path: directory + ".lock")
                if !complete() {  // else another mplc built them while we waited for the lock
                    let temporary = objectCache + "/.tmp-runner-objects-" + key
                    try? FileManager.default.removeItem(atPath: temporary)
                    try? FileManager.default.removeItem(atPath: directory)
                    try createDirectory(temporary)
                    // After model.c, the slowest file: image.c, one of these, starts early.
                    jobs.insert(
                        contentsOf: shared.map { flags + ["-c", $0, "-o", temporary + "/" + objectName($0)] }, at: 1)
                    pending = (temporary, directory)
                }
            }
        }
        defer { if let pending { try? FileManager.default.removeItem(atPath: pending.temporary) } }
        try compileInParallel(compiler, jobs)
        if let pending, rename(pending.temporary, pending.directory) != 0 {
            throw CompileFailure(
                "error: cannot move the objects \(pending.temporary) to \(pending.directory): "
                    + String(cString: strerror(errno)))
        }
        try run(compiler, flags + linkFlags + ownObjects + sharedObjects + ["-o", output] + libraries)
    }

    static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CompileFailure("error: cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// The runner's C files, sorted, as paths.
    static func runnerSources(_ runnerDirectory: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: runnerDirectory)
                .filter { $0.hasSuffix(".c") }.sorted().map { runnerDirectory + "/" + $0 }
        } catch {
            throw CompileFailure("error: cannot read \(runnerDirectory): \(error.localizedDescription)")
        }
    }

    /// The object file of a runner source: `runner-<name>.o` (never the model's `model.o`).
    static func objectName(_ source: String) -> String {
        "runner-" + URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent + ".o"
    }

    /// The runner's C files whose `#include "..."` lines, followed through the runner's own headers, reach no
    /// header outside Templates/runner (model.h and mplc_runtime.h are the generated model's). Conservative: an
    /// include counts whatever `#if` surrounds it.
    public static func modelIndependentSources(in runnerDirectory: String) throws -> [String] {
        var readsModel: [String: Bool] = [:]
        func reachesModel(_ name: String, _ visiting: Set<String>) -> Bool {
            if let known = readsModel[name] { return known }
            guard !visiting.contains(name),
                let text = try? String(contentsOfFile: runnerDirectory + "/" + name, encoding: .utf8)
            else { return !visiting.contains(name) }  // not a runner file: the model's; a cycle adds nothing
            let result = quotedIncludes(text).contains { reachesModel($0, visiting.union([name])) }
            readsModel[name] = result
            return result
        }
        return try runnerSources(runnerDirectory).filter {
            !reachesModel(URL(fileURLWithPath: $0).lastPathComponent, [])
        }
    }

    /// The file names of a C text's `#include "name"` lines.
    static func quotedIncludes(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix("#") else { return nil }
            let directive = trimmed.dropFirst().drop { $0 == " " || $0 == "\t" }
            guard directive.hasPrefix("include") else { return nil }
            let rest = directive.dropFirst("include".count).drop { $0 == " " || $0 == "\t" }
            guard rest.first == "\"", let end = rest.dropFirst().firstIndex(of: "\"") else { return nil }
            return String(rest[rest.index(after: rest.startIndex)..<end])
        }
    }

    /// Runs `compiler` once per argument list, as many at a time as there are cores; throws the first failure (by
    /// position) after all have finished.
    static func compileInParallel(_ compiler: String, _ jobs: [[String]]) throws {
        let failures = Failures(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
            do { try run(compiler, jobs[index]) } catch { failures.record(index, error) }
        }
        if let first = failures.first { throw first }
    }

    /// The trainer of a compiled model, built once per content: `root/<model name>-<key>/mplc-run`, where the key
    /// is `buildKey` of what goes into the binary. A folder with that name is complete (it is built in a
    /// temporary folder and renamed into place under a lock), so it is reused as it is; two `mplc train` of
    /// different files with the same name, or of one file edited in between, never share or overwrite a build.
    /// Returns the binary and whether it was built now (false: reused).
    public static func cachedBuild(
        _ files: [(fileName: String, contents: String)], modelName: String,
        root: String = ".build-mplc", templatesDirectory: String,
        compiler: String = "cc"
    ) throws -> (binary: String, built: Bool) {
        let header = files.first(where: { $0.fileName == "model.h" })?.contents ?? ""
        let (compiler, mpiFlags) = try toolchain(header: header, compiler: compiler)
        let key = try buildKey(files, templatesDirectory: templatesDirectory, compiler: compiler, extraFlags: mpiFlags)
        let directory = root + "/" + modelName + "-" + key
        let binary = directory + "/mplc-run"
        if FileManager.default.isExecutableFile(atPath: binary) { return (binary, false) }
        try createDirectory(root)
        let lock = try BuildLock(path: directory + ".lock")
        defer { lock.release() }
        // Another mplc may have finished this build while we waited for the lock.
        if FileManager.default.isExecutableFile(atPath: binary) { return (binary, false) }
        // Only the lock's holder builds this key, so a temporary folder already there is a killed build's.
        let temporary = root + "/.tmp-" + modelName + "-" + key
        try? FileManager.default.removeItem(atPath: temporary)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        try Compiler.write(files, to: temporary)
        try build(
            generatedDirectory: temporary, output: temporary + "/mplc-run", templatesDirectory: templatesDirectory,
            extraFlags: mpiFlags, compiler: compiler, objectCache: root)
        guard rename(temporary, directory) == 0 else {
            throw CompileFailure(
                "error: cannot move the build \(temporary) to \(directory): \(String(cString: strerror(errno)))")
        }
        return (binary, true)
    }

    /// The first 16 hex digits of a SHA-256 over everything that makes the binary: the compiled model
    /// (MPLC_MODEL_HASH's text, so not the regenerate command), every file of Templates/runner and
    /// Templates/runtime, the compiler's identity (`--version`), the flags and libraries, and the CPU.
    public static func buildKey(
        _ files: [(fileName: String, contents: String)], templatesDirectory: String,
        compiler: String = "cc", extraFlags: [String] = []
    ) throws -> String {
        guard let header = files.first(where: { $0.fileName == "model.h" })?.contents,
            let source = files.first(where: { $0.fileName == "model.c" })?.contents,
            let runtime = files.first(where: { $0.fileName == CEmitter.runtimeFileName })?.contents
        else { throw CompileFailure("error: no model.h, model.c and \(CEmitter.runtimeFileName) to build") }
        return try key(
            ("model", CEmitter.modelHash(header: header, source: source, runtime: runtime)),
            templatesDirectory: templatesDirectory, compiler: compiler, extraFlags: extraFlags)
    }

    /// `buildKey` without the model: the key of the model-independent runner objects (`cachedObjects`).
    public static func objectsKey(templatesDirectory: String, compiler: String = "cc", extraFlags: [String] = [])
        throws -> String
    {
        try key(("objects", ""), templatesDirectory: templatesDirectory, compiler: compiler, extraFlags: extraFlags)
    }

    /// The first 16 hex digits of a SHA-256 over `first`, then every file of Templates/runner and
    /// Templates/runtime, the compiler's identity, the flags and libraries, and the CPU.
    static func key(
        _ first: (label: String, text: String), templatesDirectory: String, compiler: String, extraFlags: [String]
    ) throws -> String {
        var hasher = SHA256.Hasher()
        func add(_ label: String, _ bytes: [UInt8]) {
            // Label and length first, so that no two different inputs give the same byte stream.
            hasher.update(Array("\(label)\u{0}\(bytes.count)\u{0}".utf8))
            hasher.update(bytes)
        }
        add(first.label, Array(first.text.utf8))
        for folder in ["runner", "runtime"] {
            let path = templatesDirectory + "/" + folder
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path).sorted() } catch {
                throw CompileFailure("error: cannot read \(path): \(error.localizedDescription)")
            }
            for name in names {
                guard let data = FileManager.default.contents(atPath: path + "/" + name) else {
                    throw CompileFailure("error: cannot read \(path)/\(name)")
                }
                add(folder + "/" + name, Array(data))
            }
        }
        add("compiler", Array((compiler + "\n" + (try run(compiler, ["--version"]))).utf8))
        add("flags", Array((baseFlags + extraFlags + ["|"] + libraries).joined(separator: "\u{0}").utf8))
        // -march=native builds for this CPU: a .build-mplc shared by machines must not hand one the other's binary.
        add("cpu", Array(cpuIdentity.utf8))
        return String(hasher.finalizeHex().prefix(16))
    }

    /// The first processor's model name and feature flags from /proc/cpuinfo (empty where there is none).
    static var cpuIdentity: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let lines = info.split(separator: "\n")
        return ["model name", "flags"].compactMap { key in lines.first { $0.hasPrefix(key) } }.joined(separator: "\n")
    }

    /// Runs a built trainer (`mplc-run eval`, `predict`) for its standard output, its stderr (progress, errors)
    /// going to ours; returns its exit status and what it printed.
    public static func runTrainer(_ binary: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            throw CompileFailure("error: cannot run \(binary): \(error.localizedDescription)")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// Runs a tool, failing with its output when it exits non-zero; returns its output.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw CompileFailure("error: cannot run \(tool): \(error.localizedDescription)")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CompileFailure("error: \(tool) failed (exit \(process.terminationStatus)):\n" + output)
        }
        return output
    }
}

/// An exclusive `flock` on a lock file, held until `release` (or until the process ends, even by kill -9).
private struct BuildLock {
    let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            throw CompileFailure("error: cannot open the build lock \(path): \(String(cString: strerror(errno)))")
        }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw CompileFailure("error: cannot lock \(path): \(reason)")
            }
        }
    }

    func release() { close(descriptor) }
}

/// The errors of parallel jobs, by position (`compileInParallel`).
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error?]

    init(count: Int) { errors = Array(repeating: nil, count: count) }

    func record(_ index: Int, _ error: Error) {
        lock.lock()
        errors[index] = error
        lock.unlock()
    }

    var first: Error? {
        lock.lock()
        defer { lock.unlock() }
        return errors.compactMap { $0 }.first
    }
}
