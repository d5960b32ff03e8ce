import Foundation
import MPLCompiler
import Testing

/// `mplc train` builds in `.build-mplc/<name>-<key>`, keyed by what goes into the binary, under a lock, renamed
/// into place when complete (issue 15: two files with the same name used to share one folder and train each
/// other's recipe).
@Suite("Build folders keyed by content")
struct BuildFolderTests {
    /// fashion_mlp with both learning rates set to `rate`.
    static func mlp(learningRate rate: String) throws -> String {
        let text = try String(contentsOfFile: exampleMLP, encoding: .utf8)
        guard text.contains("learningRate: 0.05,") else { throw TestFailure("fashion_mlp's learning rate not found") }
        return text.replacingOccurrences(of: "learningRate: 0.05,", with: "learningRate: \(rate),")
    }

    static func compiledRecipe(_ summaryPath: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: summaryPath))
        let summary = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return summary["compiled_recipe"] as? [String: Any] ?? [:]
    }

    @Test("Two mplc train of different files named fashion_mlp.swiftdsl, started together, each train their own recipe")
    func concurrentSameNameTrainings() throws {
        let work = try temporaryDirectory("same-name")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let data = try SmallData.directory(testImages: 500)
        let rates = ["a": "0.011", "b": "0.022"]
        var processes: [String: Process] = [:]
        for (folder, rate) in rates.sorted(by: { $0.key < $1.key }) {
            try FileManager.default.createDirectory(atPath: work + "/" + folder, withIntermediateDirectories: true)
            try Self.mlp(learningRate: rate).write(
                toFile: work + "/\(folder)/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: mplcBinary)
            process.arguments = [
                "train", work + "/\(folder)/fashion_mlp.swiftdsl", "--data", data, "--labels", "40", "--steps", "201",
                "--finetune-steps", "0", "--eval-every", "201", "--threads", "1", "--out", work + "/run-" + folder,
                "--quiet",
            ]
            process.currentDirectoryURL = URL(fileURLWithPath: work)
            let log = work + "/\(folder).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = process.standardOutput
            processes[folder] = process
        }
        for process in processes.values { try process.run() }
        for (folder, process) in processes {
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: work + "/\(folder).log", encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "\(folder): \(log)")
            let recipe = try Self.compiledRecipe(work + "/run-\(folder)/summary.json")
            #expect((recipe["MPLC_TEACHER_LR"] as? Double) == Double(rates[folder]!), "\(folder): \(recipe)")
            #expect((recipe["MPLC_STUDENT_LR"] as? Double) == Double(rates[folder]!), "\(folder): \(recipe)")
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: work + "/.build-mplc")
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }
        // Both builds, at once, share one folder of the runner's model-independent objects (objectCacheIsShared).
        #expect(entries.filter { $0.hasPrefix("runner-objects-") }.count == 1, "\(entries)")
        let folders = entries.filter { !$0.hasPrefix("runner-objects-") }
        #expect(
            folders.count == 2
                && folders.allSatisfy { $0.hasPrefix("fashion_mlp-") && $0.count == "fashion_mlp-".count + 16 },
            "\(folders)")

        // The same model again, from another path and command: the complete build is reused, not rebuilt.
        try FileManager.default.createDirectory(atPath: work + "/c", withIntermediateDirectories: true)
        try Self.mlp(learningRate: rates["a"]!).write(
            toFile: work + "/c/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
        let again = try run(
            [
                mplcBinary, "train", "c/fashion_mlp.swiftdsl", "--data", data, "--labels", "40", "--steps", "201",
                "--finetune-steps", "0", "--threads", "1", "--out", work + "/run-c", "--quiet",
            ], directory: work)
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("mplc: reused .build-mplc/fashion_mlp-"), "\(again.output)")
    }

    @Test("Two mplc train of the same model at once: one builds under the lock, the other waits and reuses it")
    func concurrentSameModelBuildsOnce() throws {
        let work = try temporaryDirectory("same-model")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let data = try SmallData.directory(testImages: 500)
        try Self.mlp(learningRate: "0.033").write(
            toFile: work + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
        let processes = try (0..<2).map { index -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: mplcBinary)
            process.arguments = [
                "train", "fashion_mlp.swiftdsl", "--data", data, "--labels", "40", "--steps", "201", "--finetune-steps",
                "0",
                "--threads", "1", "--out", work + "/run-\(index)", "--quiet",
            ]
            process.currentDirectoryURL = URL(fileURLWithPath: work)
            _ = FileManager.default.createFile(atPath: work + "/\(index).log", contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: work + "/\(index).log")
            process.standardError = process.standardOutput
            try process.run()
            return process
        }
        var reports: [String] = []
        for (index, process) in processes.enumerated() {
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: work + "/\(index).log", encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "\(log)")
            reports += log.split(separator: "\n").filter { $0.hasPrefix("mplc: ") }.map {
                String($0.split(separator: " ")[1])
            }
        }
        #expect(reports.sorted() == ["built", "reused"], "\(reports)")
        let entries = try FileManager.default.contentsOfDirectory(atPath: work + "/.build-mplc")
        #expect(entries.filter { $0.hasPrefix(".tmp-") }.isEmpty, "\(entries)")
    }

    @Test("The key changes with the model, the runner's sources and the compiler, not with the command")
    func keyCoversWhatGoesIntoTheBinary() throws {
        func files(_ rate: String, command: String) throws -> [(fileName: String, contents: String)] {
            let work = try temporaryDirectory("key")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try Self.mlp(learningRate: rate).write(
                toFile: work + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
            let model = try Compiler.load(path: work + "/fashion_mlp.swiftdsl").get()
            return try Compiler.compile(model, regenerateCommand: command).files
        }
        let templates = Compiler.templatesDirectory
        let base = try RunnerBuild.buildKey(try files("0.05", command: "mplc train a"), templatesDirectory: templates)
        #expect(base.count == 16 && base.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(
            try RunnerBuild.buildKey(try files("0.05", command: "mplc train /b/c"), templatesDirectory: templates)
                == base)
        #expect(
            try RunnerBuild.buildKey(try files("0.04", command: "mplc train a"), templatesDirectory: templates) != base)

        // A copy of Templates/ with one runner source changed by a comment.
        let copy = try temporaryDirectory("templates")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        for folder in ["runner", "runtime"] {
            try FileManager.default.copyItem(atPath: templates + "/" + folder, toPath: copy + "/" + folder)
        }
        let mlpFiles = try files("0.05", command: "x")
        #expect(try RunnerBuild.buildKey(mlpFiles, templatesDirectory: copy) == base)
        let source = try FileManager.default.contentsOfDirectory(atPath: copy + "/runner").sorted().first {
            $0.hasSuffix(".c")
        }!
        let handle = try #require(FileHandle(forWritingAtPath: copy + "/runner/" + source))
        handle.seekToEndOfFile()
        handle.write(Data("/* changed */\n".utf8))
        handle.closeFile()
        #expect(try RunnerBuild.buildKey(mlpFiles, templatesDirectory: copy) != base)
        if (try? run(["clang", "--version"]))?.status == 0 {
            #expect(try RunnerBuild.buildKey(mlpFiles, templatesDirectory: templates, compiler: "clang") != base)
        }
    }

    /// fashion_mlp at learning rate `rate`, compiled: the files mplc writes.
    static func compiledMLP(_ rate: String) throws -> [(fileName: String, contents: String)] {
        let work = try temporaryDirectory("mlp")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try mlp(learningRate: rate).write(toFile: work + "/fashion_mlp.swiftdsl", atomically: true, encoding: .utf8)
        let model = try Compiler.load(path: work + "/fashion_mlp.swiftdsl").get()
        return try Compiler.compile(model, regenerateCommand: "tests").files
    }

    @Test("The runner files built once for every model are exactly those whose headers (cc -MM) are all the runner's")
    func modelIndependentSourcesMatchTheCompiler() throws {
        let generated = try temporaryDirectory("generated")
        defer { try? FileManager.default.removeItem(atPath: generated) }
        try Compiler.write(try Self.compiledMLP("0.05"), to: generated)
        let runner = Compiler.templatesDirectory + "/runner"
        var expected: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: runner).sorted() where name.hasSuffix(".c") {
            // -MM: the file and the headers it includes, system headers left out, as "object: dep dep \ dep".
            let rule = try shell(["cc", "-MM", "-I", generated, runner + "/" + name])
            let dependencies = rule.split(whereSeparator: { " \n\\".contains($0) }).dropFirst()
            if dependencies.allSatisfy({ URL(fileURLWithPath: String($0)).deletingLastPathComponent().path == runner })
            {
                expected.append(runner + "/" + name)
            }
        }
        let independent = try RunnerBuild.modelIndependentSources(in: runner)
        #expect(independent == expected)
        #expect(
            independent.contains(runner + "/image.c") && !independent.contains(runner + "/train.c"), "\(independent)")
    }

    @Test("Two models' trainers share one build of the model-independent runner objects; the key leaves the model out")
    func objectCacheIsShared() throws {
        let root = try temporaryDirectory("object-cache")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let templates = Compiler.templatesDirectory
        func objectFolders() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: root).filter {
                $0.hasPrefix("runner-objects-") && !$0.hasSuffix(".lock")
            }
        }
        func modificationDates(_ folder: String) throws -> [String: Date] {
            var dates: [String: Date] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: root + "/" + folder) {
                dates[name] =
                    try FileManager.default.attributesOfItem(atPath: root + "/" + folder + "/" + name)[
                        .modificationDate] as? Date
            }
            return dates
        }
        let first = try RunnerBuild.cachedBuild(
            try Self.compiledMLP("0.05"), modelName: "fashion_mlp", root: root, templatesDirectory: templates)
        let folders = try objectFolders()
        #expect(folders == ["runner-objects-" + (try RunnerBuild.objectsKey(templatesDirectory: templates))])
        let independent = try RunnerBuild.modelIndependentSources(in: templates + "/runner")
        let before = try modificationDates(try #require(folders.first))
        #expect(before.count == independent.count, "\(before.keys.sorted())")
        let second = try RunnerBuild.cachedBuild(
            try Self.compiledMLP("0.04"), modelName: "fashion_mlp", root: root, templatesDirectory: templates)
        #expect(first.built && second.built && first.binary != second.binary)
        #expect(try objectFolders() == folders)
        #expect(try modificationDates(folders[0]) == before, "the second build compiled the shared objects again")
        // An object deleted from the folder: the next build compiles the shared objects again.
        try FileManager.default.removeItem(atPath: root + "/" + folders[0] + "/" + before.keys.sorted()[0])
        let third = try RunnerBuild.cachedBuild(
            try Self.compiledMLP("0.03"), modelName: "fashion_mlp", root: root, templatesDirectory: templates)
        #expect(try modificationDates(folders[0]).count == independent.count)
        for binary in [first.binary, second.binary, third.binary] {
            let help = try run([binary, "--help"])
            #expect(help.status == 0 && help.output.contains("mplc-run: trains model fashion_mlp"), "\(help.output)")
        }
        // The objects' key: the runner's sources and the compiler, as for a trainer (keyCoversWhatGoesIntoTheBinary).
        let copy = try temporaryDirectory("templates-objects")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        for folder in ["runner", "runtime"] {
            try FileManager.default.copyItem(atPath: templates + "/" + folder, toPath: copy + "/" + folder)
        }
        let base = try RunnerBuild.objectsKey(templatesDirectory: templates)
        #expect(try RunnerBuild.objectsKey(templatesDirectory: copy) == base)
        try (try String(contentsOfFile: copy + "/runner/rng.h", encoding: .utf8) + "/* changed */\n").write(
            toFile: copy + "/runner/rng.h", atomically: true, encoding: .utf8)
        #expect(try RunnerBuild.objectsKey(templatesDirectory: copy) != base)
        #expect(try RunnerBuild.objectsKey(templatesDirectory: templates, extraFlags: ["-DMPLC_MPI"]) != base)
    }

    @Test("A model.c that does not compile: the build fails with the compiler's message, and leaves no trainer")
    func parallelCompileReportsTheFailure() throws {
        let generated = try temporaryDirectory("broken")
        defer { try? FileManager.default.removeItem(atPath: generated) }
        try Compiler.write(try Self.compiledMLP("0.05"), to: generated)
        let handle = try #require(FileHandle(forWritingAtPath: generated + "/model.c"))
        handle.seekToEndOfFile()
        handle.write(Data("#error broken on purpose\n".utf8))
        handle.closeFile()
        #expect {
            try RunnerBuild.build(
                generatedDirectory: generated, output: generated + "/mplc-run",
                templatesDirectory: Compiler.templatesDirectory)
        } throws: { error in
            "\(error)".contains("broken on purpose") && "\(error)".contains("failed (exit")
        }
        #expect(!FileManager.default.fileExists(atPath: generated + "/mplc-run"))
    }
}
