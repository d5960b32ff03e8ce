// What `mplc eval` and `mplc predict` show: the trainer's JSON (`mplc-run eval`, `mplc-run predict`, which do the
// counting and the predicting, Templates/runner/evaluate.c and predict.c) turned into tables and JSON for one network.

import Foundation

/// One network's results on a test set, from the confusion matrix `mplc-run eval` counts.
public struct Evaluation: Codable, Equatable {
    public var model: String
    public var checkpoint: String
    /// "teacher", "student" or "student_ema".
    public var network: String
    public var testExamples: Int
    public var correct: Int
    public var accuracy: Double
    public var perClass: [ClassResult]
    /// Row i: the test images of class i; column j: those of them predicted as class j.
    public var confusion: [[Int]]

    public struct ClassResult: Codable, Equatable {
        public var `class`: Int
        public var examples: Int
        public var correct: Int
        /// nil when the test set has no image of the class.
        public var accuracy: Double?
    }

    enum CodingKeys: String, CodingKey {
        case model, checkpoint, network, correct, accuracy, confusion
        case testExamples = "test_examples"
        case perClass = "per_class"
    }

    /// `network`'s results in the JSON line of `mplc-run eval`; fails naming what is missing or inconsistent.
    public init(runnerOutput: String, network: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(runnerOutput.utf8)) as? [String: Any],
            let model = object["model"] as? String, let checkpoint = object["checkpoint"] as? String,
            let examples = object["test_examples"] as? Int, let classes = object["classes"] as? Int
        else { throw CompileFailure("error: the trainer's eval output is not what mplc expects:\n" + runnerOutput) }
        guard let confusion = object["confusion_" + network] as? [[Int]] else {
            throw CompileFailure(
                network == "student_ema"
                    ? "error: \(checkpoint): --ema: the checkpoint has no EMA of the student, or one with no update yet"
                    : "error: the trainer's eval output has no confusion matrix of the \(network)")
        }
        guard confusion.count == classes, confusion.allSatisfy({ $0.count == classes }),
            confusion.joined().reduce(0, +) == examples
        else { throw CompileFailure("error: the trainer's confusion matrix of the \(network) does not add up") }
        self.model = model
        self.checkpoint = checkpoint
        self.network = network
        self.testExamples = examples
        self.confusion = confusion
        self.correct = (0..<classes).map { confusion[$0][$0] }.reduce(0, +)
        self.accuracy = examples == 0 ? 0 : Double(correct) / Double(examples)
        self.perClass = (0..<classes).map { k in
            let n = confusion[k].reduce(0, +)
            return ClassResult(
                class: k, examples: n, correct: confusion[k][k],
                accuracy: n == 0 ? nil : Double(confusion[k][k]) / Double(n))
        }
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The accuracy line, the per-class table and the confusion matrix, for a terminal; the classes named by
    /// `classNames` (the run's), else Fashion-MNIST's for 10 classes.
    public func text(classNames: [String]?) -> String {
        let names = classNames ?? Evaluation.classNames(count: confusion.count)
        var lines = [
            "\(model) \(network.replacingOccurrences(of: "_", with: " ")), \(checkpoint): accuracy "
                + percent(accuracy) + " (\(correct) of \(testExamples) test images)",
            "",
            "class              images  correct  accuracy",
        ]
        for result in perClass {
            lines.append(
                pad(label(result.class, names), 18) + lpad("\(result.examples)", 7) + lpad("\(result.correct)", 9)
                    + lpad(result.accuracy.map(percent) ?? "-", 10))
        }
        let width = max(5, String(confusion.joined().max() ?? 0).count + 1)
        lines += [
            "", "confusion matrix (rows: true class, columns: predicted class)",
            pad("", 18) + (0..<confusion.count).map { lpad("\($0)", width) }.joined(),
        ]
        for (k, row) in confusion.enumerated() {
            lines.append(pad(label(k, names), 18) + row.map { lpad("\($0)", width) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// The class names a checkpoint's metadata records ("classes", a JSON array: an image-folder run's), nil when
    /// it records none; a list that is not `count` strings fails naming the checkpoint.
    public static func classNames(metadata: [String: String], checkpoint: String, count: Int) throws -> [String]? {
        guard let text = metadata["classes"] else { return nil }
        guard let names = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String], names.count == count
        else {
            throw CompileFailure(
                "error: \(checkpoint): its metadata \"classes\" is not a JSON array of the model's \(count) class names"
            )
        }
        return names
    }

    /// Fashion-MNIST's class names for a 10-class model (the default data), else none.
    static func classNames(count: Int) -> [String]? {
        count == 10
            ? [
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot",
            ] : nil
    }
}

/// One example's prediction, a JSON line of `mplc-run predict`.
public struct Prediction: Codable, Equatable {
    public var file: String
    /// The example's row in a file of several (IDX, NPY, CSV), from 0; nil for an image file.
    public var index: Int?
    public var `class`: Int
    public var probability: Double
    public var probabilities: [Double]

    /// The lines `mplc-run predict` printed.
    public static func parse(runnerOutput: String) throws -> [Prediction] {
        try runnerOutput.split(separator: "\n").map { line in
            do { return try JSONDecoder().decode(Prediction.self, from: Data(line.utf8)) } catch {
                throw CompileFailure("error: the trainer's predict output is not what mplc expects:\n" + line)
            }
        }
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// "FILE: class K (name), probability P" ("FILE[I]: ..." for row I of a file), the way `mplc predict` prints it;
    /// the names are the run's (`classNames`), else Fashion-MNIST's for 10 classes.
    public func text(classNames: [String]?) -> String {
        file + (index.map { "[\($0)]" } ?? "") + ": class "
            + label(self.class, classNames ?? Evaluation.classNames(count: probabilities.count))
            + String(format: ", probability %.4f", probability)
    }

    /// The formats of `mplc predict --output FILE`, by FILE's extension.
    public enum FileFormat: String, CaseIterable {
        case csv, json

        /// The format FILE's extension names (case ignored), or nil.
        public init?(path: String) {
            self.init(rawValue: URL(fileURLWithPath: path).pathExtension.lowercased())
        }
    }

    /// The whole file `mplc predict --output` writes: CSV, a header `file,index,class,probability,p_<class>,...`
    /// and a row per example (the class by its name when the run names its classes, else its index; index empty
    /// for an image file), or JSON, an array of the objects `--json` prints.
    public static func file(_ predictions: [Prediction], format: FileFormat, classNames: [String]?) -> String {
        switch format {
        case .json:  // one object a line
            return predictions.isEmpty ? "[]\n" : "[\n" + predictions.map(\.json).joined(separator: ",\n") + "\n]\n"
        case .csv:
            let count = predictions.first?.probabilities.count ?? classNames?.count ?? 0
            let name = { (k: Int) in classNames?[k] ?? String(k) }
            let header = ["file", "index", "class", "probability"] + (0..<count).map { "p_" + name($0) }
            let rows = predictions.map { p in
                [p.file, p.index.map(String.init) ?? "", name(p.class), "\(p.probability)"]
                    + p.probabilities.map { "\($0)" }
            }
            return ([header] + rows).map { $0.map(csvField).joined(separator: ",") + "\n" }.joined()
        }
    }
}

/// A CSV field (RFC 4180): quoted, its quotes doubled, when it holds a comma, a quote or a line break.
private func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline })
        ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

private func label(_ k: Int, _ names: [String]?) -> String {
    names.map { "\(k) (\($0[k]))" } ?? "\(k)"
}

private func percent(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
private func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
}
private func lpad(_ s: String, _ n: Int) -> String {
    s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s
}
