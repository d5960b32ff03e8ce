import Foundation
import MPLCompiler
import Testing

/// The runner's C suite (Tests/runner/fake_model) and the checkpoint fuzzer (Tests/Fuzz/tiny_model) build against
/// hand-written stand-ins for a generated model.h. They must declare what the compiler's model.h declares (docs/ABI.md):
/// every MPLC_ macro, the recipe's keys in the compiler's order, and the same C declarations. A change of the ABI
/// fails here instead of leaving the stand-ins stale.
@Suite("Hand-written model.h files follow the emitted ABI")
struct FakeModelHeaderTests {
    static let emitted: Result<String, Error> = Result {
        let model = try Compiler.load(path: exampleMLP).get()
        let files = try Compiler.compile(model, regenerateCommand: "tests").files
        guard let header = files.first(where: { $0.fileName == "model.h" }) else { throw TestFailure("no model.h") }
        return header.contents
    }

    @Test(
        "Same MPLC_ macros, recipe keys and declarations as the compiler's model.h",
        arguments: ["Tests/runner/fake_model/model.h", "Tests/Fuzz/tiny_model/model.h"])
    func followsTheABI(path: String) throws {
        let emitted = try Self.emitted.get()
        let fake = try String(contentsOfFile: repositoryRoot + "/" + path, encoding: .utf8)
        #expect(macros(fake) == macros(emitted), "\(path): macros differ from the emitted model.h")
        #expect(recipeKeys(fake) == recipeKeys(emitted), "\(path): MPLC_RECIPE's keys differ from the emitted model.h")
        #expect(declarations(fake) == declarations(emitted), "\(path): declarations differ from the emitted model.h")
    }

    /// The MPLC_ macros a header defines (in any #if branch), but its include guard.
    func macros(_ header: String) -> Set<String> {
        Set(
            header.split(separator: "\n").compactMap { line -> String? in
                let words = line.split(separator: " ")
                guard words.count >= 2, words[0] == "#define", words[1].hasPrefix("MPLC_"), words[1] != "MPLC_MODEL_H"
                else { return nil }
                return String(words[1])
            })
    }

    /// The keys of MPLC_RECIPE, in order (the definition may continue over lines).
    func recipeKeys(_ header: String) -> [String] {
        guard let start = header.range(of: "#define MPLC_RECIPE") else { return [] }
        var definition = ""
        for line in header[start.lowerBound...].split(separator: "\n") {
            definition += line
            if !line.hasSuffix("\\") { break }
        }
        return definition.matches(of: #/([a-z_]+)=/#).map { String($0.1) }
    }

    /// The C declarations (typedef, externs, prototypes), whitespace folded, outside comments and the preprocessor.
    func declarations(_ header: String) -> [String] {
        var inComment = false
        var result: [String] = []
        for raw in header.split(separator: "\n") {
            let line = raw.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            if inComment {
                inComment = !line.contains("*/")
                continue
            }
            if line.hasPrefix("/*") {
                inComment = !line.contains("*/")
                continue
            }
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("\"") || line == "extern \"C\" {" || line == "}" {
                continue
            }
            result.append(line)
        }
        return result
    }
}
