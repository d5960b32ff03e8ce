// `mplc export`: the trained student as a standalone C inference library, <name>.h and <name>.c (docs/EXPORT.md).

import ArgumentParser
import Foundation
import MPLCompiler

enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case c, onnx
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the trained student of a run as a standalone C inference library (docs/EXPORT.md).",
        discussion: """
            Writes DIR/<name>.h and DIR/<name>.c (with --format onnx, DIR/<name>.onnx): the student's forward pass with the checkpoint's weights \
            embedded and BatchNorm folded, for batches of --batch images. Build it with cc -std=c11 -O3 \
            -march=native -c <name>.c and link with -lopenblas -lm, or compile with -DMPLC_NO_BLAS and link with \
            -lm alone.
            Examples:
              mplc export runs/fashion_cnn-mpl-seed0 -o export
              mplc export Examples/fashion_cnn.swiftdsl --checkpoint runs/fashion_cnn-mpl-seed0/checkpoint.safetensors -o export
            """)

    @OptionGroup var source: TrainedModelArguments
    @Flag(help: "Export the EMA of the student (the checkpoint's ema/ tensors) instead of the student.")
    var ema = false
    @Option(
        help:
            "Images per forward pass, 1 to \(Compiler.maxExportBatch): larger batches run faster per image on many images."
    )
    var batch = 1
    @Option(name: .shortAndLong, help: "Output directory.")
    var output: String
    @Option(help: "c: <name>.h and <name>.c; onnx: <name>.onnx, built by Python's onnx package (any batch size).")
    var format: ExportFormat = .c

    func run() throws {
        try reportingFailures {
            let trained = try source.load()
            let model = try trained.compiled?.model ?? Compiler.load(path: trained.modelPath).get()
            let checkpoint = trained.checkpoint
            if format == .onnx {
                guard batch == 1 else {
                    throw CompileFailure("error: --batch is for the C export; the ONNX model takes batches of any size")
                }
                let exported = try Compiler.exportONNX(model, checkpoint: checkpoint, ema: ema, to: output)
                print(
                    "wrote \(exported.path): \(exported.weightFloats) floats of weights"
                        + batchNormCounts(folded: exported.network.folded.count, kept: exported.network.kept.count))
                return
            }
            let command =
                "mplc export \(source.runOrModel)" + (source.checkpoint.map { " --checkpoint \($0)" } ?? "")
                + (source.best ? " --best" : "")
                + (ema ? " --ema" : "")
                + (batch == 1 ? "" : " --batch \(batch)") + " -o \(output)"
            let library = try Compiler.export(
                model, checkpoint: checkpoint, ema: ema, batch: batch, regenerateCommand: command)
            try Compiler.write(library.files, to: output)
            print(
                "wrote \(output)/{\(library.files.map(\.fileName).joined(separator: ","))}: "
                    + "\(library.weightFloats) floats of weights, batch \(batch)"
                    + batchNormCounts(folded: library.network.folded.count, kept: library.network.kept.count))
        }
    }

    private func batchNormCounts(folded: Int, kept: Int) -> String {
        folded + kept == 0
            ? ""
            : "; BatchNorm: \(folded) folded into the layers before them, \(kept) kept as "
                + "a per-channel scale and shift"
    }
}
