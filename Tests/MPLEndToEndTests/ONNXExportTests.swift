import Foundation
import MPLCompiler
import MPLIR
import MPLModel
import MPLStep
import Testing

/// The ONNX export (docs/EXPORT.md) against the training library, on the short runs ExportTests trains.
@Suite("mplc export --format onnx: the student as an ONNX model")
struct ONNXExportTests {

    @Test(
        "onnxruntime's logits on the 10,000 test images equal mplc_predict_student's, and so does the accuracy",
        arguments: [("fashion_wrn", false), ("fashion_wrn", true), ("fashion_cnn", false)])
    func logitsAndAccuracy(example: String, ema: Bool) throws {
        let run = try TrainedRun.of(example)
        let directory = run.directory + "/onnx-\(ema ? "ema" : "student")"
        let exported = try Compiler.exportONNX(run.model, checkpoint: run.checkpoint, ema: ema, to: directory)
        #expect(exported.path == directory + "/\(run.model.name).onnx")
        try Self.script.write(toFile: directory + "/logits.py", atomically: true, encoding: .utf8)
        let output = directory + "/logits.f32"
        try shell(["python3", "logits.py", exported.path, fashionMNIST, output], directory: directory)
        try expectReferenceLogits(try readFloats(output), run: run, ema: ema)
    }

    @Test(
        "Without python3, without the onnx package, or with a python that cannot run: a message that says what to install"
    )
    func missingPython() throws {
        let run = try TrainedRun.of("fashion_cnn")
        let directory = run.directory + "/onnx-missing"
        // python3 without its site-packages (-S): numpy and onnx do not import.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let bare = directory + "/python3"
        try "#!/bin/sh\nexec python3 -S \"$@\"\n".write(toFile: bare, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bare)
        let cases = [
            (bare, "error: the ONNX export needs the Python package"), (directory + "/none", "error: cannot run"),
        ]
        for (python, message) in cases {
            do {
                _ = try Compiler.exportONNX(
                    run.model, checkpoint: run.checkpoint, ema: false, to: directory + "/out",
                    python: python)
                Issue.record("\(python): no error")
            } catch let failure as CompileFailure {
                #expect(failure.description.hasPrefix(message), "\(failure.description)")
                #expect(python != bare || failure.description.contains("pip install onnx"), "\(failure.description)")
            }
            #expect(!FileManager.default.fileExists(atPath: directory + "/out/fashion_cnn.onnx"))
        }
        // No python3 on the search path (the folder's python3 made not executable).
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: bare)
        do {
            Issue.record("found \(try Compiler.pythonExecutable(searchPath: directory))")
        } catch let failure as CompileFailure {
            #expect(
                failure.description.hasPrefix("error: python3 not found on PATH (\(directory))")
                    && failure.description.contains("run .ci/install-deps"), "\(failure.description)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bare)
        #expect(try Compiler.pythonExecutable(searchPath: "/nonexistent::" + directory) == bare)
    }

    static let bn = Layer.batchNorm(momentum: 0.1, epsilon: 1e-3)

    /// Every layer kind and every place of a BatchNorm (as in MPLStepTests' InferenceTests, with an average pool):
    /// kept on the input image and after pools, folded after convolutions, past a Dropout, into strided 1×1 and
    /// nested projection shortcuts, after a Dense and a matrix shortcut; and a Features model (vectors only).
    static let everyLayer: [Model] = [
        Model(
            name: "every_layer", input: .image(channels: 2, height: 8, width: 7), classes: 3,
            teacher: everyLayerNetwork,
            student: everyLayerNetwork, recipe: Recipe()),
        Model(
            name: "features", input: .features(5), classes: 3, teacher: featuresNetwork, student: featuresNetwork,
            recipe: Recipe()),
    ]
    static let everyLayerNetwork = Network(
        name: "s",
        layers: [
            bn, .conv2D(filters: 3, kernel: 3, stride: 1, padding: 1), bn, bn, .activation(.relu),
            .residual([
                .conv2D(filters: 3, kernel: 3, stride: 1, padding: 1), .dropout(rate: 0.3), bn,
                .activation(.leakyReLU(alpha: 0.1)),
                .conv2D(filters: 3, kernel: 3, stride: 1, padding: 1),
            ]),
            bn, .activation(.tanh),
            .residual([
                .conv2D(filters: 4, kernel: 3, stride: 2, padding: 1), bn, .activation(.relu),
                .conv2D(filters: 4, kernel: 3, stride: 1, padding: 1),
            ]),
            bn, .avgPool2D(size: 2, stride: 1), bn,
            .residual([
                .conv2D(filters: 5, kernel: 1, stride: 1, padding: 0),
                .residual([.conv2D(filters: 6, kernel: 3, stride: 1, padding: 1)]),
            ]),
            bn, .maxPool2D(size: 2, stride: 1), bn, .activation(.sigmoid),
            .flatten, .dense(units: 5), bn, .activation(.sigmoid),
            .residual([.dense(units: 6)]), bn,
            .dense(units: 3),
        ])
    static let featuresNetwork = Network(
        name: "s",
        layers: [
            bn, .dense(units: 4), .activation(.tanh), .residual([.dense(units: 4), bn, .activation(.relu)]), bn,
            .activation(.gelu), .flatten,
            .dense(units: 3),
        ])

    @Test(
        "Every layer kind and BatchNorm position: onnxruntime equals the exported pass in the Double interpreter",
        arguments: ["every_layer", "features"])
    func everyLayerKind(_ name: String) throws {
        let model = try #require(Self.everyLayer.first { $0.name == name })
        let network = InferenceNetwork(model: model)
        var rng = SplitMix64(seed: 5)
        var student: [String: [Float]] = [:]
        for info in network.checkpointTensors {
            let range: ClosedRange<Double> = info.name.hasSuffix("running_var") ? 0.2...2 : -0.8...0.8
            student[info.name] = rng.vector(info.shape.count, in: range).map { Float($0) }
        }
        let entry = network.entryPoint(name: "forward", batch: 4)
        let xShape = entry.graph.shape(of: entry.graph.input(named: "x")!)  // [4, H, W, C] or [4, D]
        let x = rng.vector(xShape.count, in: -1...1).map { Float($0) }
        var inputs = network.weights(from: student).mapValues { $0.map(Double.init) }
        inputs["x"] = x.map(Double.init)
        let expected = try Interpreter.results(entry.graph, inputs: inputs)["logits"]!

        let directory = try temporaryDirectory("onnx-\(model.name)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let exported = try Compiler.exportONNX(network, student: student, origin: "random weights", to: directory)
        try writeFloats(x, to: directory + "/x.f32")
        let shape = xShape.dims.map(String.init).joined(separator: ",")
        try shell([
            "python3", "-c",
            """
            import sys, numpy as np, onnxruntime as ort
            x = np.fromfile(sys.argv[2], dtype="<f4").reshape([int(d) for d in sys.argv[3].split(",")])
            session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            session.run(["logits"], {"images": x})[0].astype("<f4").tofile(sys.argv[4])
            """, exported.path, directory + "/x.f32", shape, directory + "/logits.f32",
        ])
        let got = try readFloats(directory + "/logits.f32")
        #expect(got.count == expected.count && expected.contains { abs($0) > 0.1 })
        let worst = worstViolation(got[...], expected, atol: 1e-5, rtol: 1e-4)
        #expect(
            worst.ratio <= 1,
            "logit \(worst.index): \(got[max(worst.index, 0)]) against \(expected[max(worst.index, 0)])")
    }

    /// Checks the file, then runs onnxruntime on the test set read from the IDX file and normalised as
    /// docs/EXPORT.md says (in double, rounded to float once), NHWC, in batches of 1,000 and one of 1 (the batch
    /// dimension is dynamic).
    static let script = """
        # usage: logits.py MODEL.onnx FASHION_MNIST_DIR LOGITS.f32
        import gzip, os, sys
        import numpy as np, onnx, onnxruntime as ort
        model_path, data, output = sys.argv[1:]
        onnx.checker.check_model(onnx.load(model_path), full_check=True)
        path = os.path.join(data, "t10k-images-idx3-ubyte")
        raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
        pixels = np.frombuffer(raw[16:], dtype=np.uint8).astype(np.float64)
        images = ((pixels / 255 - 0.2860) / 0.3530).astype(np.float32).reshape(10000, 28, 28, 1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run(["logits"], {"images": images[i:i + 1000]})[0] for i in range(0, 10000, 1000)])
        one = session.run(["logits"], {"images": images[:1]})[0]
        assert logits.shape == (10000, 10) and np.allclose(one, logits[:1], rtol=1e-5, atol=1e-6), "batch of 1"
        logits.astype("<f4").tofile(output)
        """
}
