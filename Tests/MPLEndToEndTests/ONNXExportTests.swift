import Foundation
import MPLCompiler
import Testing

/// The ONNX export (docs/EXPORT.md) against the training library, on the short runs ExportTests trains.
@Suite("mplc export --format onnx: the student as an ONNX model")
struct ONNXExportTests {

    @Test("onnxruntime's logits on the 10,000 test images equal mplc_predict_student's, and so does the accuracy",
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

    @Test("Without python3, without the onnx package, or with a python that cannot run: a message that says what to install")
    func missingPython() throws {
        let run = try TrainedRun.of("fashion_cnn")
        let directory = run.directory + "/onnx-missing"
        // python3 without its site-packages (-S): numpy and onnx do not import.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let bare = directory + "/python3"
        try "#!/bin/sh\nexec python3 -S \"$@\"\n".write(toFile: bare, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bare)
        let cases = [(bare, "error: the ONNX export needs the Python package"), (directory + "/none", "error: cannot run")]
        for (python, message) in cases {
            do {
                _ = try Compiler.exportONNX(run.model, checkpoint: run.checkpoint, ema: false, to: directory + "/out",
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
            #expect(failure.description.hasPrefix("error: python3 not found on PATH (\(directory))")
                    && failure.description.contains("run .ci/install-deps"), "\(failure.description)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bare)
        #expect(try Compiler.pythonExecutable(searchPath: "/nonexistent::" + directory) == bare)
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
