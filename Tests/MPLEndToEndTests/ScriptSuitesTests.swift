import Foundation
import Testing

/// The C runner's tests and the Python reference's tests run inside `swift test`, so that CI runs them
/// with one command and a failure there fails the build. They run side by side with the other tests: each is a
/// serial script, and the runner suite's two parts (PART=1, PART=2) are two test cases so that they do too.
@Suite("Test suites outside Swift")
struct ScriptSuitesTests {
    @Test(
        "The C runner: readers, split, augmentation, checkpoints, resume, NaN handling (Tests/runner/run_tests.sh)",
        arguments: ["1", "2"])
    func runnerSuite(part: String) throws {
        let output = try shell([repositoryRoot + "/Tests/runner/run_tests.sh"], environment: ["PART": part])
        let summary = output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.hasSuffix(" 0 failed"), "\(output)")
        print("runner part \(part): \(summary)")
    }

    @Test("The JAX reference: finite differences, layers against numpy, safetensors, peers (pytest Tests/reference)")
    func referenceSuite() throws {
        let output = try shell(["python3", "-m", "pytest", "-q", repositoryRoot + "/Tests/reference"])
        let summary = output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.contains("passed") && !summary.contains("failed"), "\(output)")
        print("reference: \(summary)")
    }
}
