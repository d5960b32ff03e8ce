// Test support: emit a program, build it with the system C compiler (-Werror) and the generated debug
// harness, run one entry point on given arenas, and compare with the Double reference interpreter.

import Foundation
import MPLEmitC
import MPLIR
import MPLLower
@_exported import MPLTestSupport
import Testing

/// Runs a command in `directory` with one BLAS thread and `threads` harness threads; throws on failure.
@discardableResult
func runCommand(_ arguments: [String], in directory: URL, threads: Int = 1) throws -> String {
    // Tiny matrices: BLAS threads only add noise and time. MPLC_THREADS: the harness's threads for parallel kernels.
    try shell(
        arguments, directory: directory.path,
        environment: ["OPENBLAS_NUM_THREADS": "1", "MPLC_THREADS": "\(threads)"])
}

func writeFloats(_ values: [Float], to url: URL) throws {
    let bytes = values.flatMap { value -> [UInt8] in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    try Data(bytes).write(to: url)
}

func readFloats(_ url: URL) throws -> [Float] {
    let data = try Data(contentsOf: url)
    return stride(from: 0, to: data.count, by: 4).map { offset in
        let bits = data[offset..<offset + 4].enumerated().reduce(UInt32(0)) {
            $0 | UInt32($1.element) << (8 * UInt32($1.offset))
        }
        return Float(bitPattern: bits)
    }
}

/// A generated model built into a harness executable.
struct BuiltModel {
    let directory: URL
    let kernels: KernelProgram
    let files: [(fileName: String, contents: String)]
    /// Threads the harness runs parallel kernels on.
    let threads: Int

    /// Emits, compiles model.c exactly as the CLI documents (-std=c11 -O2 -Wall -Wextra -Werror -c), links the harness.
    init(_ program: Program, options: LoweringOptions = LoweringOptions(), naiveGEMM: Bool = false, threads: Int = 1)
        throws
    {
        self.threads = threads
        kernels = Lowering.lower(program, options: options)
        files = try CEmitter.emit(kernels)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mplc-codegen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for file in files {
            try file.contents.write(
                to: directory.appendingPathComponent(file.fileName), atomically: true, encoding: .utf8)
        }
        try CEmitter.emitHarness(kernels).write(
            to: directory.appendingPathComponent("harness.c"), atomically: true, encoding: .utf8)
        let flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"] + (naiveGEMM ? ["-DMPLC_NAIVE_GEMM"] : [])
        try runCommand(["cc"] + flags + ["-c", "model.c", "-o", "model.o"], in: directory)
        // The naive build links without OpenBLAS: it must not need it.
        try runCommand(
            ["cc"] + flags + ["harness.c", "model.o", "-o", "harness"] + (naiveGEMM ? [] : ["-lopenblas"]) + ["-lm"],
            in: directory)
    }

    /// Set MPLC_CODEGEN_KEEP=1 to keep the generated files for reading (the directory is printed).
    func remove() {
        if ProcessInfo.processInfo.environment["MPLC_CODEGEN_KEEP"] != nil {
            print("kept \(directory.path)")
        } else {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Runs `entry` with the given state tensors and inputs (by name); returns the arenas after the call.
    func run(_ entry: String, state: [String: [Float]], inputs: [String: [Float]]) throws -> EntryRun {
        let function = kernels.entryPoints.first { $0.name == entry }!
        let bindings = function.bindings
        var stateArena = [Float](repeating: .nan, count: kernels.state.floats)
        for tensor in kernels.state.tensors {
            stateArena.replaceSubrange(tensor.offset..<tensor.offset + tensor.count, with: state[tensor.name]!)
        }
        var ioArena = [Float](repeating: .nan, count: bindings.ioFloats)
        for tensor in bindings.ioInputs {
            ioArena.replaceSubrange(tensor.offset..<tensor.offset + tensor.count, with: inputs[tensor.name]!)
        }
        var buffers: [(name: String, values: [Float])] = []
        if bindings.usesState { buffers.append(("state", stateArena)) }
        if bindings.usesIO { buffers.append(("io", ioArena)) }
        for argument in bindings.argumentInputs { buffers.append((argument.name, inputs[argument.name]!)) }
        for argument in bindings.argumentOutputs {
            buffers.append((argument.name, [Float](repeating: .nan, count: argument.shape.count)))
        }
        var paths: [String] = []
        for (index, buffer) in buffers.enumerated() {
            let url = directory.appendingPathComponent("\(entry)-\(index).f32")
            try writeFloats(buffer.values, to: url)
            paths.append(url.path)
        }
        try runCommand(["./harness", entry] + paths, in: directory, threads: threads)
        var after: [String: [Float]] = [:]
        for (index, buffer) in buffers.enumerated() {
            after[buffer.name] = try readFloats(URL(fileURLWithPath: paths[index]))
        }
        return EntryRun(function: function, state: kernels.state, arenas: after)
    }
}

/// The arenas after one call, read by tensor name.
struct EntryRun {
    let function: LoweredFunction
    let state: ArenaLayout
    let arenas: [String: [Float]]

    func stateTensor(_ name: String) -> [Float] {
        let tensor = state.tensor(named: name)!
        return Array(arenas["state"]![tensor.offset..<tensor.offset + tensor.count])
    }

    func result(_ name: String) -> [Float] {
        switch function.bindings.resultStorage[name]! {
        case .state: return stateTensor(name)
        case .io:
            let tensor = function.bindings.ioOutputs.first { $0.name == name }!
            return Array(arenas["io"]![tensor.offset..<tensor.offset + tensor.count])
        case .argument: return arenas[name]!
        }
    }

    func ioInput(_ name: String) -> [Float] {
        let tensor = function.bindings.ioInputs.first { $0.name == name }!
        return Array(arenas["io"]![tensor.offset..<tensor.offset + tensor.count])
    }
}

/// |c − r| ≤ atol + rtol·|r|. The C code computes in f32 and the reference in f64: inputs are the same f32
/// numbers, so the error is f32 rounding (unit roundoff 6e-8) grown by sums over at most ~100 terms, a few
/// libm ulps in exp/log/tanh, and cancellation in softmax/cross-entropy gradients of values of size ~1.
/// 1e-5 + 1e-4·|r| is ~100× the worst error we measured and still far below any real bug (a wrong index,
/// a missed update, a stale read are errors of order 1e-1 or more).
struct Tolerance {
    var absolute = 1e-5
    var relative = 1e-4
}

/// The largest error seen, for the report.
struct ErrorStats {
    var maxAbsolute = 0.0
    var maxRelative = 0.0  // |c − r| / max(|r|, 1e-3)
    var worst = ""
    var compared = 0
    /// The largest |c − r| / (atol + rtol·|r|): how much of the tolerance was used.
    var toleranceUsed = 0.0

    mutating func record(_ c: Float, _ r: Double, _ what: String, _ tolerance: Tolerance) {
        let error = abs(Double(c) - r)
        compared += 1
        toleranceUsed = max(toleranceUsed, error / (tolerance.absolute + tolerance.relative * abs(r)))
        if error > maxAbsolute {
            maxAbsolute = error
            worst = what
        }
        maxRelative = max(maxRelative, error / max(abs(r), 1e-3))
    }

    var summary: String {
        "\(compared) numbers, max |error| \(String(format: "%.3g", maxAbsolute)) (\(worst)), "
            + "max relative \(String(format: "%.3g", maxRelative)), \(String(format: "%.1f%%", 100 * toleranceUsed)) of tolerance"
    }
}

/// Runs `entry` in C and in the interpreter on the same numbers and checks every result, every state tensor
/// (updated ones against the reference, the others unchanged) and that inputs were not written.
@discardableResult
func checkAgainstInterpreter(
    _ model: BuiltModel, _ program: Program, entry name: String, state: [String: [Float]],
    inputs: [String: [Float]], tolerance: Tolerance = Tolerance(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> ErrorStats {
    let entry = program.entryPoints.first { $0.name == name }!
    let run = try model.run(name, state: state, inputs: inputs)
    var referenceInputs: [String: [Double]] = [:]
    for (tensorName, storage) in entry.inputStorage.sorted(by: { $0.key < $1.key }) {
        referenceInputs[tensorName] = (storage == .state ? state[tensorName]! : inputs[tensorName]!).map(Double.init)
    }
    let reference = try Interpreter.results(entry.graph, inputs: referenceInputs)
    var stats = ErrorStats()
    for result in entry.graph.results {
        let expected = reference[result.name]!
        let actual = run.result(result.name)
        #expect(actual.count == expected.count, "\(result.name) size", sourceLocation: sourceLocation)
        var failures = 0
        for (index, (c, r)) in zip(actual, expected).enumerated() {
            stats.record(c, r, "\(result.name)[\(index)]", tolerance)
            let ok = abs(Double(c) - r) <= tolerance.absolute + tolerance.relative * abs(r)
            if !ok && failures < 3 {
                failures += 1
                Issue.record("\(name): \(result.name)[\(index)] = \(c), reference \(r)", sourceLocation: sourceLocation)
            }
        }
    }
    for tensor in model.kernels.state.tensors where entry.resultStorage[tensor.name] != .state {
        #expect(
            run.stateTensor(tensor.name) == state[tensor.name]!, "\(name) changed state \(tensor.name)",
            sourceLocation: sourceLocation)
    }
    if run.arenas["io"] != nil {
        for tensor in run.function.bindings.ioInputs {
            #expect(
                run.ioInput(tensor.name) == inputs[tensor.name]!, "\(name) changed input \(tensor.name)",
                sourceLocation: sourceLocation)
        }
    }
    return stats
}

/// Random values for every state tensor of `program` and every non-state input of `entry`.
func randomArguments(
    _ program: Program, entry name: String, seed: UInt64,
    special: [String: [Float]] = [:]
) -> (state: [String: [Float]], inputs: [String: [Float]]) {
    var random = SplitMix64(seed: seed)
    var state: [String: [Float]] = [:]
    for tensor in program.state { state[tensor.name] = special[tensor.name] ?? random.floats(tensor.shape.count) }
    var inputs: [String: [Float]] = [:]
    let entry = program.entryPoints.first { $0.name == name }!
    for input in entry.graph.inputs where entry.inputStorage[input.name] != .state {
        inputs[input.name] = special[input.name] ?? random.floats(entry.graph.shape(of: input.value).count)
    }
    return (state, inputs)
}
