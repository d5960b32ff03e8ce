import Foundation
import MPLAutodiff
import MPLCompiler
import MPLEmitC
import MPLIR
import MPLLower
import MPLModel

/// The repository root, found from this file (tests run from any directory).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command and returns its output; throws with the output when it exits non-zero.
/// Runs a command with stdout and stderr merged; never throws on a non-zero exit.
func runCommand(_ arguments: [String], directory: String? = nil, environment: [String: String] = [:]) throws
    -> (status: Int32, output: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// Runs a command; throws with its output when it exits non-zero.
@discardableResult
func shell(_ arguments: [String], directory: String? = nil, environment: [String: String] = [:]) throws -> String {
    let (status, output) = try runCommand(arguments, directory: directory, environment: environment)
    guard status == 0 else {
        throw CommandFailure(description: "\(arguments.joined(separator: " ")) exited \(status):\n\(output)")
    }
    return output
}

func temporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "mplc-\(name)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func writeFloats(_ values: [Float], to path: String) throws {
    try values.withUnsafeBufferPointer { try Data(buffer: $0).write(to: URL(fileURLWithPath: path)) }
}

func readFloats(_ path: String) throws -> [Float] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

/// The worst violation of |c − ref| ≤ atol + rtol·|ref| over a tensor, as a multiple of the allowance (≤ 1 passes).
func worstViolation(_ c: ArraySlice<Float>, _ reference: [Double], atol: Double, rtol: Double) -> (ratio: Double, index: Int) {
    var worst = (ratio: 0.0, index: -1)
    for (i, (a, b)) in zip(c, reference).enumerated() {
        let ratio = abs(Double(a) - b) / (atol + rtol * abs(b))
        if !(ratio <= worst.ratio) { worst = (ratio.isNaN ? .infinity : ratio, i) }
    }
    return worst
}
