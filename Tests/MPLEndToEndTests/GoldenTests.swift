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
            #expect(committed == output.contents,
                    "\(path) is out of date; regenerate it with: swift run mplc Examples/\(file)  (or .ci/regenerate for all)")
        }
    }

    @Test("Emission is deterministic")
    func deterministic() throws {
        let model = try Compiler.load(path: repositoryRoot + "/Examples/fashion_cnn.swiftdsl").get()
        let first = try Compiler.compile(model, regenerateCommand: "x").files.map(\.contents)
        let second = try Compiler.compile(model, regenerateCommand: "x").files.map(\.contents)
        #expect(first == second)
    }
}
