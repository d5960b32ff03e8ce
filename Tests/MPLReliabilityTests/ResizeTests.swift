import Foundation
import Testing

/// `mplc train --resize` and `mplc predict` on an image folder whose images are not all the model's 28x28 (issue
/// 17; docs/RUNNER.md, "Image folders"): refused without the flag, naming it; trained with it; the run directory
/// remembers it for eval, predict and --resume.
@Suite("mplc train --resize")
struct ResizeTests {
    /// A 28x28 image as a 56x56 one of 2x2 blocks, which --resize (a box filter when shrinking) turns back into it.
    static func doubled(_ image: [UInt8]) -> [UInt8] {
        (0..<56 * 56).map { image[($0 / 56 / 2) * 28 + ($0 % 56) / 2] }
    }

    @Test("an image folder of 28x28 and 56x56 images: refused, then trained with --resize; eval, predict, --resume")
    func resizeEndToEnd() throws {
        let work = try temporaryDirectory("resize")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let folder = work + "/photos"
        // 300 training images (fashion_mlp's finetune batch is 256) and 100 test images in class folders; every
        // fifth labeled image and the first test image at 56x56.
        for (split, idx, count) in [("labeled", "train", 300), ("test", "t10k", 100)] {
            let images = try FashionMNIST.bytes("\(idx)-images-idx3-ubyte")
            let labels = try FashionMNIST.bytes("\(idx)-labels-idx1-ubyte")
            for k in 0..<10 {
                try FileManager.default.createDirectory(
                    atPath: "\(folder)/\(split)/class\(k)", withIntermediateDirectories: true)
            }
            for i in 0..<count {
                let image = Array(images[16 + i * 784..<16 + (i + 1) * 784])
                let big = (split == "labeled" && i % 5 == 0) || (split == "test" && i == 0)
                let bytes =
                    big
                    ? png(grey: Self.doubled(image), width: 56, height: 56) : png(grey: image, width: 28, height: 28)
                try Data(bytes).write(to: URL(fileURLWithPath: "\(folder)/\(split)/class\(labels[8 + i])/\(i).png"))
                if split == "test" && i == 0 {
                    try Data(png(grey: image, width: 28, height: 28)).write(
                        to: URL(fileURLWithPath: work + "/small.png"))
                    try Data(bytes).write(to: URL(fileURLWithPath: work + "/big.png"))
                }
            }
        }
        let train = [
            mplcBinary, "train", exampleMLP, "--data", folder, "--mode", "supervised", "--steps", "100",
            "--finetune-steps", "0", "--threads", "2", "--out", "run", "--quiet",
        ]
        let refused = try run(train, directory: work)
        #expect(refused.status == 1, "\(refused.output)")
        #expect(
            refused.output.contains("photos/labeled: 60 of its 300 images are not 28x28 pixels")
                && refused.output.contains("give --resize to have them resized"), "\(refused.output)")

        let trained = try run(train + ["--resize"], directory: work)
        try #require(trained.status == 0, "\(trained.output)")
        let options = try String(contentsOfFile: work + "/run/options.json", encoding: .utf8)
        #expect(options.contains("\"resize\": \"yes\""), "\(options)")

        // The run directory's checkpoint says --resize: eval reads the 56x56 test image, predict resizes big.png
        // to exactly small.png's pixels.
        let eval = try run([mplcBinary, "eval", work + "/run", "--json"], directory: work)
        #expect(eval.status == 0 && eval.output.contains("\"confusion\""), "\(eval.output)")
        let predict = try run(
            [mplcBinary, "predict", work + "/run", "--json", work + "/small.png", work + "/big.png"], directory: work)
        try #require(predict.status == 0, "\(predict.output)")
        let predictions = try predict.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        try #require(predictions.count == 2)
        #expect(predictions[0]["class"] as? Int == predictions[1]["class"] as? Int)
        #expect(
            predictions[0]["probabilities"] as? [Double] == predictions[1]["probabilities"] as? [Double],
            "\(predictions)")

        // mplc predict passes --resize on (a run without it would then resize too).
        let flag = try run([mplcBinary, "predict", work + "/run", "--resize", work + "/big.png"], directory: work)
        #expect(flag.status == 0 && flag.output.contains("big.png: class "), "\(flag.output)")

        // --resume extends the run without --resize given: the run's options keep it (else the data is refused).
        let resumed = try run([mplcBinary, "train", "--resume", work + "/run", "--steps", "110"], directory: "/")
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(
            resumed.output.contains("photos: 61 images of another size resized to 28x28 (--resize)"),
            "\(resumed.output)")
    }
}
