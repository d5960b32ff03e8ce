import Foundation
import MPLAutodiff
import MPLCompiler
import MPLEmitC
import MPLIR
import MPLLower
import MPLModel
import Testing

/// The example models with their batches shrunk, so that the Double interpreter runs a full step in seconds.
/// Layers, shapes per row, and every recipe setting that shapes the graph are the examples' own.
func shrunkExample(
    _ file: String, pseudoLabels: PseudoLabels? = nil, feedback: Feedback? = nil, view: AugmentedView = .strongView
) throws -> Model {
    var model = try Compiler.load(path: repositoryRoot + "/Examples/" + file).get()
    model.recipe.labeledBatch = 3
    model.recipe.unlabeledRatio = 2
    model.recipe.finetune.batch = 3
    model.recipe.evalBatch = 2
    if let pseudoLabels { model.recipe.pseudoLabels = pseudoLabels }
    if let feedback { model.recipe.feedback = feedback }
    model.recipe.pseudoLabelsFrom = view
    return model
}

/// Compiles `model`'s C with the debug harness, once with OpenBLAS and once with the naive GEMM.
struct BuiltModel {
    var compiled: CompiledModel
    var directory: String
    /// Threads the harness runs parallel kernels on (MPLC_THREADS).
    var threads = 1

    init(_ model: Model, options: LoweringOptions = LoweringOptions(), threads: Int = 1) throws {
        self.threads = threads
        compiled = try Compiler.compile(model, regenerateCommand: "test", options: options)
        directory = try temporaryDirectory(model.name)
        try Compiler.write(compiled.files, to: directory)
        try Data(try CEmitter.emitHarness(compiled.kernels).utf8).write(
            to: URL(fileURLWithPath: directory + "/harness.c"))
        let flags = [
            "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I", directory, "-I",
            repositoryRoot + "/Templates/runtime",
        ]
        for (binary, extra) in [("harness-blas", []), ("harness-naive", ["-DMPLC_NAIVE_GEMM"])] {
            try shell(
                ["cc"] + flags + extra + ["model.c", "harness.c", "-o", binary, "-lopenblas", "-lm"],
                directory: directory)
        }
    }

    func bindings(_ entry: String) -> Bindings { compiled.kernels.entryPoints.first { $0.name == entry }!.bindings }
}

/// Random inputs for an entry point: state near initialisation, images and one-hot labels, fixed scalars.
func randomInputs(_ entry: EntryPoint, seed: UInt64, scalars: [String: Double]) -> [String: [Double]] {
    var rng = SplitMix64(seed: seed)
    var env: [String: [Double]] = [:]
    for (name, value) in entry.graph.inputs {
        let shape = entry.graph.shape(of: value)
        if let s = scalars[name] {
            env[name] = [s]
        } else if name == "y" {
            env[name] = (0..<shape[0]).flatMap { row -> [Double] in
                let label = Int(rng.next() % UInt64(shape[1]))
                return (0..<shape[1]).map { $0 == label ? 1 : 0 }
            }
        } else if name.hasPrefix("dropout/") {
            let rate = entry.ioInfo[name]?.dropoutRate ?? 0
            env[name] = (0..<shape.count).map { _ in rng.uniform(0...1) < rate ? 0 : 1 / (1 - rate) }
        } else if name == "uniform" {
            env[name] = rng.vector(shape.count, in: 0...1)
        } else if name.hasSuffix("_correction") {
            env[name] = [rng.uniform(0.1...0.9)]  // Adam's 1 − β^t
        } else if name.contains("_momentum/v/") {
            env[name] = rng.vector(shape.count, in: 0...0.5)  // Adam's second moments
        } else if name.hasSuffix("/running_var") || name.hasSuffix("/scale") {
            env[name] = rng.vector(shape.count, in: 0.5...1.5)
        } else {
            let scale = name.contains("weight") ? 1 / Double(shape.dims.dropLast().reduce(1, *)).squareRoot() : 0.5
            env[name] = rng.vector(shape.count, in: -scale...scale)
        }
    }
    return env
}

/// How far the reference is from its nearest branch decision (a ReLU at 0, a max-pool or argmax tie,
/// a UDA threshold): f32 rounding can flip a decision closer than ~1e-6, and then C and the reference
/// legitimately take different branches. Such inputs are redrawn rather than compared. Exact ties (zeros
/// after a ReLU in a pooling window) are resolved identically by both, so only non-zero gaps count.
func decisionMargin(_ graph: Graph, _ values: [[Double]]) -> Double {
    var margin = Double.infinity
    func topTwoGap(_ window: [Double]) -> Double {
        let sorted = window.sorted(by: >)
        let gap = sorted.count > 1 ? sorted[0] - sorted[1] : .infinity
        return gap == 0 ? .infinity : gap
    }
    for value in graph.values {
        switch graph.op(of: value) {
        case .unary(.relu, let x), .unary(.step, let x):
            margin = min(margin, values[x.id].map(abs).filter { $0 > 0 }.min() ?? .infinity)
        case .binary(.greaterEqual, let a, let b), .binary(.max, let a, let b):
            margin = min(
                margin, zip(values[a.id], values[b.id]).map { abs($0 - $1) }.filter { $0 > 0 }.min() ?? .infinity)
        case .maxPool(let x, let g):
            let input = values[x.id]
            for n in 0..<g.batch {
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        for c in 0..<g.channels {
                            let window = (0..<g.kernel * g.kernel).map { tap in
                                input[
                                    ((n * g.height + oy * g.stride + tap / g.kernel) * g.width + ox * g.stride + tap
                                        % g.kernel) * g.channels + c]
                            }
                            margin = min(margin, topTwoGap(window))
                        }
                    }
                }
            }
        case .oneHotArgmax(let z):
            let k = graph.shape(of: z)[1]
            let logits = values[z.id]
            for row in 0..<(logits.count / k) {
                margin = min(margin, topTwoGap(Array(logits[(row * k)..<((row + 1) * k)])))
            }
        default:
            continue
        }
    }
    return margin
}

/// Inputs and the reference's results for the first seed from `start` whose branch decisions all stay
/// `minimumMargin` away from a tie. f32 rounding of these O(1) values is ~1e-8 per operation; 3e-7 leaves
/// a factor of 30 for accumulation. Returns the seed too, so a failure can be reproduced.
func wellConditionedInputs(_ entry: EntryPoint, from start: UInt64, minimumMargin: Double = 3e-7) throws
    -> (seed: UInt64, env: [String: [Double]], reference: [String: [Double]])
{
    for seed in start..<(start + 40) {
        let env = randomInputs(entry, seed: seed, scalars: stepScalars)
        let values = try Interpreter.run(entry.graph, inputs: env)
        if decisionMargin(entry.graph, values) >= minimumMargin {
            let reference = Dictionary(uniqueKeysWithValues: entry.graph.results.map { ($0.name, values[$0.value.id]) })
            return (seed, env, reference)
        }
    }
    throw CommandFailure(description: "no well-conditioned inputs in 40 seeds from \(start)")
}

/// Runs `entry` through the harness and the interpreter; returns a report line per tensor that fails.
func compareStep(
    _ built: BuiltModel, entryName: String, harness: String, env: [String: [Double]],
    reference: [String: [Double]], atol: Double, rtol: Double
) throws -> (failures: [String], checked: Int) {
    let bindings = built.bindings(entryName)
    let state = bindings.state
    var stateArena = [Float](repeating: 0, count: state.floats)
    for tensor in state.tensors {
        let values = env[tensor.name] ?? [Double](repeating: 0, count: tensor.count)
        for (i, v) in values.enumerated() { stateArena[tensor.offset + i] = Float(v) }
    }
    var ioArena = [Float](repeating: 0, count: bindings.ioFloats)
    for tensor in bindings.ioInputs {
        for (i, v) in env[tensor.name]!.enumerated() { ioArena[tensor.offset + i] = Float(v) }
    }
    // The harness takes one file per pointer argument, in signature order: state, io, argument inputs, results.
    let work = try temporaryDirectory("run")
    var files: [String] = []
    if bindings.usesState {
        files.append(work + "/state.f32")
        try writeFloats(stateArena, to: files.last!)
    }
    if bindings.usesIO {
        files.append(work + "/io.f32")
        try writeFloats(ioArena, to: files.last!)
    }
    for argument in bindings.argumentInputs {
        files.append(work + "/\(argument.name).in.f32")
        try writeFloats(env[argument.name]!.map(Float.init), to: files.last!)
    }
    for argument in bindings.argumentOutputs {
        files.append(work + "/\(argument.name).out.f32")
        try writeFloats([Float](repeating: .nan, count: argument.shape.count), to: files.last!)
    }
    try shell([built.directory + "/" + harness, entryName] + files, environment: ["MPLC_THREADS": "\(built.threads)"])
    let newState = bindings.usesState ? try readFloats(work + "/state.f32") : stateArena
    let newIO = bindings.usesIO ? try readFloats(work + "/io.f32") : ioArena

    var failures: [String] = []
    var checked = 0
    // Every state tensor: updated ones against the reference's new value, the others must be untouched.
    for tensor in state.tensors {
        let expected = reference[tensor.name] ?? env[tensor.name] ?? [Double](repeating: 0, count: tensor.count)
        let got = newState[tensor.offset..<(tensor.offset + tensor.count)]
        let worst = worstViolation(got, expected, atol: atol, rtol: rtol)
        checked += 1
        if worst.ratio > 1 {
            failures.append(
                "\(tensor.name)[\(worst.index)]: C \(got[tensor.offset + worst.index]) vs reference \(expected[worst.index]) (\(worst.ratio)× the tolerance)"
            )
        }
    }
    for tensor in bindings.ioOutputs {
        let got = newIO[tensor.offset..<(tensor.offset + tensor.count)]
        let worst = worstViolation(got, reference[tensor.name]!, atol: atol, rtol: rtol)
        checked += 1
        if worst.ratio > 1 {
            failures.append("\(tensor.name): C \(Array(got)) vs reference \(reference[tensor.name]!)")
        }
    }
    for argument in bindings.argumentOutputs {
        let got = try readFloats(work + "/\(argument.name).out.f32")
        let worst = worstViolation(got[...], reference[argument.name]!, atol: atol, rtol: rtol)
        checked += 1
        if worst.ratio > 1 { failures.append("\(argument.name)[\(worst.index)]: \(worst.ratio)× the tolerance") }
    }
    return (failures, checked)
}

/// f32 against f64 after one step: values are O(1) and the step sums at most a few thousand products,
/// so float rounding gives ~1e-6 relative per operation; 1e-4 relative plus 1e-5 absolute leaves room for
/// accumulation in GEMMs and reductions without hiding a wrong index, a missing term or a wrong sign (those
/// give errors of the size of the values themselves).
let stepTolerance = (atol: 1e-5, rtol: 1e-4)

let stepScalars = ["lr_teacher": 0.1, "lr_student": 0.2, "uda_weight": 0.8, "feedback_scale": 1, "lr": 0.1]

struct StepVariant: CustomStringConvertible, Sendable {
    var file: String
    var pseudoLabels: PseudoLabels
    var feedback: Feedback
    var view: AugmentedView = .strongView
    var description: String { "\(file) \(pseudoLabels) \(feedback)" + (view == .strongView ? "" : " \(view)") }
}

let stepVariants: [StepVariant] =
    ["fashion_mlp.swiftdsl", "fashion_cnn.swiftdsl"].flatMap { file in
        [
            StepVariant(file: file, pseudoLabels: .hardArgmax, feedback: .dotProduct),
            StepVariant(file: file, pseudoLabels: .hardSampled, feedback: .lossDifference),
            StepVariant(file: file, pseudoLabels: .soft(temperature: 1.5), feedback: .dotProduct),
        ]
    } + [  // BatchNorm and residual blocks.
        StepVariant(file: "fashion_wrn.swiftdsl", pseudoLabels: .hardArgmax, feedback: .lossDifference),
        StepVariant(file: "fashion_wrn.swiftdsl", pseudoLabels: .soft(temperature: 1.5), feedback: .dotProduct),
        // Reduced MPL.
        StepVariant(file: "fashion_reduced.swiftdsl", pseudoLabels: .soft(temperature: 1.5), feedback: .dotProduct),
        // Adam (teacher) and AdamW (student): sqrt, the bias corrections, and the feedback through Adam's step.
        StepVariant(file: "two_moons_adam.swiftdsl", pseudoLabels: .hardArgmax, feedback: .dotProduct),
        StepVariant(file: "two_moons_adam.swiftdsl", pseudoLabels: .soft(temperature: 1.5), feedback: .dotProduct),
        // Pseudo labels from the weak view: the teacher's backward pass then has no all-zero rows to skip.
        StepVariant(file: "fashion_cnn.swiftdsl", pseudoLabels: .hardArgmax, feedback: .dotProduct, view: .weakView),
    ]

@Suite("Generated C against the Double interpreter", .serialized)
struct GeneratedStepTests {
    @Test(
        "One step of every entry point, BLAS and naive GEMM, every tensor of the symbol table", arguments: stepVariants)
    func everyEntryPoint(variant: StepVariant) throws {
        let model = try shrunkExample(
            variant.file, pseudoLabels: variant.pseudoLabels, feedback: variant.feedback, view: variant.view)
        let built = try BuiltModel(model)
        for entry in ["mplc_step", "mplc_supervised_step", "mplc_predict_teacher", "mplc_predict_student"] {
            let graph = built.compiled.program.entryPoints.first { $0.name == entry }!
            let (seed, env, reference) = try wellConditionedInputs(graph, from: 42)
            for harness in ["harness-blas", "harness-naive"] {
                let (failures, checked) = try compareStep(
                    built, entryName: entry, harness: harness, env: env, reference: reference,
                    atol: stepTolerance.atol, rtol: stepTolerance.rtol)
                #expect(
                    failures.isEmpty,
                    "\(variant) \(entry) \(harness) seed \(seed):\n\(failures.joined(separator: "\n"))")
                #expect(checked > 0)
            }
        }
    }

    @Test(
        "The same on three threads, every kernel that can be split split, convolutions in small chunks",
        arguments: [stepVariants[3], stepVariants[5], stepVariants[6]])
    func everyEntryPointOnThreeThreads(variant: StepVariant) throws {
        let model = try shrunkExample(
            variant.file, pseudoLabels: variant.pseudoLabels, feedback: variant.feedback, view: variant.view)
        let built = try BuiltModel(
            model, options: LoweringOptions(streamChunkFloats: 2_000, parallelFloats: 0), threads: 3)
        #expect(built.compiled.kernels.entryPoints.allSatisfy { $0.kernels.contains(where: \.isParallel) })
        for entry in ["mplc_step", "mplc_supervised_step", "mplc_predict_teacher", "mplc_predict_student"] {
            let graph = built.compiled.program.entryPoints.first { $0.name == entry }!
            let (seed, env, reference) = try wellConditionedInputs(graph, from: 42)
            let (failures, checked) = try compareStep(
                built, entryName: entry, harness: "harness-blas", env: env, reference: reference,
                atol: stepTolerance.atol, rtol: stepTolerance.rtol)
            #expect(
                failures.isEmpty, "\(variant) \(entry) 3 threads seed \(seed):\n\(failures.joined(separator: "\n"))")
            #expect(checked > 0)
        }
    }
}
