import Foundation
import MPLCompiler
import MPLTestSupport
import Testing

/// `mplc MODEL --ranks R`: the step of one rank of a data-parallel run (docs/STEP.md, "Ranks"; docs/ABI.md).
@Suite struct RanksTests {
    static let example = Repository.example("fashion_cnn.swiftdsl")

    @Test("A rank count that does not divide a batch is an error naming the file, the batch and R")
    func batchMustDivide() throws {
        let (status, output) = try runCommand([mplcBinary, Self.example, "--ranks", "3", "-o", "/nonexistent/out"])
        #expect(status == 1)
        #expect(
            output.contains("error: \(Self.example): the labeled batch 32 does not divide over 3 ranks"), "\(output)")
        let zero = try runCommand([mplcBinary, Self.example, "--ranks", "0", "-o", "/nonexistent/out"])
        #expect(zero.status == 2)
        #expect(zero.output.contains("--ranks must be at least 1, got 0"), "\(zero.output)")
    }

    @Test("R ranks: model.h's local batches and I/O sizes are one rank's, the hash differs, model.c all-reduces")
    func header() throws {
        let model = try Compiler.load(path: Self.example).get()
        let one = try Compiler.compile(model, regenerateCommand: "x").files
        let two = try Compiler.compile(model, regenerateCommand: "x", ranks: 2, modelFile: Self.example).files
        func macro(_ name: String, _ files: [(fileName: String, contents: String)]) -> String? {
            ModelHashTests.macro(name, in: files[0].contents)
        }
        #expect(macro("MPLC_RANKS", one) == "1" && macro("MPLC_RANKS", two) == "2")
        #expect(macro("MPLC_BATCH_LABELED", two) == "32" && macro("MPLC_LOCAL_BATCH_LABELED", two) == "16")
        #expect(macro("MPLC_BATCH_UNLABELED", two) == "128" && macro("MPLC_LOCAL_BATCH_UNLABELED", two) == "64")
        #expect(macro("MPLC_FINETUNE_BATCH", two) == "256" && macro("MPLC_LOCAL_FINETUNE_BATCH", two) == "128")
        #expect(macro("MPLC_LOCAL_BATCH_LABELED", one) == "32")
        #expect(macro("MPLC_RECIPE", one) == macro("MPLC_RECIPE", two), "the recipe is the same for every R")
        #expect(macro("MPLC_MODEL_HASH", one) != macro("MPLC_MODEL_HASH", two))
        // x of the step: (B_l + 2·B_u)/R images of 28·28.
        #expect(two[1].contents.contains("{ \"x\", 4, {144, 28, 28, 1}, "), "the step's x has one rank's rows")
        #expect(!one[1].contents.contains("mplc_allreduce_sum("))
        #expect(two[1].contents.contains("mplc_allreduce_sum("))
    }

    /// The emitted C for R = 2 compiles warning-free with the plain compiler (all-reduce: the identity) and,
    /// where MPI is installed, with mpicc -DMPLC_MPI.
    @Test func compilesWithAndWithoutMPI() throws {
        let model = try Compiler.load(path: Repository.example("two_moons.swiftdsl")).get()
        let directory = try temporaryDirectory("ranks")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Compiler.write(try Compiler.compile(model, regenerateCommand: "x", ranks: 2).files, to: directory)
        let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-c", "model.c", "-I", "."]
        try shell(["cc"] + flags + ["-o", "plain.o"], directory: directory)
        if try runCommand(["sh", "-c", "command -v mpicc"]).status == 0 {
            try shell(["mpicc", "-DMPLC_MPI"] + flags + ["-o", "mpi.o"], directory: directory)
        }
    }
}
