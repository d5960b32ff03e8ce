import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `mplc export` on bad input: exit 1, the file and the cause on stderr, nothing written (docs/EXPORT.md; the
/// library itself is tested in Tests/MPLEndToEndTests/ExportTests).
@Suite("mplc export on bad input")
struct ExportCommandTests {
    @Test("A folder, a FIFO, a short file or a bad --batch: exit 1, a message naming the cause, no output directory")
    func badInputWritesNothing() throws {
        let work = try temporaryDirectory("export-command")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let fifo = work + "/fifo.safetensors"
        let short = work + "/short.safetensors"
        #expect(mkfifo(fifo, 0o600) == 0)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        let cases: [(arguments: [String], message: String)] = [
            (["--checkpoint", work], "error: \(work): not a regular file"),
            (["--checkpoint", fifo], "error: \(fifo): not a regular file"),
            (["--checkpoint", short], "error: \(short): too short to be a checkpoint (3 bytes)"),
            (["--checkpoint", short, "--batch", "0"], "error: --batch must be in [1, 65536]; got 0"),
            (["--checkpoint", short, "--format", "onnx", "--batch", "8"], "error: --batch is for the C export"),
            (["--checkpoint", short, "--format", "onnx"], "error: \(short): too short to be a checkpoint (3 bytes)"),
        ]
        for c in cases {
            let result = try run(
                [mplcBinary, "export", exampleCNN, "-o", work + "/out"] + c.arguments, directory: work)
            #expect(result.status == 1 && result.output.contains(c.message), "\(c.arguments): \(result.output)")
            #expect(!FileManager.default.fileExists(atPath: work + "/out"), "\(c.arguments) wrote output")
        }
    }
}
