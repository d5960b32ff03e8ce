import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `mplc eval` and `mplc predict` on a short fashion_mlp run (docs/RUNNER.md, "eval and predict"): the confusion
/// matrix agrees with the trainer's own count and with the run's summary, predict's classes of the test images as
/// image files give the same accuracy, and bad inputs exit 1 naming the file and the cause.
@Suite("mplc eval and mplc predict")
struct EvalCommandTests {
    static let testImages = 120

    /// One short supervised run of fashion_mlp by `mplc train` (with two recipe overrides and a validation set),
    /// shared by the tests: its folder (run/ inside it) and data directory.
    static let trained: Result<(work: String, data: String), Error> = Result {
        let work = try temporaryDirectory("eval-command")
        let data = try SmallData.directory(testImages: testImages)
        let train = try run(
            [
                mplcBinary, "train", exampleMLP, "--data", data, "--mode", "supervised", "--steps", "100",
                "--finetune-steps", "0", "--labels", "300", "--threads", "2", "--out", "run", "--quiet",
                "--pseudo-labels", "soft:2", "--pseudo-labels-from", "weak-view", "--validation", "100",
                "--eval-every", "20",
            ], directory: work)
        guard train.status == 0 else { throw TestFailure("mplc train failed:\n" + train.output) }
        return (work, data)
    }

    @Test("The run directory keeps the model file and the resolved recipe; every metrics line has its UTC time")
    func runDescribesItself() throws {
        let (work, _) = try Self.trained.get()
        let source = try String(contentsOfFile: exampleMLP, encoding: .utf8)
        #expect(try String(contentsOfFile: work + "/run/fashion_mlp.swiftdsl", encoding: .utf8) == source)
        // recipe.txt is `mplc check`'s recipe, the overrides applied.
        let check = try run([mplcBinary, "check", exampleMLP])
        let overridden = [
            "pseudoLabels .hard(.argmax) (default)": "pseudoLabels .soft(temperature: 2.0)",
            "pseudoLabelsFrom .strongView (default)": "pseudoLabelsFrom .weakView",
        ]
        let checked = check.output.split(separator: "\n").filter { $0.hasPrefix("  ") }
            .map { $0.dropFirst(2) }.map { overridden[String($0)] ?? String($0) }
        let recipe = try String(contentsOfFile: work + "/run/recipe.txt", encoding: .utf8)
        #expect(recipe == checked.map { $0 + "\n" }.joined(), "\(recipe)")
        let lines = try String(contentsOfFile: work + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let times = lines.compactMap { line in
            line.firstMatch(of: #/,"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"\}$/#)?.1
        }
        #expect(times.count == lines.count && lines.count > 20, "\(lines.prefix(3))")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let dates = times.compactMap { formatter.date(from: String($0)) }
        #expect(dates.count == times.count && zip(dates, dates.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(dates.first.map { abs($0.timeIntervalSinceNow) < 3600 } ?? false, "\(times.first ?? "")")

        // A model file that is not a regular file is refused before a run directory is made.
        let runner = try #require(
            try FileManager.default.contentsOfDirectory(atPath: work + "/.build-mplc")
                .first { $0.hasPrefix("fashion_mlp-") && !$0.hasSuffix(".lock") })
        let refused = try run([
            work + "/.build-mplc/" + runner + "/mplc-run", "train", "--data", "two-moons",
            "--model-file", work, "--out", work + "/none",
        ])
        #expect(refused.status == 1 && refused.output.contains("\(work): not a regular file"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/none"))
    }

    @Test("eval's confusion matrix, per-class table and accuracy; predict on the test images as files; bad inputs")
    func evalAndPredict() throws {
        let (work, data) = try Self.trained.get()
        let checkpoint = work + "/run/checkpoint.safetensors"

        // --json: the student's confusion matrix adds up to the test set, its diagonal to the summary's accuracy.
        let eval = try run(
            [mplcBinary, "eval", exampleMLP, "--checkpoint", checkpoint, "--data", data, "--json"],
            directory: work)
        try #require(eval.status == 0, "\(eval.output)")
        let jsonLine = try #require(eval.output.split(separator: "\n").last.map(String.init))
        let result = try #require(try JSONSerialization.jsonObject(with: Data(jsonLine.utf8)) as? [String: Any])
        let confusion = try #require(result["confusion"] as? [[Int]])
        let correct = try #require(result["correct"] as? Int)
        #expect(confusion.count == 10 && confusion.allSatisfy { $0.count == 10 })
        #expect(confusion.joined().reduce(0, +) == Self.testImages)
        #expect((0..<10).map { confusion[$0][$0] }.reduce(0, +) == correct)
        let labels = Array(try FashionMNIST.bytes("t10k-labels-idx1-ubyte")[8..<8 + Self.testImages])
        #expect(confusion.map { $0.reduce(0, +) } == (0..<10).map { k in labels.filter { $0 == k }.count })
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/run/summary.json")))
                as? [String: Any])
        let summaryAccuracy = try #require(
            (summary["test_accuracy"] as? [String: Any])?["student_after_finetune"] as? Double)
        #expect(abs(Double(correct) / Double(Self.testImages) - summaryAccuracy) < 1e-12, "\(summary)")
        let perClass = try #require(result["per_class"] as? [[String: Any]])
        #expect(perClass.count == 10 && perClass.allSatisfy { ($0["examples"] as? Int).map { $0 > 0 } ?? false })

        // The text form: the accuracy line, a row per class, the matrix.
        let text = try run(
            [mplcBinary, "eval", exampleMLP, "--checkpoint", checkpoint, "--data", data], directory: work)
        #expect(text.status == 0)
        #expect(
            text.output.contains("fashion_mlp student, \(checkpoint): accuracy ")
                && text.output.contains("(\(correct) of \(Self.testImages) test images)"), "\(text.output)")
        #expect(text.output.contains("confusion matrix (rows: true class, columns: predicted class)"))
        #expect(text.output.contains("9 (Ankle boot)"))

        // predict: the test images as PNG files get classes whose accuracy is eval's.
        let images = Array(try FashionMNIST.bytes("t10k-images-idx3-ubyte")[16..<16 + Self.testImages * 784])
        var files: [String] = []
        for i in 0..<Self.testImages {
            files.append(work + "/image\(i).png")
            try Data(png(grey: Array(images[i * 784..<(i + 1) * 784]), width: 28, height: 28))
                .write(to: URL(fileURLWithPath: files[i]))
        }
        let predict = try run(
            [mplcBinary, "predict", exampleMLP, "--checkpoint", checkpoint, "--json"] + files,
            directory: work)
        try #require(predict.status == 0, "\(predict.output)")
        let predictions = try predict.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        try #require(predictions.count == Self.testImages)
        let classes = predictions.compactMap { $0["class"] as? Int }
        #expect(zip(classes, labels).filter { $0 == Int($1) }.count == correct)
        for p in predictions {
            let probabilities = p["probabilities"] as? [Double] ?? []
            #expect(probabilities.count == 10 && abs(probabilities.reduce(0, +) - 1) < 1e-9)
            #expect(p["probability"] as? Double == probabilities.max())
        }
        let one = try run([mplcBinary, "predict", exampleMLP, "--checkpoint", checkpoint, files[0]], directory: work)
        #expect(one.status == 0 && one.output.contains("\(files[0]): class \(classes[0]) ("), "\(one.output)")

        // Bad inputs: exit 1, the file and the cause.
        let large = work + "/large.png"
        let text4 = work + "/notes.txt"
        let fifo = work + "/fifo.png"
        try Data(png(grey: [UInt8](repeating: 0, count: 32 * 32), width: 32, height: 32))
            .write(to: URL(fileURLWithPath: large))
        try "not an image".write(toFile: text4, atomically: true, encoding: .utf8)
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases: [(arguments: [String], message: String)] = [
            (["predict", "--checkpoint", checkpoint, large], "\(large): 32x32 pixels, the model takes 28x28"),
            (["predict", "--checkpoint", checkpoint, text4], "\(text4): not a PNG or JPEG image"),
            (["predict", "--checkpoint", checkpoint, fifo], "\(fifo): not a regular file"),
            (["predict", "--checkpoint", checkpoint, work], "\(work): not a regular file"),
            (
                ["predict", "--checkpoint", checkpoint, "--normalise", "imagenet", files[0]],
                "--normalise must be fashion-mnist, cifar10 or svhn"
            ),
            (["predict", "--checkpoint", text4, files[0]], "\(text4):"),
            (["eval", "--checkpoint", work + "/missing", "--data", data], "\(work)/missing: cannot open"),
            (["eval", "--checkpoint", checkpoint, "--data", work], "\(work)"),
        ]
        for c in cases {
            let result = try run([mplcBinary, c.arguments[0], exampleMLP] + c.arguments.dropFirst(), directory: work)
            #expect(
                result.status != 0 && !result.signaled && result.output.contains(c.message),
                "\(c.arguments): \(result.output)")
        }
    }

    @Test(
        "eval, predict and export of a run directory: its model copy (recipe overrides applied) and checkpoint, --best; a missing or edited copy is named"
    )
    func runDirectoryForms() throws {
        let (work, data) = try Self.trained.get()
        func json(_ output: String) throws -> [String: Any] {
            try #require(
                try JSONSerialization.jsonObject(with: Data((output.split(separator: "\n").last ?? "").utf8))
                    as? [String: Any], "\(output)")
        }
        // eval RUN: the run's own data and checkpoint, the same confusion matrix as the model-file form.
        let old = try run(
            [mplcBinary, "eval", exampleMLP, "--checkpoint", "run/checkpoint.safetensors", "--data", data, "--json"],
            directory: work)
        let new = try run([mplcBinary, "eval", "run", "--json"], directory: work)
        try #require(old.status == 0 && new.status == 0, "\(old.output)\n\(new.output)")
        let confusion = try json(old.output)["confusion"] as? [[Int]]
        let runConfusion = try json(new.output)["confusion"] as? [[Int]]
        #expect(confusion != nil && runConfusion == confusion)
        let best = try run([mplcBinary, "eval", "run", "--best", "--json"], directory: work)
        try #require(best.status == 0, "\(best.output)")
        let bestCheckpoint = try json(best.output)["checkpoint"] as? String
        #expect(bestCheckpoint == "run/best.safetensors", "\(best.output)")

        // predict RUN IMAGE: the model-file form's prediction.
        let image = work + "/run-form.png"
        let pixels = Array(try FashionMNIST.bytes("t10k-images-idx3-ubyte")[16..<16 + 784])
        try Data(png(grey: pixels, width: 28, height: 28)).write(to: URL(fileURLWithPath: image))
        let predicted = try run([mplcBinary, "predict", "run", image, "--json"], directory: work)
        let expected = try run(
            [mplcBinary, "predict", exampleMLP, "--checkpoint", "run/checkpoint.safetensors", image, "--json"],
            directory: work)
        try #require(predicted.status == 0 && expected.status == 0, "\(predicted.output)")
        let probabilities = try json(predicted.output)["probabilities"] as? [Double]
        let expectedProbabilities = try json(expected.output)["probabilities"] as? [Double]
        #expect(probabilities != nil && probabilities == expectedProbabilities)

        // export RUN -o DIR: the library of the model-file form but for the command it names.
        let exported = try run([mplcBinary, "export", "run", "-o", "from-run"], directory: work)
        let reference = try run(
            [mplcBinary, "export", exampleMLP, "--checkpoint", "run/checkpoint.safetensors", "-o", "from-file"],
            directory: work)
        try #require(exported.status == 0 && reference.status == 0, "\(exported.output)\n\(reference.output)")
        func library(_ folder: String) throws -> [Substring] {
            try String(contentsOfFile: work + "/" + folder + "/fashion_mlp.c", encoding: .utf8)
                .split(separator: "\n").filter { !$0.contains("mplc export") }
        }
        let fromRun = try library("from-run")
        let fromFile = try library("from-file")
        #expect(!fromRun.isEmpty && fromRun == fromFile)
        let exportedBest = try run([mplcBinary, "export", "run", "--best", "-o", "from-best"], directory: work)
        #expect(
            exportedBest.status == 0 && FileManager.default.fileExists(atPath: work + "/from-best/fashion_mlp.h"),
            "\(exportedBest.output)")

        // A run directory whose copy is missing or does not fit the checkpoint: exit 1 naming the file.
        let source = try String(contentsOfFile: exampleMLP, encoding: .utf8)
        let cases: [(name: String, model: String?, message: String)] = [
            ("no-copy", nil, "no-copy/fashion_mlp.swiftdsl: missing"),
            (
                "edited-recipe", source.replacingOccurrences(of: "labeledBatch(32)", with: "labeledBatch(16)"),
                "edited-recipe/recipe.txt does not match edited-recipe/fashion_mlp.swiftdsl: 'labeledBatch 32'"
            ),
            (
                "edited-layers",
                source.replacingOccurrences(
                    of: "    ReLU()\n    Dense(10)\n}\n\nlet mpl", with: "    GELU()\n    Dense(10)\n}\n\nlet mpl"),
                "edited-layers/fashion_mlp.swiftdsl is not the model edited-layers/checkpoint.safetensors was trained from"
            ),
        ]
        for c in cases {
            try FileManager.default.createDirectory(atPath: work + "/" + c.name, withIntermediateDirectories: true)
            for file in ["checkpoint.safetensors", "recipe.txt"] {
                try? FileManager.default.removeItem(atPath: work + "/" + c.name + "/" + file)
                try FileManager.default.copyItem(
                    atPath: work + "/run/" + file, toPath: work + "/" + c.name + "/" + file)
            }
            try c.model?.write(toFile: work + "/" + c.name + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
            #expect(c.model == nil || c.model != source, "the case \(c.name) edits the model file")
            for command in [["eval", c.name], ["predict", c.name, image], ["export", c.name, "-o", "out"]] {
                let result = try run([mplcBinary] + command, directory: work)
                #expect(result.status == 1 && result.output.contains(c.message), "\(command): \(result.output)")
            }
        }
        // A run of an mplc from before a recipe setting existed has no line for it in recipe.txt: at its default,
        // the setting is what that mplc did, and the run is read. (teacherObjective and teacherGradientParts came
        // with issue 21; a line missing at another value than the default is refused.)
        let recipe = try String(contentsOfFile: work + "/run/recipe.txt", encoding: .utf8).split(separator: "\n")
        let added = ["teacherObjective .uda (default)", "teacherGradientParts false (default)"]
        #expect(added.allSatisfy { recipe.contains(Substring($0)) }, "\(recipe)")
        let runEval = try run([mplcBinary, "eval", "run", "--data", data, "--json"], directory: work)
        for (name, dropped, readable) in [
            ("older-mplc", added, true), ("dropped-setting", ["labeledBatch 32"], false),
        ] {
            let folder = work + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for file in ["checkpoint.safetensors", "fashion_mlp.swiftdsl"] {
                try FileManager.default.copyItem(atPath: work + "/run/" + file, toPath: folder + "/" + file)
            }
            try recipe.filter { !dropped.contains(String($0)) }.map { $0 + "\n" }.joined().write(
                toFile: folder + "/recipe.txt", atomically: true, encoding: .utf8)
            let result = try run([mplcBinary, "eval", name, "--data", data, "--json"], directory: work)
            if readable {
                #expect(runEval.status == 0 && result.status == 0, "\(runEval.output)\n\(result.output)")
                let same = result.output.split(separator: "\n").last?.replacingOccurrences(of: name + "/", with: "run/")
                #expect(same == runEval.output.split(separator: "\n").last.map(String.init), "\(result.output)")
            } else {
                #expect(
                    result.status == 1 && result.output.contains("\(name)/recipe.txt does not match"),
                    "\(result.output)")
            }
        }

        let usage = try run(
            [mplcBinary, "eval", "run", "--checkpoint", "run/checkpoint.safetensors"], directory: work)
        #expect(usage.status == 2 && usage.output.contains("run is a folder"), "\(usage.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/out"))
    }

    @Test(
        "predict on IDX and NPY files (uint8 and float32): one prediction per image, the PNG files' classes; bad files")
    func predictArrays() throws {
        let (work, _) = try Self.trained.get()
        let n = Self.testImages
        let pixels = Array(try FashionMNIST.bytes("t10k-images-idx3-ubyte")[16..<16 + n * 784])
        // The same images as PNG files, IDX (N x 28 x 28), NPY uint8 (N, 28, 28) and NPY float32 (N, 784), normalised
        // as the trainer normalises 8-bit data.
        var pngs: [String] = []
        for i in 0..<n {
            pngs.append(work + "/arrays\(i).png")
            try Data(png(grey: Array(pixels[i * 784..<(i + 1) * 784]), width: 28, height: 28))
                .write(to: URL(fileURLWithPath: pngs[i]))
        }
        let idx = work + "/images-idx3-ubyte"
        try Data([0, 0, 8, 3, 0, 0, 0, UInt8(n), 0, 0, 0, 28, 0, 0, 0, 28] + pixels).write(
            to: URL(fileURLWithPath: idx))
        try writeNPY(work + "/bytes.npy", uint8s: pixels, shape: [n, 28, 28])
        try writeNPY(
            work + "/floats.npy", floats: pixels.map { Float((Double($0) / 255 - 0.2860) / 0.3530) }, shape: [n, 784])
        let predicted = try run(
            [mplcBinary, "predict", "run", "--json", idx, "bytes.npy", "floats.npy"] + pngs, directory: work)
        try #require(predicted.status == 0, "\(predicted.output)")
        let lines = try predicted.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        try #require(lines.count == 4 * n, "\(lines.count) predictions")
        let fromPNG = lines[(3 * n)...].map { $0["probabilities"] as? [Double] }
        for (k, file) in [idx, "bytes.npy", "floats.npy"].enumerated() {
            let rows = lines[(k * n)..<((k + 1) * n)]
            #expect(rows.map { $0["file"] as? String } == Array(repeating: file, count: n))
            #expect(rows.map { $0["index"] as? Int } == (0..<n).map { $0 })
            #expect(rows.map { $0["probabilities"] as? [Double] } == Array(fromPNG), "\(file)")
        }
        #expect(lines[3 * n]["index"] == nil, "an image file has no index")
        let text = try run([mplcBinary, "predict", "run", "bytes.npy"], directory: work)
        #expect(text.status == 0 && text.output.contains("bytes.npy[119]: class "), "\(text.output)")

        // Bad files: exit 1 naming the file and the cause.
        let labels = work + "/labels-idx1-ubyte.idx"
        try Data([0, 0, 8, 1, 0, 0, 0, 1, 7]).write(to: URL(fileURLWithPath: labels))
        try writeNPY(work + "/wide.npy", uint8s: [UInt8](repeating: 0, count: 2 * 32 * 32), shape: [2, 32, 32])
        try writeNPY(work + "/ints.npy", int64s: [1, 2], shape: [2])
        try "1,2\n".write(toFile: work + "/rows.csv", atomically: true, encoding: .utf8)
        let cases: [(file: String, message: String)] = [
            ("wide.npy", "wide.npy: shape (2, 32, 32) does not fit model fashion_mlp"),
            ("ints.npy", "ints.npy: dtype <i8; predict reads '<f4' or '|u1' examples"),
            (labels, "\(labels):"),
            ("rows.csv", "rows.csv: model fashion_mlp reads 28x28 images; CSV files are for Features models"),
            ("missing.npy", "missing.npy"),
        ]
        for c in cases {
            let result = try run([mplcBinary, "predict", "run", pngs[0], c.file], directory: work)
            #expect(
                result.status == 1 && !result.signaled && result.output.contains(c.message),
                "\(c.file): \(result.output)")
        }
    }

    /// Chromium from Debian (.ci/install-deps installs it).
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Opens a page in headless Chromium: its DOM after the scripts ran, and the console messages (errors included).
    static func render(_ page: String) throws -> (dom: String, console: [String]) {
        let browser = try #require(chromium, "no chromium: run .ci/install-deps")
        let profile = try temporaryDirectory("chromium-profile")
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let dom = try run([
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
            "--enable-logging=stderr", "--v=0", "--dump-dom", URL(fileURLWithPath: page).absoluteString,
        ])
        try #require(dom.status == 0, "\(dom.output)")
        return (dom.output, dom.output.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init))
    }

    @Test(
        "mplc report: a self-contained page that Chromium renders with its plots, the confusion matrix and no console error"
    )
    func report() throws {
        let (work, _) = try Self.trained.get()
        let made = try run([mplcBinary, "report", "run"], directory: work)
        try #require(made.status == 0, "\(made.output)")
        let page = work + "/run/report.html"
        let html = try String(contentsOfFile: page, encoding: .utf8)
        // Self-contained: nothing loaded from elsewhere (the SVG namespace is a name, not a fetch).
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"))
        let (dom, console) = try Self.render(page)
        #expect(console.isEmpty, "\(console)")
        #expect(dom.contains("<div id=\"errors\"></div>"))
        // Supervised run: losses, learning rates, test accuracy; each plot with its curves.
        #expect(dom.contains("data-plots=\"3\""), "\(dom.prefix(2000))")
        #expect(dom.components(separatedBy: "class=\"curve\"").count - 1 >= 5)
        #expect(
            dom.contains("data-title=\"accuracy\"") && dom.contains(">validation acc_student<")
                && dom.contains(">test acc_student<"))
        #expect(FileManager.default.fileExists(atPath: work + "/run/best.safetensors"))
        let eval = try run(
            [
                mplcBinary, "eval", exampleMLP, "--checkpoint", work + "/run/checkpoint.safetensors",
                "--data", try SmallData.directory(testImages: Self.testImages), "--json",
            ], directory: work)
        let result = try #require(
            try JSONSerialization.jsonObject(
                with: Data((eval.output.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        let accuracy = try #require(result["accuracy"] as? Double)
        #expect(
            dom.contains("Confusion matrix: run, student, test accuracy " + String(format: "%.2f%%", 100 * accuracy)))
        #expect(dom.contains("pseudoLabels .soft(temperature: 2.0)"), "the recipe is on the page")

        // Names from the run directory are text, never markup: a run folder named like a tag.
        let hostile = work + "/<img src=x onerror=alert(1)>"
        try FileManager.default.createDirectory(atPath: hostile, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: work + "/run/metrics.jsonl", toPath: hostile + "/metrics.jsonl")
        let other = try run([mplcBinary, "report", "run", hostile, "--no-eval", "-o", "both.html"], directory: work)
        try #require(other.status == 0, "\(other.output)")
        let both = try Self.render(work + "/both.html")
        #expect(
            both.console.isEmpty && both.dom.contains("&lt;img src=x onerror=alert(1)&gt;")
                && !both.dom.contains("<img"),
            "\(both.console)")
        #expect(both.dom.contains("data-plots=\"3\""))

        // A metrics line that is not the runner's: exit 1 naming the file and line.
        try "{\"phase\":\"mpl\"}\n".write(toFile: hostile + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let bad = try run([mplcBinary, "report", hostile, "--no-eval"], directory: work)
        #expect(
            bad.status == 1 && bad.output.contains("\(hostile)/metrics.jsonl:1: not a metrics line of mplc-run"),
            "\(bad.output)")
    }
}
