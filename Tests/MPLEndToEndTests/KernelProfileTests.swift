import Foundation
import Testing

/// `Benchmarks/kernel_profile` times every kernel call of a step; its tables are sized from the model, so it
/// works on steps of any length (WRN-28-2's has over 2,000 kernels; the tables once had room for 1,024).
@Suite("Benchmarks/kernel_profile")
struct KernelProfileTests {
    /// A deep, narrow MLP: over 1,024 kernels in its step, each of them tiny.
    static func deepModel(layers: Int) -> String {
        let hidden = String(repeating: "    Dense(4)\n    Tanh()\n", count: layers)
        return """
            let input = Features(2)
            let classes = 2

            let teacher = Sequential {
            \(hidden)    Dense(2)
            }

            let student = Sequential {
            \(hidden)    Dense(2)
            }

            let mpl = MPL(teacher: teacher, student: student) {
                labeledBatch(4)
                unlabeledRatio(2)
            }

            """
    }

    @Test("Profiles a step of more than 1,024 kernels, each one once per step")
    func longStep() throws {
        let directory = try temporaryDirectory("kernel-profile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = directory + "/deep.swiftdsl"
        try Self.deepModel(layers: 45).write(toFile: model, atomically: true, encoding: .utf8)
        let output = try shell([
            repositoryRoot + "/Benchmarks/kernel_profile", model, "--mplc", mplcBinary, "--steps", "2", "--top", "1",
            "--work", directory + "/work",
        ])
        // "deep.swiftdsl hard-argmax, 1 thread(s), 2 steps: 1.2 ms per step in 1234 kernels"
        let header = output.split(separator: "\n").first { $0.hasSuffix(" kernels") }
        let kernels = header.flatMap { $0.split(separator: " ").dropLast().last.flatMap { Int($0) } }
        let calls = try String(contentsOfFile: directory + "/work/model.c", encoding: .utf8)
            .split(separator: "\n").filter { $0.hasPrefix("    step_") }.count
        #expect(calls > 1024, "the model is too small to test the limit: \(calls) kernel calls")
        #expect(kernels == calls, "\(output)")
    }
}
