import Foundation
import MPLCompiler
import MPLEmitC
import MPLModel
import Testing

/// MPLC_MODEL_HASH names what was compiled, not how: the runner refuses to resume a checkpoint of another hash.
@Suite struct ModelHashTests {
    static func macro(_ name: String, in header: String) -> String? {
        let prefix = "#define \(name) "
        return header.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// The committed goldens' hash is what docs/ABI.md's sed | sha256sum pipeline gives.
    @Test(arguments: ["fashion_mlp", "two_moons_uda"])
    func matchesTheDocumentedPipeline(model: String) throws {
        let directory = repositoryRoot + "/generated/" + model
        let header = try String(contentsOfFile: directory + "/model.h", encoding: .utf8)
        let output = try shell(
            [
                "sh", "-c",
                "sed '/Regenerate with:$/{n;d}; /^#define MPLC_MODEL_HASH /d' model.c model.h mplc_runtime.h | sha256sum",
            ],
            directory: directory)
        let hash = try #require(Self.macro("MPLC_MODEL_HASH", in: header))
        #expect(hash == "\"" + output.prefix(64) + "\"")
        #expect(hash.count == 66 && hash.dropFirst().dropLast().allSatisfy { "0123456789abcdef".contains($0) })
    }

    /// model.c includes the runtime header instead of pasting it (issue 16); the header is written beside it and
    /// is part of what was compiled: another runtime, another hash. (The old model.c held the whole runtime.)
    @Test func coversTheIncludedRuntime() throws {
        let model = try Compiler.load(path: repositoryRoot + "/Examples/fashion_mlp.swiftdsl").get()
        let directory = try temporaryDirectory("runtime")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: repositoryRoot + "/Templates", toPath: directory + "/Templates")
        let runtimePath = directory + "/Templates/runtime/mplc_runtime.h"
        let runtime = try String(contentsOfFile: runtimePath, encoding: .utf8)
        try (runtime + "/* another runtime */\n").write(toFile: runtimePath, atomically: true, encoding: .utf8)
        let files = try Compiler.compile(model, regenerateCommand: "x").files
        let changed = try Compiler.compile(model, regenerateCommand: "x", templatesDirectory: directory + "/Templates")
            .files
        #expect(files.map(\.fileName) == ["model.h", "model.c", "mplc_runtime.h", "model.ir", "model.json"])
        #expect(files[2].contents == runtime)
        #expect(files[1].contents.contains("\n#include \"mplc_runtime.h\"\n"))
        #expect(
            !files[1].contents.contains("int mplc_pool_resize(int threads) {"), "the runtime is not pasted into model.c"
        )
        #expect(changed[1].contents == files[1].contents)
        #expect(
            try #require(Self.macro("MPLC_MODEL_HASH", in: changed[0].contents))
                != (try #require(Self.macro("MPLC_MODEL_HASH", in: files[0].contents))))
    }

    /// Another path or command gives the same hash; another recipe constant or layer gives another.
    @Test func dependsOnTheModelAndRecipeOnly() throws {
        let path = repositoryRoot + "/Examples/fashion_mlp.swiftdsl"
        func hash(_ source: String? = nil, command: String, pseudoLabels: String? = nil) throws -> String {
            var model: Model
            if let source {
                let directory = try temporaryDirectory("hash")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                try source.write(toFile: directory + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
                model = try Compiler.load(path: directory + "/fashion_mlp.swiftdsl").get()
            } else {
                model = try Compiler.load(path: path).get()
            }
            try RecipeOverrides.apply(pseudoLabels: pseudoLabels, feedback: nil, to: &model)
            let header = try Compiler.compile(model, regenerateCommand: command).files[0].contents
            return try #require(Self.macro("MPLC_MODEL_HASH", in: header))
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let original = try hash(command: "mplc Examples/fashion_mlp.swiftdsl")
        #expect(try hash(text, command: "mplc train /elsewhere/fashion_mlp.swiftdsl -o x") == original)
        #expect(try hash(command: "mplc x", pseudoLabels: "soft") != original)
        let changedRate = text.replacingOccurrences(of: "learningRate: 0.05", with: "learningRate: 0.04")
        #expect(changedRate != text)
        #expect(try hash(changedRate, command: "x") != original)
    }

    /// MPLC_RECIPE lists the recipe as key=value pairs, in a C string.
    @Test func recipeMacroListsTheRecipe() throws {
        let header = try String(contentsOfFile: repositoryRoot + "/generated/fashion_mlp/model.h", encoding: .utf8)
        let recipe = try #require(Self.macro("MPLC_RECIPE", in: header))
        #expect(
            recipe.hasPrefix("\"batch_labeled=32;batch_unlabeled=128;") && recipe.hasSuffix(";label_smoothing=0.1\""))
        for pair in [
            "steps=3000", "seed=0", "teacher_lr=0.05", "student_momentum=0.9", "uda_weight=1.0",
            "finetune_steps=300", "ema_decay=0.995", "pseudo_labels=hard-argmax", "feedback=dot-product",
            "uda_temperature=0.7", "uda_threshold=0.6",
        ] {
            #expect(recipe.contains(";\(pair);"), "MPLC_RECIPE lacks \(pair)")
        }
    }
}
