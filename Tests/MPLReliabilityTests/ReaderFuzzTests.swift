import Foundation
import Testing

/// Data and checkpoint readers: libFuzzer targets under AddressSanitizer and UndefinedBehaviorSanitizer, each
/// replaying its corpus (seeds and past crash inputs) and then fuzzing for a bounded time. In CI that is 8 s per target:
/// a smoke run that keeps the corpus and the targets working (the corpus holds the inputs of the long campaigns);
/// `MPLC_LIBFUZZER_SECONDS` or `Tests/Fuzz/run_fuzzers.sh --seconds N` runs longer ones.
@Suite("Data and checkpoint readers: libFuzzer")
struct ReaderFuzzTests {
    @Test(
        "IDX/gzip, NPY, JSON headers, checkpoints, CIFAR-10, MAT, PNG/JPEG images, CSV: 0 crashes in 8 s each (Tests/Fuzz/run_fuzzers.sh)"
    )
    func readers() throws {
        let seconds = ProcessInfo.processInfo.environment["MPLC_LIBFUZZER_SECONDS"] ?? "8"
        let result = try run(
            [repositoryRoot + "/Tests/Fuzz/run_fuzzers.sh", "--seconds", seconds],
            environment: ["MPLC_FUZZ_CC": clang])
        print(result.output)
        let lines = result.output.split(separator: "\n")
        #expect(result.status == 0, "\(result.output)")
        #expect(
            lines.last?.hasSuffix("4 targets") == false && lines.last?.hasSuffix("0 failed") == true, "\(result.output)"
        )
        for target in ["idx", "npy", "json", "safetensors", "cifar", "mat", "image", "csv"] {
            #expect(lines.contains { $0.hasPrefix("ok   fuzz_\(target):") }, "fuzz_\(target) did not pass")
        }
    }
}
