import Foundation
import Testing

/// `mplc train` passes the run-directory options of issue 15 to the trainer unchanged (the trainer implements
/// them; docs/RUNNER.md).
@Suite("mplc train options")
struct TrainOptionsTests {
    @Test("--overwrite and --init-from FILE reach mplc-run, not an mplc usage error")
    func runDirectoryOptionsArePassedOn() throws {
        let work = try temporaryDirectory("train-options")
        defer { try? FileManager.default.removeItem(atPath: work) }
        for extra in [["--overwrite"], ["--init-from", work + "/other.safetensors"]] {
            // A missing data directory makes the trainer stop at once, whatever it does with the option.
            let result = try run(
                [
                    mplcBinary, "train", exampleMLP, "--data", work + "/no-data", "--steps", "201", "--out",
                    work + "/run",
                ]
                    + extra, directory: work)
            #expect(result.status != 0, "\(extra): \(result.output)")
            #expect(
                !result.output.contains("Usage: mplc train") && !result.output.contains("Unknown option"),
                "\(extra): \(result.output)")
            #expect(result.output.contains("\nmplc-run: "), "the trainer answered: \(extra): \(result.output)")
        }
    }
}
