// Lower, emit, compile with -Werror, run through the harness and compare with the Double interpreter;
// plus the structural properties of lowering (verifier after every pass, memory plan, determinism).

import Foundation
import MPLEmitC
import MPLIR
import MPLLower
import Testing

/// Every optimisation off: one kernel per op, no scratch reuse. The same numbers must come out.
let unoptimised = LoweringOptions(
    fuseElementwise: false, foldGEMMEpilogues: false, mergeSiblingLoops: false,
    reuseScratch: false, poolInConvolutions: false, winogradConvolutions: false)

/// Every kernel that can be split between threads is, however small (run on three threads, so that the parts
/// are uneven and some are empty).
let threaded = LoweringOptions(parallelFloats: 0)

enum Build: String, CaseIterable, CustomTestStringConvertible {
    case blas, naiveGEMM, unoptimised, threaded
    var testDescription: String { rawValue }
    var options: LoweringOptions {
        switch self {
        case .blas, .naiveGEMM: return LoweringOptions()
        case .unoptimised: return MPLCodegenTests.unoptimised
        case .threaded: return MPLCodegenTests.threaded
        }
    }
    var threads: Int { self == .threaded ? 3 : 1 }
}

/// Builds `program` the given way, runs `body`, and removes the build directory.
func withBuild(_ program: Program, _ build: Build, _ body: (BuiltModel) throws -> Void) throws {
    let model = try BuiltModel(program, options: build.options, naiveGEMM: build == .naiveGEMM, threads: build.threads)
    defer { model.remove() }
    try body(model)
}

@Suite struct GeneratedCMatchesInterpreter {
    @Test(arguments: Build.allCases)
    func denseTrainingStepAndPredict(_ build: Build) throws {
        let program = TestPrograms.dense
        try withBuild(program, build) { model in
            var (state, inputs) = randomArguments(program, entry: "mplc_step", seed: 1)
            inputs["y"] = (0..<5).flatMap { row in (0..<4).map { Float($0 == row % 4 ? 1 : 0) } }
            inputs["lr"] = [0.1]
            let step = try checkAgainstInterpreter(model, program, entry: "mplc_step", state: state, inputs: inputs)
            let predict = try checkAgainstInterpreter(
                model, program, entry: "mplc_predict", state: state, inputs: ["x": inputs["x"]!])
            print("dense/\(build.rawValue): step \(step.summary); predict \(predict.summary)")
        }
    }

    @Test(arguments: Build.allCases)
    func convolutionPoolingAndTheirDerivatives(_ build: Build) throws {
        let program = TestPrograms.convolution
        try withBuild(program, build) { model in
            let (state, inputs) = randomArguments(program, entry: "mplc_conv", seed: 2)
            let stats = try checkAgainstInterpreter(model, program, entry: "mplc_conv", state: state, inputs: inputs)
            print("conv/\(build.rawValue): \(stats.summary)")
        }
    }

    @Test(arguments: Build.allCases)
    func elementwiseReductionsRowsAndOneHot(_ build: Build) throws {
        let program = TestPrograms.elementwise
        try withBuild(program, build) { model in
            var (state, inputs) = randomArguments(program, entry: "mplc_elementwise", seed: 3)
            inputs["uniform"] = TestPrograms.safeUniform(inputs["a"]!, rows: 6, classes: 4, seed: 4)
            let stats = try checkAgainstInterpreter(
                model, program, entry: "mplc_elementwise", state: state, inputs: inputs)
            print("elementwise/\(build.rawValue): \(stats.summary)")
        }
    }

    @Test(arguments: Build.allCases)
    func streamedConvolutionsInSmallChunks(_ build: Build) throws {
        try checkInSmallChunks(
            TestPrograms.streamedConvolutions, entry: "mplc_streamed",
            chunkFloats: TestPrograms.streamedOptions.streamChunkFloats, seed: 6, build)
    }

    /// The forward product and ∂x run as F(4×4, 3×3), whose float32 error is up to about 1e-5 of the largest
    /// output (test_winograd.c: 8.8e-6; F(2×2, 3×3) 4.6e-7): the absolute tolerance is 4e-5, 2.5× the seed's
    /// largest error (1.6e-5, on an output of 0.017, over the default 1e-5 + 1e-4·|out|).
    @Test(arguments: Build.allCases)
    func winogradConvolutionAndItsTranspose(_ build: Build) throws {
        try checkInSmallChunks(
            TestPrograms.winogradConvolution, entry: "mplc_winograd",
            chunkFloats: TestPrograms.winogradOptions.streamChunkFloats, seed: 7, build,
            tolerance: Tolerance(absolute: 4e-5))
    }

    /// Builds `program` the given way with convolutions streamed in chunks of `chunkFloats`, and checks
    /// `entry` against the interpreter on random arguments.
    private func checkInSmallChunks(
        _ program: Program, entry: String, chunkFloats: Int, seed: UInt64, _ build: Build,
        tolerance: Tolerance = Tolerance()
    ) throws {
        var options = build.options
        options.streamChunkFloats = chunkFloats
        let model = try BuiltModel(program, options: options, naiveGEMM: build == .naiveGEMM, threads: build.threads)
        defer { model.remove() }
        let (state, inputs) = randomArguments(program, entry: entry, seed: seed)
        let stats = try checkAgainstInterpreter(
            model, program, entry: entry, state: state, inputs: inputs, tolerance: tolerance)
        print("\(entry)/\(build.rawValue): \(stats.summary)")
    }

    @Test func winogradRunsTheForwardConvolutionItsTransposeAndDW() {
        func gemms(_ options: LoweringOptions) -> [GEMM] {
            Lowering.lower(TestPrograms.winogradConvolution, options: options).entryPoints[0].kernels.compactMap {
                kernel in
                if case .gemm(let g) = kernel.body { return g } else { return nil }
            }
        }
        var options = TestPrograms.winogradOptions
        let on = gemms(options)
        #expect(on.count == 3 && on.allSatisfy { $0.strategy == .winograd }, "the forward product, ∂x and ∂W")
        // The 5×7 images: F(4×4, 3×3) for the forward product and ∂x (36·2·2 products an image, against 16·3·4),
        // F(2×2, 3×3) for ∂W.
        #expect(on.map(\.winogradTile) == on.map { $0.hasPartialSums ? 2 : 4 })
        for g in on {
            // Two images (2·2·2 or 2·3·4 tiles) per chunk; a thread's part holds the filters (36 or 16 planes of
            // 8·9) and the chunk's scratch, and for ∂W then its partial sum (72·9).
            let (planes, tiles) = g.winogradTile == 4 ? (36, 2 * 2 * 2) : (16, 2 * 3 * 4)
            let filters = planes * 8 * 9
            // The scratch: the transformed tiles and products (`planes` each), a row of zeros (in + out) and one
            // for the outputs past an odd edge.
            let scratch: Int = planes * tiles * (8 + 9) + 8 + 2 * 9
            #expect((g.im2colA ?? g.col2imOutput)?.chunkImages == 2)
            #expect(g.partialSumsOffset >= filters + scratch)
            #expect(g.partFloats >= g.partialSumsOffset + (g.hasPartialSums ? 72 * 9 : 0))
        }
        options.winogradConvolutions = false
        #expect(gemms(options).allSatisfy { $0.strategy != .winograd })
    }

    @Test(arguments: Build.allCases)
    func backwardPassOnPaddedRows(_ build: Build) throws {
        let program = TestPrograms.paddedCotangents
        try withBuild(program, build) { model in
            let (state, inputs) = randomArguments(program, entry: "mplc_padded", seed: 7)
            let stats = try checkAgainstInterpreter(model, program, entry: "mplc_padded", state: state, inputs: inputs)
            print("padded/\(build.rawValue): \(stats.summary)")
        }
    }

    @Test(arguments: Build.allCases)
    func stateResultsThatCannotBeWrittenInPlace(_ build: Build) throws {
        let program = TestPrograms.stateHazards
        try withBuild(program, build) { model in
            let (state, inputs) = randomArguments(program, entry: "mplc_hazards", seed: 5)
            let stats = try checkAgainstInterpreter(model, program, entry: "mplc_hazards", state: state, inputs: inputs)
            print("hazards/\(build.rawValue): \(stats.summary)")
        }
    }
}

@Suite struct LoweringStructure {
    @Test func verifierPassesAfterEveryGraphPass() {
        for program in TestPrograms.all {
            let state = Lowering.lower(program).state
            for entry in program.entryPoints {
                #expect(entry.graph.verify() == [])
                var passes: [String] = []
                _ = Lowering.lower(entry, state: state, options: LoweringOptions(verifyAfterEachPass: false)) {
                    pass, function in
                    passes.append(pass)
                    #expect(function.graph.verify() == [], "\(entry.name) after \(pass)")
                }
                #expect(passes == Lowering.pipeline.map(\.name))
            }
        }
    }

    @Test func simplifierRemovesIdentitiesAndDuplicates() {
        var g = Graph()
        let x = g.input("x", Shape([4]))
        let one = g.mul(x, g.constant(1, Shape([4])))
        let zero = g.add(one, g.constant(0, Shape([4])))
        let e1 = g.unary(.exp, zero)
        let e2 = g.unary(.exp, x)
        let chain = g.reshape(g.reshape(g.add(e1, e2), Shape([2, 2])), Shape([4, 1]))
        _ = g.unary(.tanh, x)  // dead
        g.results = [("y", g.append(.stopGradient(chain)))]
        let entry = EntryPoint(name: "f", tableName: "f", graph: g, inputStorage: ["x": .io], resultStorage: ["y": .io])
        let lowered = Lowering.lower(entry, state: ArenaLayout())
        // x, exp x, add, one reshape: the identities, the duplicate exp, the reshape chain and the dead tanh are gone.
        #expect(
            lowered.graph.text == """
                %0 = input "x" : [4]
                %1 = exp %0 : [4]
                %2 = add %1, %1 : [4]
                %3 = reshape %2 : [4,1]
                result "y" = %3

                """)
    }

    @Test func memoryPlanNeverOverlapsLiveBuffers() {
        for program in TestPrograms.all {
            for options in [LoweringOptions(), unoptimised, threaded] {
                let lowered = Lowering.lower(program, options: options)
                #expect(lowered.scratchFloats <= lowered.naiveScratchFloats)
                #expect(lowered.state.tensors.allSatisfy { $0.offset % 16 == 0 })
                for function in lowered.entryPoints {
                    let buffers = function.plan.scratchBuffers
                    #expect(
                        buffers.allSatisfy {
                            $0.offset % 16 == 0 && $0.floats % 16 == 0 && $0.firstKernel <= $0.lastKernel
                        })
                    #expect(buffers.allSatisfy { $0.offset + $0.floats <= function.plan.scratchFloats })
                    for i in buffers.indices {
                        for j in buffers.indices where j > i && buffers[i].overlapsInTime(buffers[j]) {
                            #expect(
                                !buffers[i].overlapsInMemory(buffers[j]),
                                "\(function.name): \(buffers[i].label) and \(buffers[j].label) overlap")
                        }
                    }
                    #expect(
                        (function.bindings.ioInputs + function.bindings.ioOutputs).allSatisfy { $0.offset % 16 == 0 })
                    // Every buffer is live from the kernel that writes it to the last kernel that reads it.
                    for buffer in buffers {
                        guard let value = buffer.value else { continue }
                        let writer = function.kernels.firstIndex { $0.outputs.contains(value) }
                        #expect(writer == buffer.firstKernel)
                        for (index, kernel) in function.kernels.enumerated()
                        where kernel.reads.contains(where: { readsMemory(of: value, $0, function.graph) }) {
                            #expect(
                                index <= buffer.lastKernel, "\(buffer.label) read by kernel \(index) after its range")
                        }
                    }
                }
                print(
                    "\(program.modelName) \(options.reuseScratch ? "planned" : "no reuse"): scratch "
                        + "\(lowered.scratchBytes) bytes, naive sum \(lowered.naiveScratchBytes) bytes")
            }
        }
    }

    @Test func nesterovUpdateIsOneLoopWrittenInPlace() {
        let function = Lowering.lower(TestPrograms.dense).entryPoints[0]
        let stateNames = TestPrograms.dense.state.map(\.name)
        #expect(function.plan.inPlaceStateResults == function.bindings.stateResults)
        #expect(Set(function.plan.inPlaceStateResults) == Set(stateNames))
        #expect(function.plan.finalCopies.isEmpty && function.plan.stagingCopies.isEmpty)
        // θ' and v' of each parameter come out of a single loop that reads θ, v, g and lr.
        for name in stateNames where !name.hasPrefix("momentum/") {
            let theta = function.graph.results.first { $0.name == name }!.value
            let velocity = function.graph.results.first { $0.name == "momentum/" + name.dropFirst(4) }!.value
            let writers = function.kernels.filter { $0.outputs.contains(theta) || $0.outputs.contains(velocity) }
            #expect(
                writers.count == 1 && writers[0].outputs.contains(theta) && writers[0].outputs.contains(velocity),
                "\(name)")
        }
        // Both matmul + bias (+ relu) layers of the forward pass are sgemm with an epilogue.
        let epilogues = function.kernels.filter {
            if case .gemm(let g) = $0.body { return !g.epilogue.isEmpty }
            return false
        }
        #expect(epilogues.count >= 2)
    }

    @Test func aPoolAfterAStreamedConvolutionRunsInItsKernel() {
        func pools(_ options: LoweringOptions) -> (fused: [WindowKernel], separate: [WindowKernel]) {
            let kernels = Lowering.lower(TestPrograms.convolution, options: options).entryPoints[0].kernels
            let fused = kernels.compactMap { kernel -> WindowKernel? in
                if case .gemm(let g) = kernel.body { return g.pool } else { return nil }
            }
            let separate = kernels.compactMap { kernel -> WindowKernel? in
                if case .window(let w) = kernel.body, w.op == .maxPool || w.op == .avgPool {
                    return w
                } else {
                    return nil
                }
            }
            return (fused, separate)
        }
        // The activation is pooled four ways; the first pool moves into the convolution, the others stay.
        let on = pools(LoweringOptions())
        let off = pools(LoweringOptions(poolInConvolutions: false))
        #expect(on.fused.count == 1 && on.fused[0].op == .maxPool && on.separate.count == 3)
        #expect(off.fused.isEmpty && off.separate.count == 4)
    }

    @Test func hazardousStateResultsAreCopiedAndTheRestWrittenInPlace() {
        let function = Lowering.lower(TestPrograms.stateHazards).entryPoints[0]
        #expect(function.plan.inPlaceStateResults == ["f", "g"])
        // g' = g − 0.1·(m·mᵀ + bias) runs in the epilogue of sgemm, which writes z, not g.
        let gemmWritingG = function.kernels.first { kernel in
            guard case .gemm(let gemm) = kernel.body else { return false }
            return gemm.epilogue.contains { $0.value == function.graph.result(named: "g") }
        }
        #expect(gemmWritingG != nil)
        #expect(function.plan.stagingCopies.map(\.resultName) == ["a", "b"])
        #expect(function.plan.finalCopies.map(\.resultName) == ["a", "b", "c", "e", "passthrough", "tanh2"])
        // A result that is a reshape of a kernel's output is written where it belongs, not copied.
        #expect(Lowering.lower(TestPrograms.elementwise).entryPoints[0].plan.finalCopies.isEmpty)
    }

    @Test func zeroRowsAreSkippedAndColumnsStreamed() {
        // Only the forward GEMMs see all 7 rows; every backward GEMM runs on the 2- and 3-row blocks.
        let padded = Lowering.lower(TestPrograms.paddedCotangents).entryPoints[0]
        let gemms = padded.kernels.compactMap { kernel -> GEMM? in
            if case .gemm(let g) = kernel.body { return g } else { return nil }
        }
        #expect(gemms.filter { $0.m == 7 || $0.k == 7 }.count == 2, "\(gemms.map { ($0.m, $0.n, $0.k) })")
        #expect(gemms.allSatisfy { $0.m <= 3 || !$0.transposeA || $0.k <= 3 })
        // No im2col or col2im kernel is left, and nothing of size [N·OH·OW, k·k·C] is in scratch.
        let streamed = Lowering.lower(TestPrograms.streamedConvolutions, options: TestPrograms.streamedOptions)
            .entryPoints[0]
        let windows = streamed.kernels.compactMap { kernel -> WindowOp? in
            if case .window(let w) = kernel.body { return w.op } else { return nil }
        }
        #expect(!windows.contains(.im2col) && !windows.contains(.col2im), "\(windows)")
        let chunked = streamed.kernels.compactMap { kernel -> GEMM? in
            if case .gemm(let g) = kernel.body { return g } else { return nil }
        }
        #expect(
            chunked.compactMap(\.im2colA).map(\.chunkImages).sorted() == [1, 1, 2, 2],
            "\(chunked.compactMap(\.im2colA))")
        #expect(chunked.compactMap(\.col2imOutput).map(\.chunkImages) == [1])
        // (A temporary holds a chunk for each of up to maxThreads threads.)
        #expect(
            streamed.plan.scratchBuffers.allSatisfy { $0.floats / ($0.temporaryOf == nil ? 1 : maxThreads) < 180 * 36 })
        // The ReLU mask of the backward pass is read from the activation: no pre-activation is stored.
        let dense = Lowering.lower(TestPrograms.dense).entryPoints[0]
        #expect(
            dense.graph.values.allSatisfy { value in
                guard case .unary(.step, let x) = dense.graph.op(of: value) else { return true }
                if case .unary(.relu, _) = dense.graph.op(of: x) { return true }
                return false
            })
    }

    @Test func everyOpIsCovered() {
        var seen: [String] = []
        for program in TestPrograms.all {
            for entry in program.entryPoints {
                for value in entry.graph.values {
                    let word = String(entry.graph.op(of: value).mnemonic.prefix { $0 != " " })
                    if !seen.contains(word) { seen.append(word) }
                }
            }
        }
        let unary = UnaryOp.allCases.map(\.rawValue)
        let binary = BinaryOp.allCases.map(\.rawValue)
        let structural = [
            "input", "constant", "broadcast", "reduce_sum", "reduce_max", "reshape", "matmul", "im2col", "col2im",
            "max_pool", "max_pool_select", "max_pool_scatter", "avg_pool", "avg_pool_transpose", "slice_rows",
            "pad_rows", "one_hot_argmax", "one_hot_sample", "stop_gradient",
        ]
        for op in unary + binary + structural { #expect(seen.contains(op), "no test program uses \(op)") }
    }
}

/// Whether reading `read` touches the memory of `value` (it is the value or a view of it).
func readsMemory(of value: Value, _ read: Value, _ graph: Graph) -> Bool {
    var current = read
    while true {
        if current == value { return true }
        switch graph.op(of: current) {
        case .reshape(let operand), .stopGradient(let operand), .sliceRows(let operand, _): current = operand
        default: return false
        }
    }
}

@Suite struct Emission {
    @Test func emissionIsDeterministic() throws {
        for program in TestPrograms.all {
            let first = try CEmitter.emit(program)
            let second = try CEmitter.emit(program)
            #expect(first.map(\.fileName) == ["model.h", "model.c", "mplc_runtime.h"])
            #expect(first.map(\.contents) == second.map(\.contents))
        }
    }

    /// cc (gcc here) builds every test model in the C tests above; clang, which macOS calls cc and which every
    /// Swift toolchain ships, must accept the same code with the same flags (it also warns on unused static
    /// inline functions, which gcc does not).
    @Test func clangAcceptsTheGeneratedCode() throws {
        guard (try? runCommand(["clang", "--version"], in: FileManager.default.temporaryDirectory)) != nil else {
            print("clang not found: only cc was checked")
            return
        }
        for program in TestPrograms.all {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "mplc-clang-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            for file in try CEmitter.emit(program) {
                try file.contents.write(
                    to: directory.appendingPathComponent(file.fileName), atomically: true, encoding: .utf8)
            }
            for naive in [[], ["-DMPLC_NAIVE_GEMM"]] {
                try runCommand(
                    ["clang", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"] + naive
                        + ["-c", "model.c", "-o", "model.o"], in: directory)
            }
        }
    }

    @Test func headerFollowsTheABI() throws {
        let files = try CEmitter.emit(TestPrograms.dense)
        let header = files[0].contents
        for line in [
            "#define MPLC_STATE_FLOATS ", "#define MPLC_STEP_IO_FLOATS ", "#define MPLC_SCRATCH_FLOATS ",
            "#define MPLC_NUM_STATE_TENSORS 8", "#define MPLC_NUM_STEP_INPUTS 3", "#define MPLC_NUM_STEP_OUTPUTS 2",
            "#define MPLC_MODEL_NAME \"test_dense\"", "#define MPLC_TEACHER_LR 0.05",
            "extern const mplc_tensor mplc_state_tensors[];", "extern const mplc_tensor mplc_step_inputs[];",
            "extern const mplc_tensor mplc_step_outputs[];",
            "void mplc_step(float *state, float *io, float *scratch);",
            "void mplc_predict(const float *state, const float *x, float *logits, float *scratch);",
            "swift test --filter MPLCodegenTests",
        ] {
            #expect(header.contains(line), "model.h lacks \(line)")
        }
        let source = files[1].contents
        #expect(source.contains("{ \"net/dense0/weight\", 2, {6, 8, 0, 0}, 0, 48, 6, 1, 0.0 },"))
        // a transposed operand, not a transpose
        #expect(source.contains("cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,"))
        #expect(!source.contains("malloc"))
        #expect(!source.contains("/work/") && !source.contains(NSTemporaryDirectory()))
    }

    /// A column sum split between threads (BatchNorm's statistics, a bias gradient: one sum per channel over the
    /// N·H·W rows) gives each piece of work a block of rows and its own row of partial sums. Cut by columns, as it
    /// was, every thread read the whole tensor for its few channels, and fashion_wrn's sums got slower with a
    /// second thread (11.1 → 23.6 ms per step).
    @Test func columnSumsAreSplitByRows() throws {
        var g = Graph()
        let x = g.input("x", Shape([4096, 16]))
        g.results = [("sums", g.reduceSum(g.mul(x, x), axes: [0]))]
        let program = Program(
            modelName: "m", regenerateCommand: "r", state: [],
            entryPoints: [
                EntryPoint(
                    name: "mplc_f", tableName: "f", graph: g, inputStorage: ["x": .io], resultStorage: ["sums": .io])
            ], macros: [])
        let source = try CEmitter.emit(program)[1].contents
        // 16 blocks of 256 rows, each summed into a row of 16 partials; then the 16 rows, in block order.
        #expect(source.contains("while (mplc_claim(4096, 256, &lo, &hi)) {"), "\(source)")
        #expect(source.contains("float *restrict partial = chunk + lo / 256 * 16;"))
        #expect(source.contains("sums[i1] += v"))
        #expect(source.contains("for (size_t b = 1; b < 16; b++) total += chunk[b * 16 + o];"))
        #expect(!source.contains("mplc_part("))
    }

    @Test func floatsPrintAsRoundTripLiterals() throws {
        var g = Graph()
        let x = g.input("x", Shape([3]))
        g.results = [("y", g.add(g.mul(x, g.constant(0.1, Shape([3]))), g.constant(-1e-7, Shape([3]))))]
        let program = Program(
            modelName: "m", regenerateCommand: "r", state: [],
            entryPoints: [
                EntryPoint(
                    name: "mplc_f", tableName: "f", graph: g, inputStorage: ["x": .io],
                    resultStorage: ["y": .io])
            ], macros: [])
        let source = try CEmitter.emit(program)[1].contents
        #expect(source.contains("in_x[i] * 0.1f;") && source.contains(" + (-1e-07f);"))
    }
}
