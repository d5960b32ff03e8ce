// `mplc export --format onnx`: the trained student as an ONNX model (docs/EXPORT.md). Swift does what it does for
// the C export (reads and checks the checkpoint, folds BatchNorm) and writes a plain description, the layer list
// as JSON and the folded weights as raw little-endian float32, to a temporary folder; Templates/onnx_export.py,
// kept in the repository, builds the graph with the `onnx` package and checks it. Python runs from an argument
// array, never a shell, and names from the model file reach the ONNX file only as protobuf strings.

import Foundation
import MPLEmitC
import MPLModel
import MPLStep

/// What `mplc export --format onnx` wrote.
public struct ExportedONNX {
    public var path: String
    public var network: InferenceNetwork
    public var weightFloats: Int
}

extension Compiler {
    /// The script that turns the description into an ONNX file.
    static let onnxScript = "onnx_export.py"

    /// The student of `model` with the weights of `checkpoint` (with `ema`, its EMA's) as `directory/<name>.onnx`
    /// (`<name>` as for the C export), for any batch size, built by `python` (default: python3 on PATH).
    public static func exportONNX(
        _ model: Model, checkpoint path: String, ema: Bool, to directory: String,
        python: String? = nil,
        templatesDirectory: String = Compiler.templatesDirectory
    ) throws -> ExportedONNX {
        let network = InferenceNetwork(model: model)
        let student = try studentTensors(of: model, network: network, checkpoint: path, ema: ema)
        let origin = (ema ? "the EMA of the student (ema/ tensors) in " : "the student in ") + path
        return try exportONNX(
            network, student: student, origin: origin, to: directory, python: python,
            templatesDirectory: templatesDirectory)
    }

    /// `network` with the student's tensors `student` (by their checkpoint names, unfolded) as
    /// `directory/<name>.onnx`; `origin` (where the tensors came from) goes into the model's doc string.
    public static func exportONNX(
        _ network: InferenceNetwork, student: [String: [Float]], origin: String,
        to directory: String, python: String? = nil,
        templatesDirectory: String = Compiler.templatesDirectory
    ) throws -> ExportedONNX {
        let model = network.model
        let weights = network.weights(from: student)
        let python = try python ?? pythonExecutable()
        let script = templatesDirectory + "/" + onnxScript
        guard FileManager.default.isReadableFile(atPath: script) else {
            throw CompileFailure(
                "error: \(script) not found: the ONNX export needs mplc's Templates (set MPLC_TEMPLATES)")
        }

        // The description: tensors in the order of the C library's weights, one raw float32 file.
        var tensors: [[String: Any]] = []
        var data = Data()
        for info in network.tensors {
            let values = weights[info.name]!
            tensors.append(["name": info.name, "shape": info.shape.dims, "offset": data.count / 4])
            data.reserveCapacity(data.count + 4 * values.count)
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        let input: [Int]
        switch model.input.featureShape {
        case .image(let h, let w, let c): input = [h, w, c]
        case .vector(let d): input = [d]
        }
        let description: [String: Any] = [
            "name": model.name, "input": input, "classes": model.classes,
            "origin": origin,
            "layers": network.layerDescription, "tensors": tensors,
        ]
        let manager = FileManager.default
        let work = try TemporaryDirectory.make(prefix: "mplc-onnx-")
        defer { try? manager.removeItem(atPath: work) }
        let output = URL(fileURLWithPath: directory).appendingPathComponent(CSyntax.identifier(model.name) + ".onnx")
            .path
        do {
            try JSONSerialization.data(withJSONObject: description, options: [.sortedKeys])
                .write(to: URL(fileURLWithPath: work + "/model.json"))
            try data.write(to: URL(fileURLWithPath: work + "/weights.f32"))
        } catch {
            throw CompileFailure("error: cannot write to \(work): \(error.localizedDescription)")
        }
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CompileFailure("error: cannot write to \(directory): \(error.localizedDescription)")
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, work, output]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CompileFailure("error: cannot run \(python): \(error.localizedDescription)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw CompileFailure(message.hasPrefix("error: ") ? message : "error: \(onnxScript) failed: \(message)")
        }
        return ExportedONNX(path: output, network: network, weightFloats: data.count / 4)
    }

    /// python3 in `searchPath` (default: PATH).
    public static func pythonExecutable(searchPath: String? = nil) throws -> String {
        let path = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = String(directory) + "/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CompileFailure(
            "error: python3 not found on PATH (\(path)): the ONNX export needs Python 3 with the onnx package "
                + "(run .ci/install-deps, or pip install onnx)")
    }
}
