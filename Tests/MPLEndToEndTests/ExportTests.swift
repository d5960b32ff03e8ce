import Foundation
import MPLCompiler
import MPLIR
import MPLModel
import MPLStep
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The 10,000 test images and labels, the images as bytes and normalised exactly as the runner normalises them
/// (Templates/runner/dataset.c: in double, then rounded to float).
struct FashionTestSet: Sendable {
    let bytes: [UInt8]
    let images: [Float]
    let labels: [UInt8]
    var count: Int { labels.count }
    static let pixels = 784

    static let shared: Result<FashionTestSet, Error> = Result {
        let bytes = Array(try FashionMNIST.bytes("t10k-images-idx3-ubyte").dropFirst(16))
        let labels = Array(try FashionMNIST.bytes("t10k-labels-idx1-ubyte").dropFirst(8))
        guard bytes.count == labels.count * pixels, labels.count == 10_000 else {
            throw CommandFailure(
                description: "Fashion-MNIST test set: \(bytes.count) pixel bytes, \(labels.count) labels")
        }
        return FashionTestSet(
            bytes: bytes, images: bytes.map { Float((Double($0) / 255 - 0.2860) / 0.3530) }, labels: labels)
    }

    /// The images as raw floats in `directory`, for the C programs.
    func write(to directory: String) throws -> String {
        let path = directory + "/images.f32"
        try writeFloats(images, to: path)
        return path
    }
}

/// A short supervised run of an example (the student learns from step 1 and its EMA, decay 0.9, follows it), its
/// summary, and the logits of the training library's `mplc_predict_student` on the test set, with the checkpoint
/// loaded by the runner's own reader: what the runner's evaluation computes.
struct TrainedRun {
    let model: Model
    let directory: String
    let checkpoint: String
    let summary: [String: Any]
    let images: String
    /// Logits [10000, classes] of the student and of its EMA.
    let reference: [Bool: [Float]]

    /// Made once per example and shared by the tests; two examples are made in parallel.
    private static let lock = NSLock()
    nonisolated(unsafe) private static var locks: [String: NSLock] = [:]
    nonisolated(unsafe) private static var runs: [String: Result<TrainedRun, Error>] = [:]

    static func of(_ example: String) throws -> TrainedRun {
        lock.lock()
        let exampleLock = locks[example] ?? NSLock()
        locks[example] = exampleLock
        lock.unlock()
        exampleLock.lock()
        defer { exampleLock.unlock() }
        lock.lock()
        let cached = runs[example]
        lock.unlock()
        if let cached { return try cached.get() }
        let result = Result { try TrainedRun(example: example) }
        lock.lock()
        if runs.isEmpty { atexit { TrainedRun.removeAll() } }  // the runs are shared until the test process ends
        runs[example] = result
        lock.unlock()
        return try result.get()
    }

    private static func removeAll() {
        for case .success(let run) in runs.values { try? FileManager.default.removeItem(atPath: run.directory) }
    }

    private init(example: String) throws {
        model = try Compiler.load(path: repositoryRoot + "/Examples/\(example).swiftdsl").get()
        directory = try temporaryDirectory("export-\(example)")
        let generated = directory + "/generated"
        let templates = Compiler.templatesDirectory
        // -O1 after the build's -O3: in ISO C (no contraction) the same results, in a third of the build time.
        try Runners.build(model, generatedDirectory: generated, output: directory + "/mplc-run", extraFlags: ["-O1"])
        try shell([
            directory + "/mplc-run", "train", "--data", fashionMNIST, "--mode", "supervised", "--steps", "100",
            "--finetune-steps", "0", "--eval-every", "100", "--ema-decay", "0.9", "--threads", "1",
            "--out", directory + "/run", "--quiet",
        ])
        checkpoint = directory + "/run/checkpoint.safetensors"
        let summaryData = try Data(contentsOf: URL(fileURLWithPath: directory + "/run/summary.json"))
        guard let summary = try JSONSerialization.jsonObject(with: summaryData) as? [String: Any] else {
            throw CommandFailure(description: "\(directory)/run/summary.json is not a JSON object")
        }
        self.summary = summary
        images = try FashionTestSet.shared.get().write(to: directory)

        try Self.referenceHarness.write(toFile: directory + "/reference.c", atomically: true, encoding: .utf8)
        // Every runner source but its main: the reader with whatever it needs.
        let runner = templates + "/runner"
        let sources = try FileManager.default.contentsOfDirectory(atPath: runner)
            .filter { $0.hasSuffix(".c") && $0 != "main.c" }.sorted().map { runner + "/" + $0 }
        try shell(
            ["cc"] + RunnerBuild.baseFlags + [
                "-O1", "-I", generated, "-I", runner,
                "reference.c", generated + "/model.c",
            ] + sources + ["-o", "reference"] + RunnerBuild.libraries,
            directory: directory)
        var reference: [Bool: [Float]] = [:]
        for ema in [false, true] {
            let output = directory + "/reference-\(ema ? "ema" : "student").f32"
            try shell(
                ["./reference", checkpoint, ema ? "ema" : "student", images, "10000", output], directory: directory,
                environment: ["OPENBLAS_NUM_THREADS": "1"])
            reference[ema] = try readFloats(output)
        }
        self.reference = reference
    }

    /// The correct predictions summary.json reports for the student (or its EMA) after finetuning.
    func summaryCorrect(ema: Bool) throws -> Int {
        let accuracies = try #require(summary["test_accuracy"] as? [String: Any])
        let accuracy = try #require(
            accuracies[ema ? "student_ema_after_finetune" : "student_after_finetune"] as? Double)
        return Int((accuracy * 10_000).rounded())
    }

    static let referenceHarness = """
        /* usage: reference CHECKPOINT student|ema IMAGES.f32 N LOGITS.f32 */
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>

        #include "model.h"
        #include "safetensors.h"

        int main(int argc, char **argv) {
            if (argc != 6) return 2;
            float *state = calloc(MPLC_STATE_FLOATS, sizeof(float)), *ema = calloc(MPLC_STATE_FLOATS, sizeof(float));
            int has_ema = 0;
            Err e;
            if (st_load_ema(argv[1], state, ema, &has_ema, NULL, &e) != 0 || (strcmp(argv[2], "ema") == 0 && !has_ema)) {
                fprintf(stderr, "%s\\n", has_ema ? e.msg : "no EMA");
                return 1;
            }
            const long n = atol(argv[4]);
            float *images = malloc(sizeof(float) * (size_t)n * MPLC_INPUT_SIZE);
            FILE *in = fopen(argv[3], "rb");
            if (!in || fread(images, sizeof(float) * MPLC_INPUT_SIZE, (size_t)n, in) != (size_t)n) return 1;
            float *x = malloc(sizeof(float) * MPLC_EVAL_BATCH * MPLC_INPUT_SIZE);
            float *z = malloc(sizeof(float) * MPLC_EVAL_BATCH * MPLC_CLASSES);
            float *scratch = malloc(sizeof(float) * MPLC_SCRATCH_FLOATS);
            FILE *out = fopen(argv[5], "wb");
            for (long i = 0; i < n; i += MPLC_EVAL_BATCH) { /* as the runner evaluates: the last batch padded */
                const long rows = n - i < MPLC_EVAL_BATCH ? n - i : MPLC_EVAL_BATCH;
                memset(x, 0, sizeof(float) * MPLC_EVAL_BATCH * MPLC_INPUT_SIZE);
                memcpy(x, images + i * MPLC_INPUT_SIZE, sizeof(float) * (size_t)rows * MPLC_INPUT_SIZE);
                mplc_predict_student(strcmp(argv[2], "ema") == 0 ? ema : state, x, z, scratch);
                fwrite(z, sizeof(float) * MPLC_CLASSES, (size_t)rows, out);
            }
            return fclose(out) != 0;
        }
        """
}

/// An exported library built into a program that writes the logits of the first N images of a file.
struct ExportedProgram {
    let directory: String
    let name: String

    /// `mplc export` through the Compiler API, then the library and `logits.c` built as docs/EXPORT.md says, with
    /// gcc (with OpenBLAS for this machine, -O3 -march=native; without, portable, -O2); clang compiles the library
    /// too, both with -Werror.
    init(_ run: TrainedRun, ema: Bool, batch: Int, noBLAS: Bool) throws {
        directory = run.directory + "/export-\(ema ? "ema" : "student")-\(batch)\(noBLAS ? "-noblas" : "")"
        let library = try Compiler.export(
            run.model, checkpoint: run.checkpoint, ema: ema, batch: batch,
            regenerateCommand: "export tests")
        try Compiler.write(library.files, to: directory)
        name = run.model.name
        try Self.program.write(toFile: directory + "/logits.c", atomically: true, encoding: .utf8)
        let flags =
            ["-std=c11", "-Wall", "-Wextra", "-Werror"]
            + (noBLAS ? ["-O2", "-DMPLC_NO_BLAS"] : ["-O3", "-march=native"])
        try shell([Self.clang] + flags + ["-c", name + ".c", "-o", "clang.o"], directory: directory)
        // The library needs OpenBLAS (or nothing) and libm: no thread of the runtime's pool is ever started.
        let undefined = try shell(["nm", "-u", "clang.o"], directory: directory).split(whereSeparator: \.isWhitespace)
        let foreign = undefined.filter {
            $0.hasPrefix("pthread") || $0.hasPrefix("openblas") || (noBLAS && $0.hasPrefix("cblas"))
        }
        guard foreign.isEmpty else { throw CommandFailure(description: "\(name).c needs \(foreign)") }
        try shell(
            ["cc"] + flags + ["-pthread", "-DMODEL=\(name)", "logits.c", name + ".c", "-o", "logits"]
                + (noBLAS ? [] : ["-lopenblas"]) + ["-lm"], directory: directory)
    }

    /// The Swift toolchain's clang, or the system's.
    static let clang =
        ["/opt/swift/usr/bin/clang", "/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? "clang"

    func logits(images: String, count: Int) throws -> [Float] {
        let output = directory + "/logits-\(count).f32"
        try shell(
            ["./logits", images, "\(count)", output], directory: directory, environment: ["OPENBLAS_NUM_THREADS": "1"])
        return try readFloats(output)
    }

    /// Also checks the header's promises: -1 for n < 0, and four threads predicting at once, each with its own
    /// scratch, get the logits of one thread bit for bit.
    static let program = """
        /* usage: logits IMAGES.f32 N LOGITS.f32: the exported library's logits of the first N images, in one call */
        #include <pthread.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #define JOIN_(a, b) a##_##b
        #define JOIN(a, b) JOIN_(a, b)
        #define STRING_(x) #x
        #define STRING(x) STRING_(x)
        #include STRING(MODEL.h)

        enum { classes = JOIN(MODEL, classes), input = JOIN(MODEL, input_floats), concurrent = 200 };
        static const float *images;
        static float concurrent_logits[4][concurrent * classes];

        static void *predict_concurrently(void *argument) {
            float *scratch = malloc(sizeof(float) * JOIN(MODEL, scratch_floats));
            JOIN(MODEL, predict)(images, concurrent, concurrent_logits[(size_t)argument], scratch);
            free(scratch);
            return NULL;
        }

        int main(int argc, char **argv) {
            if (argc != 4) return 2;
            const long n = atol(argv[2]);
            float *x = malloc(sizeof(float) * (size_t)n * input), *logits = malloc(sizeof(float) * (size_t)n * classes);
            float *scratch = malloc(sizeof(float) * JOIN(MODEL, scratch_floats));
            FILE *in = fopen(argv[1], "rb");
            if (!in || fread(x, sizeof(float) * input, (size_t)n, in) != (size_t)n) return 1;
            images = x;
            if (JOIN(MODEL, predict)(x, (int)n, logits, scratch) != 0) return 1;
            if (JOIN(MODEL, predict)(x, -1, logits, scratch) != -1) return 3;
            if (n >= concurrent) {
                pthread_t threads[4];
                for (size_t t = 0; t < 4; t++) pthread_create(&threads[t], NULL, predict_concurrently, (void *)t);
                for (size_t t = 0; t < 4; t++) pthread_join(threads[t], NULL);
                for (size_t t = 0; t < 4; t++)
                    if (memcmp(concurrent_logits[t], logits, sizeof concurrent_logits[t]) != 0) return 4;
            }
            FILE *out = fopen(argv[3], "wb");
            fwrite(logits, sizeof(float) * classes, (size_t)n, out);
            return fclose(out) != 0;
        }
        """
}

/// Checks logits of the 10,000 test images against the training library's on the same checkpoint (the student's or,
/// with `ema`, its EMA's), within `1e-5 + 1e-4·|ref|`, and that they classify as many correctly as summary.json says
/// (up to images where the reference's two best logits are within the tolerance).
func expectReferenceLogits(
    _ got: [Float], run: TrainedRun, ema: Bool,
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) throws {
    let reference = try #require(run.reference[ema], sourceLocation: sourceLocation)
    let classes = run.model.classes
    #expect(got.count == reference.count && reference.count == 10_000 * classes, sourceLocation: sourceLocation)
    let worst = worstViolation(got[...], reference.map(Double.init), atol: 1e-5, rtol: 1e-4)
    #expect(
        worst.ratio <= 1, "logit \(worst.index): \(got[max(worst.index, 0)]) against \(reference[max(worst.index, 0)])",
        sourceLocation: sourceLocation)

    let labels = try FashionTestSet.shared.get().labels
    func correct(_ logits: [Float]) -> Int {
        (0..<10_000).filter { argmax(logits, row: $0, classes: classes) == Int(labels[$0]) }.count
    }
    let expected = try run.summaryCorrect(ema: ema)
    #expect(
        correct(reference) == expected, "the reference harness does not reproduce summary.json",
        sourceLocation: sourceLocation)
    // Where f32 rounding may pick the other class: the reference's two best logits within the tolerance.
    let disagreements = (0..<10_000).filter {
        argmax(got, row: $0, classes: classes) != argmax(reference, row: $0, classes: classes)
    }
    let ties = disagreements.filter { row in
        let z: [Float] = reference[(row * classes)..<((row + 1) * classes)].sorted(by: >)
        return Double(z[0] - z[1]) <= 2e-5 + 2e-4 * Double(abs(z[0]))
    }
    #expect(
        ties == disagreements, "images \(disagreements) are classified differently",
        sourceLocation: sourceLocation)
    #expect(
        abs(correct(got) - expected) <= ties.count, "exported \(correct(got)) correct, summary.json \(expected)",
        sourceLocation: sourceLocation)
    #expect(
        expected > 1_200, "a run this short should still beat chance (1,000): \(expected) correct",
        sourceLocation: sourceLocation)
}

/// The first maximum of row `row`, as the runner's evaluation picks it.
func argmax(_ logits: [Float], row: Int, classes: Int) -> Int {
    let z = logits[(row * classes)..<((row + 1) * classes)]
    return z.indices.reduce(z.startIndex) { z[$1] > z[$0] ? $1 : $0 } - row * classes
}

struct ExportCase: CustomStringConvertible, Sendable {
    var example: String
    var ema: Bool
    var batch: Int
    var noBLAS: Bool
    var description: String {
        "\(example)\(ema ? " --ema" : "") --batch \(batch)\(noBLAS ? ", -O2 -DMPLC_NO_BLAS" : ", -O3 -march=native")"
    }
}

@Suite("mplc export: the student as a standalone C library")
struct ExportTests {
    static let cases = [
        ExportCase(example: "fashion_wrn", ema: false, batch: 1, noBLAS: false),
        ExportCase(example: "fashion_wrn", ema: true, batch: 7, noBLAS: true),  // 10,000 = 1428·7 + 4: a padded pass
        ExportCase(example: "fashion_cnn", ema: false, batch: 1, noBLAS: false),
    ]

    @Test(
        "Logits on the 10,000 test images equal mplc_predict_student's on the checkpoint, and so does the accuracy",
        arguments: cases)
    func logitsAndAccuracy(_ c: ExportCase) throws {
        let run = try TrainedRun.of(c.example)
        let program = try ExportedProgram(run, ema: c.ema, batch: c.batch, noBLAS: c.noBLAS)
        let got = try program.logits(images: run.images, count: 10_000)
        try expectReferenceLogits(got, run: run, ema: c.ema)
    }
}

extension ExportTests {
    @Test("Examples/classify links the exported library and classifies PNGs as the library does")
    func classifyExample() throws {
        let run = try TrainedRun.of("fashion_cnn")
        let program = try ExportedProgram(run, ema: false, batch: 1, noBLAS: false)
        let output = program.directory + "/classify"
        try shell([
            "make", "-s", "-C", repositoryRoot + "/Examples/classify", "EXPORT=" + program.directory,
            "MODEL=" + program.name, "OUT=" + output,
        ])
        let testSet = try FashionTestSet.shared.get()
        let rows = Array(0..<8)
        let logits = try program.logits(images: run.images, count: rows.count)
        var paths: [String] = []
        for row in rows {
            let path = program.directory + "/test\(row).png"
            let pixels = Array(testSet.bytes[(row * 784)..<((row + 1) * 784)])
            try Data(png(grey: pixels, width: 28, height: 28)).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let printed = try shell([output] + paths, environment: ["OPENBLAS_NUM_THREADS": "1"])
        for (row, path) in zip(rows, paths) {
            let line = try #require(printed.split(separator: "\n").first { $0.hasPrefix(path + ": class ") })
            let printedClass = Int(line.dropFirst((path + ": class ").count).prefix { $0.isNumber })
            let best = argmax(logits, row: row, classes: 10)
            #expect(printedClass == best, "\(line)")
            // The probability too (4 decimals): a pixel normalised differently would change it.
            let z = logits[(row * 10)..<((row + 1) * 10)].map(Double.init)
            let probability = exp(z[best] - z.max()!) / z.map { exp($0 - z.max()!) }.reduce(0, +)
            let printedProbability = line.split(separator: " ").last.flatMap { Double($0) }
            #expect(printedProbability.map { abs($0 - probability) <= 6e-5 } == true, "\(line): \(probability)")
        }
        #expect(
            rows.contains { Int(testSet.labels[$0]) == argmax(logits, row: $0, classes: 10) },
            "all 8 wrong:\n\(printed)")

        // An image of another size is refused, naming the file and both sizes.
        let wrong = program.directory + "/wrong.png"
        try Data(png(grey: [UInt8](repeating: 0, count: 27 * 28), width: 27, height: 28)).write(
            to: URL(fileURLWithPath: wrong))
        let refused = try runCommand([output, wrong])
        #expect(
            refused.status == 1 && refused.output.contains("\(wrong): the image is 27x28, the model reads 28x28"),
            "\(refused.output)")
    }
}

/// One tensor of a hand-made checkpoint; `offsets` replaces the data_offsets the writer computes.
struct StoredTensor {
    var name: String
    var dtype = "F32"
    var shape: [Int]
    var values: [Float]
    var offsets: [Int]? = nil
}

/// A safetensors file as the runner writes it: header length, JSON header padded with spaces to 8 bytes, data.
func safetensors(_ tensors: [StoredTensor], metadata: [String: String]) -> [UInt8] {
    var entries: [String] = []
    var data: [UInt8] = []
    for tensor in tensors {
        let offsets = tensor.offsets ?? [data.count, data.count + 4 * tensor.values.count]
        entries.append(
            "\"\(tensor.name)\":{\"dtype\":\"\(tensor.dtype)\",\"shape\":\(tensor.shape),\"data_offsets\":\(offsets)}")
        for value in tensor.values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data += $0 } }
    }
    let meta = metadata.keys.sorted().map { "\"\($0)\":\"\(metadata[$0]!)\"" }.joined(separator: ",")
    var header = "{" + (entries + ["\"__metadata__\":{\(meta)}"]).joined(separator: ",") + "}"
    while header.utf8.count % 8 != 0 { header += " " }
    let length = UInt64(header.utf8.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + Array(header.utf8) + data
}

extension ExportTests {
    @Test("A bad checkpoint, or a bad --ema or --batch, is an error naming the file and the cause")
    func checkpointErrors() throws {
        let model = try Compiler.load(path: repositoryRoot + "/Examples/fashion_cnn.swiftdsl").get()
        let network = InferenceNetwork(model: model)
        let directory = try temporaryDirectory("export-errors")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var rng = SplitMix64(seed: 5)
        let student = network.checkpointTensors.map {
            StoredTensor(
                name: $0.name, shape: $0.shape.dims,
                values: rng.vector($0.shape.count, in: -0.5...0.5).map { Float($0) })
        }
        let ema = student.map { tensor -> StoredTensor in
            var copy = tensor
            copy.name = "ema/" + tensor.name
            return copy
        }
        var count = 0
        func file(_ bytes: [UInt8]) throws -> String {
            count += 1
            let path = directory + "/c\(count).safetensors"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        func checkpoint(
            _ edit: (inout [StoredTensor]) -> Void = { _ in }, metadata: [String: String] = ["ema_updates": "30"],
            withEMA: Bool = true
        ) throws -> String {
            var tensors = student + (withEMA ? ema : [])
            edit(&tensors)
            return try file(safetensors(tensors, metadata: metadata))
        }
        /// The error of exporting `path`, or nil if it exported.
        func failure(_ path: String, ema: Bool = false, batch: Int = 1) -> String? {
            do {
                _ = try Compiler.export(model, checkpoint: path, ema: ema, batch: batch, regenerateCommand: "test")
                return nil
            } catch {
                return "\(error)"
            }
        }
        func expectFailure(
            _ path: String, ema: Bool = false, batch: Int = 1, _ cause: String,
            sourceLocation: Testing.SourceLocation = #_sourceLocation
        ) {
            let message = failure(path, ema: ema, batch: batch)
            let expected = cause.hasPrefix("--") ? "error: \(cause)" : "error: \(path): \(cause)"
            #expect(
                message?.hasPrefix(expected) == true, "\(message ?? "no error"), expected \(expected)",
                sourceLocation: sourceLocation)
        }

        let good = try checkpoint()
        #expect(failure(good) == nil)
        #expect(failure(good, ema: true, batch: 3) == nil)
        expectFailure(directory + "/missing.safetensors", "cannot open it: No such file or directory")
        expectFailure(directory, "not a regular file")
        let fifo = directory + "/fifo.safetensors"
        #expect(mkfifo(fifo, 0o600) == 0)
        expectFailure(fifo, "not a regular file")  // and returns: opening a FIFO must not wait for a writer
        expectFailure(try file([1, 2, 3, 4, 5]), "too short to be a checkpoint (5 bytes)")
        expectFailure(try file([0, 0, 0, 0, 0, 1, 0, 0] + Array("{}      ".utf8)), "bad header length 1099511627776")
        expectFailure(try file([8, 0, 0, 0, 0, 0, 0, 0] + Array("not json".utf8)), "the header is not a JSON object")
        expectFailure(
            try file([24, 0, 0, 0, 0, 0, 0, 0] + Array("{\"__metadata__\":1}      ".utf8)),
            "__metadata__ is not an object of strings")
        expectFailure(
            try checkpoint { $0.removeAll { $0.name == "student/conv0/weight" } }, "no tensor student/conv0/weight")
        expectFailure(try checkpoint { $0[0].dtype = "F16" }, "tensor student/conv0/weight has dtype F16, not F32")
        expectFailure(
            try checkpoint { $0[0].shape = [3, 3, 1, 8] },
            "tensor student/conv0/weight has shape [3, 3, 1, 8], the model's is [3, 3, 1, 16]")
        expectFailure(
            try checkpoint { $0[1].offsets = [0, 4 * 16 + 4] }, "tensor student/conv0/bias has data_offsets [0, 68]")
        // The header promises more data than the file holds.
        let whole = safetensors(student, metadata: [:])
        let end = 4 * network.checkpointTensors.map(\.shape.count).reduce(0, +)
        expectFailure(
            try file(Array(whole.dropLast(4))),
            "tensor student/dense9/bias has data_offsets [\(end - 40), \(end)], "
                + "not 40 bytes within the file's \(end - 4) bytes of data")
        expectFailure(
            try checkpoint { $0[5].values[3] = .nan }, "tensor student/dense7/bias is not finite (element 3 = nan)")
        expectFailure(
            try checkpoint { $0[0].values[0] = -.infinity },
            "tensor student/conv0/weight is not finite (element 0 = -inf)")
        expectFailure(try checkpoint(withEMA: false), ema: true, "no tensor ema/student/conv0/weight")
        let other = try checkpoint(
            { $0.removeAll { $0.name == "student/dense9/bias" } }, metadata: ["model": "fashion_wrn"])
        #expect(
            failure(other)
                == "error: \(other): no tensor student/dense9/bias (it is a checkpoint of the model fashion_wrn, "
                + "not fashion_cnn)")
        expectFailure(
            try checkpoint(metadata: ["ema_updates": "0"]), ema: true, "the EMA of the student is still empty")
        // The runner's checksum of the data section, checked when the header has one.
        func crc32(_ bytes: ArraySlice<UInt8>) -> String {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return String(format: "%08x", ~crc)
        }
        let unsummed = safetensors(student, metadata: ["data_crc32": "00000000"])
        let dataStart = 8 + unsummed.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let crc = crc32(unsummed[dataStart...])
        #expect(failure(try file(safetensors(student, metadata: ["data_crc32": crc]))) == nil)
        var damaged = safetensors(student, metadata: ["data_crc32": crc])
        damaged[damaged.count - 1] ^= 1
        expectFailure(try file(damaged), "the data does not match its checksum (CRC-32 ")
        expectFailure(good, batch: 0, "--batch must be in [1, 65536]; got 0")
        expectFailure(good, batch: 65_537, "--batch must be in [1, 65536]; got 65537")
    }
}

extension ExportTests {
    @Test("A checkpoint path that is C syntax stays inert in the generated comments")
    func hostilePath() throws {
        let model = try Compiler.load(path: repositoryRoot + "/Examples/fashion_cnn.swiftdsl").get()
        let network = InferenceNetwork(model: model)
        let directory = try temporaryDirectory("export-path")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // "*/" across two folders, a newline, a preprocessor line, a trigraph for a backslash.
        let folder = directory + "/a*/\n#error hostile ??/"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/checkpoint.safetensors"
        let tensors = network.checkpointTensors.map {
            StoredTensor(name: $0.name, shape: $0.shape.dims, values: [Float](repeating: 0.25, count: $0.shape.count))
        }
        try Data(safetensors(tensors, metadata: [:])).write(to: URL(fileURLWithPath: path))
        let library = try Compiler.export(
            model, checkpoint: path, ema: false, batch: 1,
            regenerateCommand: "mplc export m --checkpoint \(path) -o out")
        try Compiler.write(library.files, to: directory + "/out")
        for file in library.files {
            #expect(!file.contents.contains("a*/") && !file.contents.contains("\n#error"), "\(file.fileName)")
        }
        try shell(
            ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-c", "fashion_cnn.c"],
            directory: directory + "/out")
    }
}
