import Foundation
import Testing

/// `mplc predict --output`, the normalisation an image-folder run records, and run directories of another mplc build
/// (issue 18; docs/RUNNER.md, "predict" and "Run directory"). Uses EvalCommandTests' fashion_mlp run.
@Suite("mplc predict --output, recorded normalisation, run directories of another mplc build")
struct PredictTests {
    /// PNG files of the first `count` Fashion-MNIST test images in `directory` (with `transform` applied to each
    /// pixel), and their pixels.
    static func pngs(_ directory: String, count: Int, transform: (UInt8) -> UInt8 = { $0 }) throws
        -> (files: [String], pixels: [[UInt8]])
    {
        let bytes = try FashionMNIST.bytes("t10k-images-idx3-ubyte")
        var files: [String] = []
        var pixels: [[UInt8]] = []
        for i in 0..<count {
            pixels.append(bytes[16 + i * 784..<16 + (i + 1) * 784].map(transform))
            files.append(directory + "/test\(i).png")
            try Data(png(grey: pixels[i], width: 28, height: 28)).write(to: URL(fileURLWithPath: files[i]))
        }
        return (files, pixels)
    }

    /// A prediction as --json prints it, read exactly by JSONDecoder (Foundation's JSONSerialization on Linux reads
    /// some 17-digit doubles as a neighbour: 0.4884059630183667 as 0.48840596301836675).
    struct Row: Decodable, Equatable {
        var file: String
        var index: Int?
        var `class`: Int
        var probability: Double
        var probabilities: [Double]
    }

    static func rows(_ output: String) throws -> [Row] {
        try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try JSONDecoder().decode(Row.self, from: Data($0.utf8))
        }
    }

    /// The JSON objects of `output`'s lines that are one.
    static func objects(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test(
        "--output FILE.csv or FILE.json: the predictions --json prints; FILE replaced whole, kept on an error; another extension refused"
    )
    func outputFiles() throws {
        let (work, _) = try EvalCommandTests.trained.get()
        let out = try temporaryDirectory("predict-output")
        let (files, _) = try Self.pngs(out, count: 3)
        let printed = try run([mplcBinary, "predict", "run", "--json"] + files, directory: work)
        try #require(printed.status == 0, "\(printed.output)")
        let expected = try Self.rows(printed.output)
        try #require(expected.count == 3 && expected.map(\.file) == files)

        // JSON: an array of the same objects. An existing file is replaced.
        try "old".write(toFile: out + "/p.json", atomically: true, encoding: .utf8)
        let json = try run([mplcBinary, "predict", "run", "--output", out + "/p.json"] + files, directory: work)
        #expect(json.status == 0 && json.output.contains("wrote \(out)/p.json (3 predictions)"), "\(json.output)")
        let array = try JSONDecoder().decode([Row].self, from: Data(contentsOf: URL(fileURLWithPath: out + "/p.json")))
        #expect(array == expected)

        // CSV: the header, a row per example; no class names recorded (Fashion-MNIST IDX data): indices.
        let csv = try run([mplcBinary, "predict", "run", "-o", out + "/p.csv"] + files, directory: work)
        #expect(csv.status == 0, "\(csv.output)")
        let lines = try String(contentsOfFile: out + "/p.csv", encoding: .utf8).split(separator: "\n")
        try #require(lines.count == 4, "\(lines)")
        #expect(lines[0] == "file,index,class,probability," + (0..<10).map { "p_\($0)" }.joined(separator: ","))
        for (line, row) in zip(lines.dropFirst(), expected) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            try #require(fields.count == 14, "\(line)")
            #expect(fields[0] == row.file && fields[1] == "" && Int(fields[2]) == row.class)
            #expect(fields[3...].map { Double($0) } == ([row.probability] + row.probabilities).map { Optional($0) })
        }

        // An error (a missing input) leaves FILE as it was, and no temporary file beside it.
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/p.csv"))
        let failed = try run(
            [mplcBinary, "predict", "run", "-o", out + "/p.csv", files[0], out + "/missing.png"], directory: work)
        #expect(failed.status == 1 && failed.output.contains("missing.png"), "\(failed.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/p.csv")) == before)
        let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { !$0.hasPrefix("test") }.sorted()
        #expect(left == ["p.csv", "p.json"], "\(left)")

        // Another extension, none, --json beside --output: usage errors before anything runs; a folder that is
        // not there: exit 1 naming the file.
        let cases: [(arguments: [String], status: Int32, message: String)] = [
            (["-o", out + "/p.txt"], 64, "--output \(out)/p.txt: the extension '.txt' is not .csv or .json"),
            (["-o", out + "/p"], 64, "--output \(out)/p: no extension"),
            (["-o", out + "/p.csv", "--json"], 64, "--json prints to the terminal, --output writes FILE: give one"),
            (["-o", out + "/none/p.csv"], 1, "\(out)/none/p.csv: cannot write"),
        ]
        for c in cases {
            let result = try run([mplcBinary, "predict", "run"] + c.arguments + [files[0]], directory: work)
            #expect(
                result.status == c.status && result.output.contains(c.message), "\(c.arguments): \(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: out + "/p.txt"))
    }

    /// The class folders of Fashion-MNIST's labels 0-9; the run's classes are the folders sorted by name.
    static let folders = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    static let classNames = folders.sorted()

    /// An image-folder data set of Fashion-MNIST images made brighter (p -> 128 + p/2), so that its statistics are
    /// far from Fashion-MNIST's; its classes are named by words. 30 labeled and 3 test images per class.
    static func brightFolder() throws -> String {
        let folder = try temporaryDirectory("bright-images")
        for (split, images, labels, perClass) in [
            ("labeled", "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 30),
            ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 3),
        ] {
            let pixels = try FashionMNIST.bytes(images)
            let classes = try FashionMNIST.bytes(labels)
            var counts = [Int](repeating: 0, count: 10)
            for name in folders {
                try FileManager.default.createDirectory(
                    atPath: folder + "/\(split)/\(name)", withIntermediateDirectories: true)
            }
            for i in 0..<1000 where counts[Int(classes[8 + i])] < perClass {
                let k = Int(classes[8 + i])
                counts[k] += 1
                let image = pixels[16 + i * 784..<16 + (i + 1) * 784].map { 128 + $0 / 2 }
                try Data(png(grey: image, width: 28, height: 28))
                    .write(to: URL(fileURLWithPath: folder + "/\(split)/\(folders[k])/\(i).png"))
            }
        }
        return folder
    }

    @Test(
        "An image-folder run's predict normalises with the statistics it recorded (run directory or model file), names its classes, refuses --normalise"
    )
    func recordedNormalisation() throws {
        let work = try temporaryDirectory("predict-images")
        let folder = try Self.brightFolder()
        let train = try run(
            [
                mplcBinary, "train", exampleMLP, "--data", folder, "--mode", "supervised", "--steps",
                "100", "--finetune-steps", "0", "--eval-every", "50", "--threads", "2", "--out", "run", "--quiet",
            ], directory: work)
        try #require(train.status == 0, "\(train.output)")
        let metadata = try Checkpoint(path: work + "/run/checkpoint.safetensors").metadata
        let mean = try #require(metadata["norm_mean"].flatMap(Double.init), "\(metadata)")
        let std = try #require(metadata["norm_std"].flatMap(Double.init), "\(metadata)")
        #expect(mean > 0.6 && abs(mean - 0.2860) > 0.3, "the statistics are the bright images', not Fashion-MNIST's")

        // The same images as PNG files and as float32 NPY rows normalised with the recorded statistics (as the
        // trainer parses them): the same probabilities, up to float32 rounding (the rows here are normalised in
        // double, the runner's in float: inputs a unit in the last place apart moved probabilities by 1e-6
        // relative in a CI run). Before, the PNG files got Fashion-MNIST's statistics: differences of order 1.
        let (files, pixels) = try Self.pngs(work, count: 4) { 128 + $0 / 2 }
        try writeNPY(
            work + "/floats.npy", floats: pixels.joined().map { Float((Double($0) / 255 - mean) / std) },
            shape: [4, 784])
        for form in [["run"], [exampleMLP, "--checkpoint", "run/checkpoint.safetensors"]] {
            let predicted = try run(
                [mplcBinary, "predict"] + form + ["--json", "floats.npy"] + files, directory: work)
            try #require(predicted.status == 0, "\(predicted.output)")
            let objects = try Self.objects(predicted.output)
            try #require(objects.count == 8)
            let fromPNG = objects[4...].map { $0["probabilities"] as? [Double] ?? [] }
            let fromNPY = objects[..<4].map { $0["probabilities"] as? [Double] ?? [] }
            #expect(
                fromPNG.map(\.count) == Array(repeating: 10, count: 4) && fromNPY.map(\.count) == fromPNG.map(\.count))
            let worst = zip(fromPNG.joined(), fromNPY.joined()).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst < 1e-5, "\(form): probabilities of the PNG files and of the NPY rows differ by \(worst)")
        }

        // The table and the CSV name the run's classes.
        let text = try run([mplcBinary, "predict", "run", files[0]], directory: work)
        let json = try run([mplcBinary, "predict", "run", "--json", files[0]], directory: work)
        let k = try #require(try Self.objects(json.output).first?["class"] as? Int)
        #expect(text.status == 0 && text.output.contains(": class \(k) (\(Self.classNames[k])), "), "\(text.output)")
        let csv = try run([mplcBinary, "predict", "run", "-o", "p.csv", files[0]], directory: work)
        let lines = try String(contentsOfFile: work + "/p.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.status == 0 && lines.count == 2, "\(csv.output)")
        #expect(
            lines.first == "file,index,class,probability," + Self.classNames.map { "p_" + $0 }.joined(separator: ","))
        #expect(lines.last?.hasPrefix("\(files[0]),,\(Self.classNames[k]),") == true, "\(lines)")

        // --normalise would feed the student other inputs than it trained on: refused, naming the checkpoint.
        let refused = try run(
            [mplcBinary, "predict", "run", "--normalise", "fashion-mnist", files[0]], directory: work)
        #expect(
            refused.status == 1
                && refused.output.contains(
                    "--normalise fashion-mnist: run/checkpoint.safetensors records the normalisation of the images"),
            "\(refused.output)")

        // eval computes the statistics again from the data's training images: the run's data passes (its table
        // names the run's classes; before, Fashion-MNIST's); its test/ alone (statistics of the test images) or
        // Fashion-MNIST IDX files (fixed statistics) would normalise otherwise than in training: refused. Before,
        // both were evaluated so.
        let testOnly = work + "/test-only"
        try FileManager.default.createDirectory(atPath: testOnly, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: folder + "/test", toPath: testOnly + "/test")
        let cases: [(data: [String], status: Int32, message: String)] = [
            ([], 0, "\n0 (\(Self.classNames[0]))  "),  // the table names the run's classes
            (["--data", testOnly], 1, "eval normalises as in training: give the run's data directory"),
            (
                ["--data", try SmallData.directory(testImages: 10)], 1,
                "idx data has fixed statistics, but run/checkpoint.safetensors was trained on image folders"
            ),
        ]
        for c in cases {
            let eval = try run([mplcBinary, "eval", "run"] + c.data, directory: work)
            #expect(eval.status == c.status && eval.output.contains(c.message), "\(c.data): \(eval.output)")
        }
    }

    /// A run directory `name` in `work` beside run/: its recipe.txt, `model` as the copy, and run/'s checkpoint with
    /// each text of its header replaced by one as long (the header keeps its length, the data its checksum).
    static func runDirectory(_ work: String, _ name: String, model: String, _ edits: [(String, String)]) throws {
        let folder = work + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: folder + "/recipe.txt")
        try FileManager.default.copyItem(atPath: work + "/run/recipe.txt", toPath: folder + "/recipe.txt")
        try model.write(toFile: folder + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
        var data = try Data(contentsOf: URL(fileURLWithPath: work + "/run/checkpoint.safetensors"))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var header = String(decoding: data[8..<8 + length], as: UTF8.self)
        for (old, new) in edits {
            try #require(header.contains(old) && old.utf8.count == new.utf8.count, "\(old)")
            header = header.replacingOccurrences(of: old, with: new)
        }
        data.replaceSubrange(8..<8 + length, with: Data(header.utf8))
        try data.write(to: URL(fileURLWithPath: folder + "/checkpoint.safetensors"))
    }

    /// FNV-1a, 64 bits, as the runner records a model file's bytes ("model_file_hash").
    static func fnv1a64(_ text: String) -> String {
        let hash = text.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let hex = String(hash, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    @Test(
        "A run directory of another mplc build is used with a note; a copy with another layer width, or an older runner's checkpoint of another build, is refused"
    )
    func anotherBuild() throws {
        let (work, _) = try EvalCommandTests.trained.get()
        let metadata = try Checkpoint(path: work + "/run/checkpoint.safetensors").metadata
        let hash = try #require(metadata["model_hash"])
        let source = try String(contentsOfFile: exampleMLP, encoding: .utf8)
        let otherHash = (
            "\"model_hash\":\"\(hash)\"", "\"model_hash\":\"\(String(repeating: "0", count: hash.count))\""
        )

        // Another mplc build (the checkpoint's model hash altered): the copy's bytes and the tensors fit, so eval,
        // predict and export go on, saying so once. Before, the directory was refused.
        try Self.runDirectory(work, "other-build", model: source, [otherHash])
        let eval = try run([mplcBinary, "eval", "other-build", "--json"], directory: work)
        let reference = try run([mplcBinary, "eval", "run", "--json"], directory: work)
        try #require(eval.status == 0 && reference.status == 0, "\(eval.output)\n\(reference.output)")
        #expect(
            eval.output.components(
                separatedBy: "mplc: note: other-build/checkpoint.safetensors was trained by "
                    + "another mplc build"
            ).count == 2, "\(eval.output)")
        #expect(!reference.output.contains("mplc: note:"), "\(reference.output)")
        let confusion = try Self.objects(eval.output).last?["confusion"] as? [[Int]]
        let referenceConfusion = try Self.objects(reference.output).last?["confusion"] as? [[Int]]
        #expect(confusion != nil && confusion == referenceConfusion)
        let (files, _) = try Self.pngs(work, count: 1)
        for command in [["predict", "other-build", files[0]], ["export", "other-build", "-o", "other-build-export"]] {
            let result = try run([mplcBinary] + command, directory: work)
            #expect(result.status == 0 && result.output.contains("another mplc build"), "\(command): \(result.output)")
        }

        let fileHash = try #require(metadata["model_file_hash"], "the runner records its model file's hash")
        #expect(fileHash == Self.fnv1a64(source))

        // A copy whose student has another width, its bytes' hash recorded (as if trained so): the tensors do not
        // fit, named.
        let wider = source.replacingOccurrences(
            of: "let student = Sequential {\n    Flatten()\n    Dense(256)",
            with: "let student = Sequential {\n    Flatten()\n    Dense(128)")
        try #require(wider != source)
        try Self.runDirectory(
            work, "wider", model: wider,
            [("\"model_file_hash\":\"\(fileHash)\"", "\"model_file_hash\":\"\(Self.fnv1a64(wider))\"")])
        // An older runner's checkpoint (no model_file_hash: the key renamed) of another build: an edit and a new
        // mplc look alike, so it is refused as before.
        try Self.runDirectory(
            work, "older-runner", model: source, [otherHash, ("\"model_file_hash\":", "\"model_file_hasX\":")])
        let cases = [
            ("wider", "wider/fashion_mlp.swiftdsl is not the model wider/checkpoint.safetensors was trained from"),
            ("wider", "has shape [784, 256], the model's is [784, 128]"),
            ("older-runner", "whose checkpoint records no hash of its model file"),
        ]
        for (name, message) in cases {
            for command in [["eval", name], ["predict", name, files[0]], ["export", name, "-o", name + "-export"]] {
                let result = try run([mplcBinary] + command, directory: work)
                #expect(result.status == 1 && result.output.contains(message), "\(command): \(result.output)")
            }
        }
    }
}
