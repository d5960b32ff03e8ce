import Foundation
import MPLCompiler
import MPLEmitC
import MPLIR
import MPLModel
import MPLStep
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

/// Whether `mpicc` and `mpirun` are installed (Debian openmpi-bin, libopenmpi-dev).
let mpiInstalled: Bool =
    (try? runCommand(["sh", "-c", "command -v mpicc && command -v mpirun"]).status == 0) ?? false

/// The generated C of a model compiled for 2 ranks, run by 2 MPI processes in lock step (`mpirun -np 2`, the
/// harness built with mpicc -DMPLC_MPI), against the Double interpreter's lock-step run of the same graph: the
/// all-reduce kernels read and write the right buffers, and the step's C is the step's graph.
@Suite("Generated C on 2 MPI ranks against the lock-step interpreter", .serialized, .enabled(if: mpiInstalled))
struct MPIStepTests {
    static let ranks = 2

    @Test(
        "One MPL step and one supervised step on 2 ranks (BatchNorm, residual blocks, dropout)",
        arguments: [PseudoLabels.hardArgmax, .soft(temperature: 1.5)])
    func step(pseudoLabels: PseudoLabels) throws {
        var model = try shrunkExample("fashion_wrn.swiftdsl", pseudoLabels: pseudoLabels, feedback: .lossDifference)
        (model.recipe.labeledBatch, model.recipe.finetune.batch) = (2, 4)
        let compiled = try Compiler.compile(model, regenerateCommand: "test", ranks: Self.ranks)
        let directory = try temporaryDirectory("mpi")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Compiler.write(compiled.files, to: directory)
        try Data(try CEmitter.emitHarness(compiled.kernels).utf8).write(
            to: URL(fileURLWithPath: directory + "/harness.c"))
        // The harness's main runs after MPI_Init, in the directory of its rank's files.
        let wrapper = """
            #include <mpi.h>
            #include <stdio.h>
            #include <unistd.h>
            int harness_main(int argc, char **argv);
            int main(int argc, char **argv) {
                MPI_Init(&argc, &argv);
                int rank = 0;
                MPI_Comm_rank(MPI_COMM_WORLD, &rank);
                char directory[32];
                snprintf(directory, sizeof directory, "rank%d", rank);
                if (chdir(directory) != 0) MPI_Abort(MPI_COMM_WORLD, 2);
                int status = harness_main(argc, argv);
                MPI_Finalize();
                return status;
            }

            """
        try wrapper.write(toFile: directory + "/mpi_main.c", atomically: true, encoding: .utf8)
        let flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-DMPLC_MPI", "-I", directory]
        try shell(["mpicc"] + flags + ["-c", "model.c"], directory: directory)
        try shell(["mpicc"] + flags + ["-Dmain=harness_main", "-c", "harness.c"], directory: directory)
        try shell(["mpicc", "-D_POSIX_C_SOURCE=200809L"] + flags + ["-c", "mpi_main.c"], directory: directory)
        try shell(
            ["mpicc", "model.o", "harness.o", "mpi_main.o", "-o", "harness-mpi", "-lopenblas", "-lm"],
            directory: directory)

        for entryName in ["mplc_step", "mplc_supervised_step"] {
            let entry = compiled.program.entryPoints.first { $0.name == entryName }!
            let bindings = compiled.kernels.entryPoints.first { $0.name == entryName }!.bindings
            let (environments, reference) = try Self.wellConditioned(entry)
            for (rank, env) in environments.enumerated() {
                var state = [Float](repeating: 0, count: bindings.state.floats)
                for tensor in bindings.state.tensors {
                    for (i, v) in (env[tensor.name] ?? []).enumerated() { state[tensor.offset + i] = Float(v) }
                }
                var io = [Float](repeating: 0, count: bindings.ioFloats)
                for tensor in bindings.ioInputs {
                    for (i, v) in env[tensor.name]!.enumerated() { io[tensor.offset + i] = Float(v) }
                }
                try FileManager.default.createDirectory(
                    atPath: directory + "/rank\(rank)", withIntermediateDirectories: true)
                try writeFloats(state, to: directory + "/rank\(rank)/state.f32")
                try writeFloats(io, to: directory + "/rank\(rank)/io.f32")
            }
            try shell(
                [
                    "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "\(Self.ranks)",
                    directory + "/harness-mpi", entryName, "state.f32", "io.f32",
                ], directory: directory)
            for rank in 0..<Self.ranks {
                let state = try readFloats(directory + "/rank\(rank)/state.f32")
                let io = try readFloats(directory + "/rank\(rank)/io.f32")
                let expected = reference[rank]
                for tensor in bindings.state.tensors {
                    let want =
                        expected[tensor.name] ?? environments[rank][tensor.name]
                        ?? [Double](repeating: 0, count: tensor.count)
                    let worst = worstViolation(
                        state[tensor.offset..<(tensor.offset + tensor.count)], want, atol: stepTolerance.atol,
                        rtol: stepTolerance.rtol)
                    #expect(worst.ratio <= 1, "\(entryName) rank \(rank): \(tensor.name)[\(worst.index)]")
                }
                for tensor in bindings.ioOutputs {
                    let worst = worstViolation(
                        io[tensor.offset..<(tensor.offset + tensor.count)], expected[tensor.name]!,
                        atol: stepTolerance.atol, rtol: stepTolerance.rtol)
                    #expect(worst.ratio <= 1, "\(entryName) rank \(rank): \(tensor.name)")
                }
            }
        }
    }

    /// Each rank's own batch, one state for all; the first seed whose branch decisions on every rank stay clear
    /// of a tie (see `wellConditionedInputs`). The inputs and the interpreter's results of each rank.
    static func wellConditioned(_ entry: EntryPoint) throws -> ([[String: [Double]]], [[String: [Double]]]) {
        for seed in UInt64(42)..<82 {
            let shared = randomInputs(entry, seed: seed, scalars: stepScalars)
            let envs = (0..<ranks).map { rank -> [String: [Double]] in
                var env = shared
                let own = randomInputs(entry, seed: seed * 100 + UInt64(rank) + 1, scalars: stepScalars)
                for (name, storage) in entry.inputStorage where storage != .state { env[name] = own[name] }
                return env
            }
            let values = try Interpreter.run(entry.graph, ranks: envs)
            if values.allSatisfy({ decisionMargin(entry.graph, $0) >= 3e-7 }) {
                let results = values.map { rank in
                    Dictionary(uniqueKeysWithValues: entry.graph.results.map { ($0.name, rank[$0.value.id]) })
                }
                return (envs, results)
            }
        }
        throw CommandFailure(description: "no well-conditioned inputs in 40 seeds")
    }
}
