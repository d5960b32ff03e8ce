// The one command runner of the test targets, and the errors and scratch directories that go with it.

import Foundation

/// A failed check in test support code (a command that failed, a file that is missing or malformed).
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
    public init(description: String) { self.description = description }
}

/// The name the end-to-end and codegen tests throw under.
public typealias CommandFailure = TestFailure

public struct CommandResult: Sendable {
    public var status: Int32
    /// True if the process was killed by a signal (status is then the signal number).
    public var signaled: Bool
    public var output: String
    public var seconds: Double
}

/// Runs a command (found on PATH) with stdout and stderr merged; never throws on a non-zero exit.
/// `environment` is added to this process's environment.
@discardableResult
public func run(_ arguments: [String], directory: String? = nil, environment: [String: String] = [:]) throws
    -> CommandResult
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let start = Date()
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
        output: output, seconds: Date().timeIntervalSince(start))
}

/// `run`, as the status and the output.
public func runCommand(_ arguments: [String], directory: String? = nil, environment: [String: String] = [:]) throws
    -> (status: Int32, output: String)
{
    let result = try run(arguments, directory: directory, environment: environment)
    return (result.status, result.output)
}

/// Runs a command; returns its output, or throws with it when the command exits non-zero.
@discardableResult
public func shell(_ arguments: [String], directory: String? = nil, environment: [String: String] = [:]) throws -> String
{
    let result = try run(arguments, directory: directory, environment: environment)
    guard result.status == 0 else {
        throw TestFailure("\(arguments.joined(separator: " ")) exited \(result.status):\n\(result.output)")
    }
    return result.output
}

/// The folder that holds every `temporaryDirectory` of this test process: the system's temporary directory
/// `mplc-tests-<pid>`, removed when the process exits. Before, each run of the tests left about 100 of its folders
/// (some 200 MB, most of them the generated-step checks' arenas) behind in /tmp.
private func temporaryRoot(_ pid: Int32) -> String { NSTemporaryDirectory() + "mplc-tests-\(pid)" }

private let removeTemporaryRootAtExit: Void = {
    atexit { try? FileManager.default.removeItem(atPath: temporaryRoot(getpid())) }
}()

/// A new, empty directory under this test process's temporary folder (`temporaryRoot`).
public func temporaryDirectory(_ name: String) throws -> String {
    _ = removeTemporaryRootAtExit
    let path = temporaryRoot(getpid()) + "/mplc-\(name)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
