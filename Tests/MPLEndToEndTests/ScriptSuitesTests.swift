import Foundation
import Testing

/// The Python reference's tests run inside `swift test`, so that CI runs them with one command and a failure there
/// fails the build; they run side by side with the other tests. The C runner's suite (Tests/runner/run_tests.sh)
/// runs once, under the sanitizers: `SanitizerTests.runnerSuite`.
@Suite("Test suites outside Swift")
struct ScriptSuitesTests {
    @Test("The JAX reference: finite differences, layers against numpy, safetensors, peers (pytest Tests/reference)")
    func referenceSuite() throws {
        let output = try shell(["python3", "-m", "pytest", "-q", repositoryRoot + "/Tests/reference"])
        let summary = output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.contains("passed") && !summary.contains("failed"), "\(output)")
        print("reference: \(summary)")
    }
}
