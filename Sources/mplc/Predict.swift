// `mplc predict`: the class and probabilities of image files by a run's student, predicted by the model's trainer
// (`mplc-run predict`, the forward pass of evaluation).

import ArgumentParser
import Foundation
import MPLCompiler

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class and probability of each image (PNG or JPEG) by a run's student.",
        discussion: """
            Images must have the model's size; they are converted to its channels and normalised as the trainer \
            normalises the data set named by --normalise (default fashion-mnist for grey models; RGB models need it).
            Examples:
              mplc predict runs/fashion_cnn-mpl-seed0 shirt.png
              mplc predict Examples/fashion_cnn.swiftdsl --checkpoint runs/fashion_cnn-mpl-seed0/checkpoint.safetensors shirt.png
            """)

    @Argument(help: "The run directory, or with --checkpoint the model file (.swiftdsl) the run trained.")
    var runOrModel: String
    @Argument(help: "Image files.")
    var images: [String]
    @Option(help: ArgumentHelp("A checkpoint of the model file.", valueName: "FILE.safetensors"))
    var checkpoint: String?
    @Flag(help: "The run directory's best.safetensors (the best validation accuracy) instead of its last checkpoint.")
    var best = false
    @Flag(help: "The EMA of the student (the checkpoint's ema/ tensors) instead of the student.")
    var ema = false
    @Option(help: "The training data whose normalisation the pixels get: fashion-mnist, cifar10 or svhn.")
    var normalise: String?
    @Flag(help: "Print one JSON object per image (file, class, probability, probabilities) instead of a line.")
    var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
    }

    func run() throws {
        try reportingFailures {
            let trained = try TrainedModel(runOrModel, checkpoint: checkpoint, best: best)
            var arguments = ["predict", "--checkpoint", trained.checkpoint]
            if ema { arguments.append("--ema") }
            if let normalise { arguments += ["--normalise", normalise] }
            // "--" first: an image named like a flag stays an image.
            let output = try trainerOutput(trained, arguments + ["--"] + images)
            let predictions = try Prediction.parse(runnerOutput: output)
            print(predictions.map { json ? $0.json : $0.text }.joined(separator: "\n"))
        }
    }
}
