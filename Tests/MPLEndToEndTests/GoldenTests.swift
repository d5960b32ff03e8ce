import Foundation
import MPLCompiler
import Testing

/// Every example model, by file name.
let exampleFiles: [String] = {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/Examples")) ?? []
    return names.filter { $0.hasSuffix(".swiftdsl") }.sorted()
}()

@Suite("generated/ is up to date")
struct GoldenTests {
    @Test("Each example regenerates byte for byte", arguments: exampleFiles)
    func upToDate(file: String) throws {
        let command = "mplc Examples/\(file)"
        let model = try Compiler.load(path: repositoryRoot + "/Examples/" + file).get()
        let compiled = try Compiler.compile(model, regenerateCommand: command)
        for output in compiled.files {
            let path = "generated/\(model.name)/\(output.fileName)"
            let committed = try? String(contentsOfFile: repositoryRoot + "/" + path, encoding: .utf8)
            #expect(
                committed == output.contents,
                "\(path) is out of date; regenerate it with: swift run mplc Examples/\(file)  (or .ci/regenerate for all)"
            )
        }
    }

    /// Swift seeds `Hasher` per process, so two compilations in one process iterate a Set or Dictionary in the
    /// same order and cannot show emission that depends on it. The built `mplc` runs in separate processes: one
    /// with SWIFT_DETERMINISTIC_HASHING (seed 0), the others with random seeds; their files must be equal byte for
    /// byte (and, by `upToDate`, equal to the committed ones).
    @Test(
        "Emission does not depend on hash order: mplc in three processes writes the same bytes",
        arguments: ["fashion_cnn.swiftdsl", "two_moons_adam.swiftdsl", "fashion_reduced.swiftdsl"])
    func deterministicAcrossProcesses(file: String) throws {
        var outputs: [[String: Data]] = []
        for seed in ["deterministic", "random", "random"] {
            let directory = try temporaryDirectory("determinism")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = ["SWIFT_DETERMINISTIC_HASHING": seed == "deterministic" ? "1" : "0"]
            // The same command line in each process, so that the "Regenerate with:" comments are equal too.
            try shell(
                [mplcBinary, Repository.example(file), "-o", "out"], directory: directory, environment: environment)
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: directory + "/out") {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: directory + "/out/" + name))
            }
            outputs.append(files)
        }
        #expect(Set(outputs[0].keys) == ["model.c", "model.h", "model.ir", "model.json", "mplc_runtime.h"])
        for other in outputs.dropFirst() {
            for (name, contents) in outputs[0] {
                #expect(other[name] == contents, "\(file): \(name) differs between two runs of mplc")
            }
        }
    }
}
