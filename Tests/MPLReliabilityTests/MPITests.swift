import Foundation
import MPLCompiler
import Testing

/// Data parallelism over MPI (issue 19; docs/RUNNER.md, "Running under MPI"): N ranks replaying one global batch
/// from one checkpoint give the step of one process on that batch, every state tensor within float tolerance (the
/// all-reduces sum in another order), for each feedback rule with BatchNorm (whose moments are the global batch's).
/// Needs Open MPI's mpicc and mpirun (.ci/install-deps installs them): without them the tests fail, saying so.
@Suite("MPI: N ranks against one process", .serialized)
struct MPITests {
    /// A small model with BatchNorm after a convolution and after a dense layer, in teacher and student; batches
    /// that divide by 4; wait and warm-ups of one step, so that a 3-step run makes a checkpoint where both learn.
    static let source = """
        let input = Image(channels: 1, height: 28, width: 28)
        let classes = 10
        let teacher = Sequential {
            Conv2D(4, kernel: 3, stride: 2, padding: 1)
            BatchNorm()
            ReLU()
            Flatten()
            Dense(16)
            BatchNorm()
            ReLU()
            Dense(10)
        }
        let student = Sequential {
            Conv2D(4, kernel: 3, stride: 2, padding: 1)
            BatchNorm()
            ReLU()
            Flatten()
            Dense(10)
        }
        let mpl = MPL(teacher: teacher, student: student) {
            labeledBatch(8)
            unlabeledRatio(2)
            pseudoLabels(.hard(.argmax))
            feedback(.dotProduct)
            uda(temperature: 0.7, threshold: 0.6, weight: 1, rampSteps: 2)
            labelSmoothing(0.1)
            teacherOptimizer(SGD(learningRate: 0.05, warmupSteps: 1))
            studentOptimizer(SGD(learningRate: 0.05, warmupSteps: 1))
            studentWaitSteps(1)
            steps(3)
            finetune(steps: 2, learningRate: 0.01, batch: 8)
            seed(0)
        }
        """
    static let bl = 8, bu = 16, finetuneBatch = 8

    /// mpirun with the flags this machine needs (root; more ranks than cores).
    static func mpirun(_ ranks: Int) throws -> [String] {
        guard let mpirun = RunnerBuild.findExecutable("mpirun"), RunnerBuild.findExecutable("mpicc") != nil else {
            throw TestFailure("mpirun and mpicc are needed (Debian: \(RunnerBuild.mpiPackages); .ci/install-deps)")
        }
        return ["timeout", "300", mpirun, "-np", String(ranks), "--oversubscribe"]
            + (getuid() == 0 ? ["--allow-run-as-root"] : [])
    }

    /// `mplc MODEL --ranks R [overrides] -o DIR`, then the trainer built as mplc train builds it (mpicc -DMPLC_MPI
    /// for R > 1).
    static func runner(_ model: String, ranks: Int, overrides: [String], in work: String) throws -> String {
        let directory = work + "/r\(ranks)" + overrides.joined().replacingOccurrences(of: "-", with: "")
        try shell([mplcBinary, model, "--ranks", String(ranks), "-o", directory] + overrides)
        let header = try String(contentsOfFile: directory + "/model.h", encoding: .utf8)
        let (compiler, flags) = try RunnerBuild.toolchain(header: header)
        try RunnerBuild.build(
            generatedDirectory: directory, output: directory + "/mplc-run",
            templatesDirectory: Compiler.templatesDirectory,
            extraFlags: flags, compiler: compiler, objectCache: testObjectCache)
        return directory + "/mplc-run"
    }

    /// The tensors of a safetensors file written by the runner, by name.
    static func tensors(_ path: String) throws -> [String: [Float]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        var out: [String: [Float]] = [:]
        for (name, entry) in header where name != "__metadata__" {
            let offsets = (entry as! [String: Any])["data_offsets"] as! [Int]
            let bytes = data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
            out[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return out
    }

    /// The largest absolute difference, and the largest norm-wise relative difference ‖a − b‖ / ‖b‖ over the tensors
    /// of norm at least 1e-3 (a convolution's bias before BatchNorm has a gradient of zero in exact arithmetic, so
    /// its momentum holds rounding noise of 1e-6, whose relative differences say nothing).
    static func worstDifferences(_ got: [String: [Float]], _ want: [String: [Float]]) -> String {
        var absolute: (Float, String) = (0, "none")
        var relative: (Double, String) = (0, "none")
        for (name, reference) in want {
            guard let values = got[name] else { continue }
            var difference = 0.0
            var norm = 0.0
            for (a, b) in zip(values, reference) {
                if abs(a - b) > absolute.0 { absolute = (abs(a - b), name) }
                difference += Double(a - b) * Double(a - b)
                norm += Double(b) * Double(b)
            }
            if norm >= 1e-6, (difference / norm).squareRoot() > relative.0 {
                relative = ((difference / norm).squareRoot(), name)
            }
        }
        return "absolute " + String(format: "%.2e", absolute.0) + " (\(absolute.1)), norm-wise relative "
            + String(format: "%.2e", relative.0) + " (\(relative.1))"
    }

    /// Every tensor of `got` within |a − b| ≤ atol + rtol·|b| of `want`; the worst violations otherwise.
    static func mismatches(_ got: [String: [Float]], _ want: [String: [Float]], atol: Float = 2e-5, rtol: Float = 1e-3)
        -> [String]
    {
        var bad: [String] = []
        for (name, reference) in want.sorted(by: { $0.key < $1.key }) {
            guard let values = got[name], values.count == reference.count else {
                bad.append("\(name): missing or another size")
                continue
            }
            for (i, (a, b)) in zip(values, reference).enumerated() where !(abs(a - b) <= atol + rtol * abs(b)) {
                bad.append("\(name)[\(i)]: \(a) vs \(b)")
                break
            }
        }
        return bad
    }

    /// Two steps of global batches from the first test images, normalised as the runner does.
    static func writeBatches(_ directory: String, supervised: Bool) throws {
        let images = try FashionMNIST.bytes("t10k-images-idx3-ubyte")
        let labels = try FashionMNIST.bytes("t10k-labels-idx1-ubyte")
        let rows = supervised ? finetuneBatch : bl + 2 * bu
        let labeled = supervised ? finetuneBatch : bl
        for step in 0..<2 {
            let path = directory + "/step_" + String(format: "%06d", step)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let first = 100 + step * rows
            let x = (0..<rows * 784).map { Float((Double(images[16 + first * 784 + $0]) / 255 - 0.2860) / 0.3530) }
            try writeNPY(path + "/x.npy", floats: x, shape: [rows, 28, 28, 1])
            try writeNPY(
                path + "/y.npy", int64s: (0..<labeled).map { Int64(labels[8 + first + $0]) }, shape: [labeled])
            try writeNPY(
                path + "/scalars.npy", floats: supervised ? [0.05] : [0.05, 0.05, 0.5, 1],
                shape: [supervised ? 1 : 4])
        }
    }

    /// One checkpoint for every comparison: 3 steps of a one-process run (momenta, BatchNorm running statistics
    /// and both networks' weights away from their initialisation).
    static func checkpoint(_ runner: String, _ work: String) throws -> String {
        try shell([
            runner, "train", "--data", fashionMNIST, "--labels", "100", "--steps", "3", "--finetune-steps", "0",
            "--ema-decay", "0", "--out", work + "/start", "--quiet",
        ])
        return work + "/start/checkpoint.safetensors"
    }

    /// Replays the batches with one process and with `ranks` ranks; returns the mismatched tensors and losses.
    static func compare(
        one: String, many: String, ranks: Int, checkpoint: String, batches: String, work: String, supervised: Bool
    ) throws -> [String] {
        func replay(_ command: [String], _ name: String) throws -> (state: [String: [Float]], losses: String) {
            let out = work + "/\(name).safetensors"
            let losses = work + "/\(name).jsonl"
            try shell(
                command + [
                    "replay", "--checkpoint", checkpoint, "--batches", batches, "--steps", "2", "--out", out,
                    "--losses", losses,
                ] + (supervised ? ["--supervised"] : []))
            return (try tensors(out), try String(contentsOfFile: losses, encoding: .utf8))
        }
        let tag = "\(ranks)-\(UUID().uuidString.prefix(6))"
        let reference = try replay([one], "one-\(tag)")
        let parallel = try replay(try mpirun(ranks) + [many], "many-\(tag)")
        // The losses as tensors of one value per step and output, for the same tolerance.
        func lossTensors(_ text: String) throws -> [String: [Float]] {
            var out: [String: [Float]] = [:]
            for line in text.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                for (key, value) in object where key != "step" {
                    out["loss " + key, default: []].append(Float((value as! NSNumber).doubleValue))
                }
            }
            return out
        }
        var reference2 = reference.state
        var parallel2 = parallel.state
        reference2.merge(try lossTensors(reference.losses)) { $1 }
        parallel2.merge(try lossTensors(parallel.losses)) { $1 }
        // The step changed the state: a comparison of two untouched checkpoints would prove nothing.
        let start = try tensors(checkpoint)
        #expect(!mismatches(reference.state, start, atol: 0, rtol: 0).isEmpty, "the replayed step changed nothing")
        // The log keeps how close the ranks came, to judge the tolerance by.
        print("MPI \(tag): worst differences: \(worstDifferences(parallel2, reference2))")
        return mismatches(parallel2, reference2)
    }

    /// One checkpoint and one set of trainers (1, 2 and 4 ranks) per feedback rule; the model of the default rule
    /// also replays the supervised step (finetuning, the supervised baseline), so that its trainers are built once.
    @Test(
        "2 and 4 ranks replay one process's step: dot-product (and the supervised step), loss-difference, soft; BatchNorm",
        arguments: [
            ["--feedback", "dot-product"], ["--feedback", "loss-difference"],
            ["--pseudo-labels", "soft:2", "--feedback", "soft"],
        ])
    func mplStep(overrides: [String]) throws {
        let work = try temporaryDirectory("mpi-step")
        let model = work + "/mpi_bn.swiftdsl"
        try Self.source.write(toFile: model, atomically: true, encoding: .utf8)
        let one = try Self.runner(model, ranks: 1, overrides: overrides, in: work)
        let checkpoint = try Self.checkpoint(one, work)
        let alsoSupervised = overrides == ["--feedback", "dot-product"]
        try Self.writeBatches(work + "/batches", supervised: false)
        if alsoSupervised { try Self.writeBatches(work + "/supervised", supervised: true) }
        for ranks in [2, 4] {
            let many = try Self.runner(model, ranks: ranks, overrides: overrides, in: work)
            for supervised in alsoSupervised ? [false, true] : [false] {
                let bad = try Self.compare(
                    one: one, many: many, ranks: ranks, checkpoint: checkpoint,
                    batches: work + (supervised ? "/supervised" : "/batches"), work: work, supervised: supervised)
                #expect(
                    bad.isEmpty,
                    "\(ranks) ranks, \(overrides)\(supervised ? ", supervised step" : ""): \(bad.prefix(8))")
            }
        }
    }

    @Test("mplc train --ranks 2 starts mpirun on the built trainer: two moons as one process trains them")
    func trainTwoRanks() throws {
        _ = try Self.mpirun(2)
        let work = try temporaryDirectory("mpi-train")
        func train(_ ranks: Int) throws -> Double {
            let out = work + "/run\(ranks)"
            let result = try run(
                [
                    mplcBinary, "train", Repository.example("two_moons.swiftdsl"), "--ranks", String(ranks), "--data",
                    "two-moons", "--labels", "6", "--steps", "3000", "--out", out, "--quiet",
                ], directory: work)
            #expect(result.status == 0 && result.output.contains("two_moons mpl seed 0, 6 labels"), "\(result.output)")
            let summary =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any]
            let accuracy = summary?["test_accuracy"] as? [String: Any]
            return (accuracy?["student_after_finetune"] as? NSNumber)?.doubleValue ?? 0
        }
        // Measured: 79.15 % in one process, 79.25 % in two ranks (seed 0; the ranks augment per image).
        let one = try train(1)
        let two = try train(2)
        #expect(two > 0.75 && abs(two - one) < 0.05, "student: one process \(one), 2 ranks \(two)")
        for file in ["checkpoint.safetensors", "metrics.jsonl", "two_moons.swiftdsl", "recipe.txt", "boundary.svg"] {
            #expect(FileManager.default.fileExists(atPath: work + "/run2/" + file), "no \(file)")
        }
        // The run directory alone is enough afterwards: the checkpoint records the rank count the model was compiled
        // for (part of its hash), so `mplc eval RUN_DIR` compiles the copy back for it, and gets the run's accuracy.
        let eval = try run([mplcBinary, "eval", work + "/run2"], directory: work)
        #expect(eval.status == 0, "\(eval.output)")
        #expect(eval.output.contains(String(format: "%.2f%%", 100 * two)), "\(eval.output)")
    }

    @Test("mplc train --ranks 2 without mpirun on PATH: exit 1 naming the Debian packages, nothing built")
    func noMPI() throws {
        let work = try temporaryDirectory("mpi-missing")
        let result = try run(
            [
                mplcBinary, "train", Repository.example("two_moons.swiftdsl"), "--ranks", "2", "--data", "two-moons",
                "--out", work + "/run",
            ],
            directory: work, environment: ["PATH": "/nonexistent"])
        #expect(result.status == 1, "\(result.output)")
        #expect(
            result.output.contains("--ranks 2 starts the trainer with mpirun, which is not installed")
                && result.output.contains("openmpi-bin libopenmpi-dev"), "\(result.output)")
        #expect(
            !FileManager.default.fileExists(atPath: work + "/.build-mplc")
                && !FileManager.default.fileExists(atPath: work + "/run"))
    }
}
