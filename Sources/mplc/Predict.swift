// `mplc predict`: the class and probabilities of image files by a run's student, predicted by the model's trainer
// (`mplc-run predict`, the forward pass of evaluation).

import ArgumentParser
import Foundation
import MPLCompiler

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class and probability of each example of image (PNG, JPEG), IDX, NPY or CSV files by a run's "
            + "student.",
        discussion: """
            Files by name: *.npy (N×H×W×C, N×H×W for one channel, or N×(H·W·C); uint8 or float32), *.csv (rows of \
            the model's features, optionally followed by a label, for Features models), *idx3-ubyte or *.idx \
            (IDX images; NPY and IDX also gzip-compressed, *.gz), anything else a PNG or JPEG image. Images must \
            have the model's size, or are resized to it with --resize or when the run trained with --resize; they \
            are converted to its channels. 8-bit pixels are normalised as in training: with the statistics the \
            checkpoint records (an image-folder run's, from its training images; --normalise is then refused), else \
            as the trainer normalises the data set named by --normalise (default fashion-mnist for grey models; RGB \
            models need it); float32 values and CSV values are used as they are.
            --output FILE.csv or FILE.json writes the predictions to FILE (replaced if it exists; written whole or \
            not at all) instead of the terminal.
            Examples:
              mplc predict runs/fashion_cnn-mpl-seed0 shirt.png
              mplc predict runs/fashion_cnn-mpl-seed0 photos/*.png --output predictions.csv
              mplc predict Examples/fashion_cnn.swiftdsl --checkpoint runs/fashion_cnn-mpl-seed0/checkpoint.safetensors shirt.png
            """)

    @OptionGroup var source: TrainedModelArguments
    @Argument(help: "Image, IDX, NPY or CSV files.")
    var files: [String]
    @Flag(help: "The EMA of the student (the checkpoint's ema/ tensors) instead of the student.")
    var ema = false
    @Option(
        help: ArgumentHelp(
            "The training data whose normalisation the pixels get: fashion-mnist, cifar10 or svhn (not for a "
                + "checkpoint that records its own)."))
    var normalise: String?
    @Flag(
        help: ArgumentHelp(
            "Resize image files of another size than the model's to it, as `mplc train --resize` does (the default "
                + "when the checkpoint's run trained with --resize)."))
    var resize = false
    @Flag(
        help: ArgumentHelp(
            "Print one JSON object per example (file, index for a row of a file, class, probability, probabilities) "
                + "instead of a line."))
    var json = false
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Write the predictions to FILE instead: CSV (file,index,class,probability,p_<class>...) or a JSON array, "
                + "by its extension.", valueName: "FILE.csv|FILE.json"))
    var output: String?

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one file") }
        if let output {
            if json { throw ValidationError("--json prints to the terminal, --output writes FILE: give one") }
            let suffix = URL(fileURLWithPath: output).pathExtension
            if Prediction.FileFormat(path: output) == nil {
                throw ValidationError(
                    "--output \(output): "
                        + (suffix.isEmpty ? "no extension" : "the extension '.\(suffix)' is not .csv or .json")
                        + "; it chooses the format")
            }
        }
    }

    func run() throws {
        try reportingFailures {
            let trained = try source.load()
            var arguments = ["predict", "--checkpoint", trained.checkpoint]
            if ema { arguments.append("--ema") }
            if resize { arguments.append("--resize") }
            if let normalise { arguments += ["--normalise", normalise] }
            // "--" first: a file named like a flag stays a file.
            let runnerOutput = try trainerOutput(trained, arguments + ["--"] + files)
            let predictions = try Prediction.parse(runnerOutput: runnerOutput)
            let names = try trained.classNames(count: predictions.first?.probabilities.count ?? 0)
            guard let path = output, let format = Prediction.FileFormat(path: path) else {
                print(predictions.map { json ? $0.json : $0.text(classNames: names) }.joined(separator: "\n"))
                return
            }
            // Atomic (a temporary file renamed over FILE): FILE is replaced whole, or left as it was on an error.
            do {
                try Data(Prediction.file(predictions, format: format, classNames: names).utf8)
                    .write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw CompileFailure("error: \(path): cannot write: \(error.localizedDescription)")
            }
            print("wrote \(path) (\(predictions.count) predictions)")
        }
    }
}
