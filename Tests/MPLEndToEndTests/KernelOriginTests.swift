// Issue 16: a reader of model.c gets from any kernel to the layer and pass that caused it, and lowering, not the
// emitter, decides how each GEMM runs.

import Foundation
import MPLCompiler
import MPLEmitC
import MPLIR
import MPLLower
import Testing

@Suite("Kernels lead back to the model")
struct KernelOriginTests {
    /// An example compiled, optionally with soft pseudo labels (the JVP and the VJP of the JVP in the step).
    static func compile(_ file: String, soft: Bool = false) throws -> CompiledModel {
        var model = try Compiler.load(path: repositoryRoot + "/Examples/" + file).get()
        if soft { try RecipeOverrides.apply(pseudoLabels: "soft", feedback: nil, to: &model) }
        return try Compiler.compile(model, regenerateCommand: "mplc Examples/\(file)")
    }

    static func file(_ name: String, of compiled: CompiledModel) -> String {
        compiled.files.first { $0.fileName == name }!.contents
    }

    @Test(
        "Every equation that is computed has an origin, through autodiff and every graph pass",
        arguments: [false, true])
    func everyEquationHasAnOrigin(soft: Bool) throws {
        let compiled = try Self.compile("fashion_cnn.swiftdsl", soft: soft)
        for function in compiled.kernels.entryPoints {
            for kernel in function.kernels {
                for value in kernel.equations {
                    #expect(
                        function.graph.origin(of: value) != nil, "\(function.name): \(function.graph.text(of: value))")
                }
            }
        }
        let passes = Set(
            compiled.kernels.entryPoints.flatMap { f in f.graph.values.compactMap { f.graph.origin(of: $0)?.pass } })
        #expect(passes == (soft ? [.forward, .vjp, .jvp, .jvpVJP, .update] : [.forward, .vjp, .update]))
    }

    @Test("Kernels are named network_layer_pass, unique C identifiers, after their main equation")
    func kernelNames() throws {
        let compiled = try Self.compile("fashion_cnn.swiftdsl", soft: true)
        let pattern = try Regex(
            "^(step|supervised_step|predict_teacher|predict_student)_(teacher|student)_[a-z0-9_]+_(fwd|jvp|vjp|jvp_vjp|update)(_[0-9]+)?$"
        )
        var names: [String] = []
        for function in compiled.kernels.entryPoints {
            for kernel in function.kernels {
                #expect(kernel.name.wholeMatch(of: pattern) != nil, "\(kernel.name)")
                names.append(kernel.name)
            }
        }
        #expect(Set(names).count == names.count, "kernel names are unique")
        // The teacher's first convolution (conv0, a 3×3 convolution of 1 channel) and the student's last Dense layer.
        let step = compiled.kernels.entryPoints[0]
        let conv = step.kernels.first { $0.name == "step_teacher_conv0_fwd" }
        guard case .gemm(let g)? = conv?.body else {
            Issue.record("no GEMM step_teacher_conv0_fwd")
            return
        }
        #expect(step.graph.op(of: g.b) == .reshape(step.graph.input(named: "teacher/conv0/weight")!))
        #expect(step.kernels.contains { $0.name == "step_student_conv0_jvp" })
        // The meta-gradient reaches the teacher through the pseudo labels of the student's loss on them.
        #expect(step.kernels.contains { $0.name == "step_student_loss_u_jvp_vjp" })
        #expect(step.kernels.contains { $0.name == "step_teacher_dense10_update" })
    }

    @Test("model.c's kernel comments are lines of model.ir's lowered graphs, and model.ir lists the kernels")
    func commentsMatchTheLoweredDump() throws {
        let compiled = try Self.compile("fashion_mlp.swiftdsl")
        let source = Self.file("model.c", of: compiled)
        let ir = Self.file("model.ir", of: compiled)
        guard let lowered = ir.range(of: "\nlowered func mplc_step {\n") else {
            Issue.record("no lowered dump")
            return
        }
        let loweredLines = Set(ir[lowered.upperBound...].split(separator: "\n").map(String.init))
        // The kernel comment of step_teacher_dense1_fwd: what it does, then its equations.
        let firstMention = try #require(source.range(of: "step_teacher_dense1_fwd"))  // in its pointers' typedef
        let comment = source[..<firstMention.lowerBound].components(separatedBy: "/* ").last!
            .components(separatedBy: " */").first!
        let lines = comment.components(separatedBy: "\n").map { $0.hasPrefix(" * ") ? String($0.dropFirst(3)) : $0 }
        #expect(lines.first == "gemm blas m=288 n=256 k=784 +epilogue split")
        #expect(lines.count == 5)
        for line in lines.dropFirst() {
            let listed = loweredLines.contains(line)
            #expect(listed, "\(line) is not in model.ir's lowered mplc_step")
        }
        #expect(lines.last == "%19 = relu %18 : [288,256]  // teacher/relu2 fwd")
        let listed = loweredLines.contains(
            "kernel step_teacher_dense1_fwd: gemm blas m=288 n=256 k=784 +epilogue split = %16 %17 %18 %19")
        #expect(listed)
        // The entry point names each pointer as the kernel does.
        // (The offset is the memory plan's, which any new step output moves; the value numbers move with a new step
        // input, as feedback_baseline moved them by one.)
        let call = #"step_teacher_dense1_fwd\(scratch \+ [0-9]+ /\* t19 \*/, io /\* in_x \*/"#
        #expect(source.range(of: call, options: .regularExpression) != nil)
    }

    @Test("Lowering chooses each GEMM's strategy; model.ir prints it and the emitter renders what it says")
    func gemmStrategies() throws {
        let compiled = try Self.compile("fashion_cnn.swiftdsl")
        let step = compiled.kernels.entryPoints[0]
        func strategy(_ name: String) -> GEMMStrategy? {
            guard case .gemm(let g)? = step.kernels.first(where: { $0.name == name })?.body else { return nil }
            return g.strategy
        }
        #expect(strategy("step_teacher_conv0_fwd") == .smallGEMM)  // K = 9
        #expect(strategy("step_teacher_conv3_fwd") == .winograd)  // 3×3, 16 → 32 channels
        #expect(strategy("step_teacher_dense7_fwd") == .blas)
        let ir = Self.file("model.ir", of: compiled)
        #expect(ir.contains("kernel step_teacher_conv0_fwd: gemm small-gemm m=225792 n=16 k=9"))
        #expect(ir.contains("kernel step_teacher_conv3_fwd: gemm winograd "))

        // The emitter follows the program: the same GEMM recorded as sgemm on column chunks is rendered so.
        var kernels = compiled.kernels
        let index = try #require(kernels.entryPoints[0].kernels.firstIndex { $0.name == "step_teacher_conv0_fwd" })
        guard case .gemm(var g) = kernels.entryPoints[0].kernels[index].body else { return }
        g.strategy = .blasOnColumns
        kernels.entryPoints[0].kernels[index].body = .gemm(g)
        func kernelSource(_ program: KernelProgram) throws -> String {
            let source = try CEmitter.emit(program)[1].contents
            let start = try #require(source.range(of: "static void step_teacher_conv0_fwd_part("))
            return String(source[start.lowerBound...].prefix(2000))
        }
        #expect(try kernelSource(compiled.kernels).contains("K = 9: a plain loop"))
        let changed = try kernelSource(kernels)
        #expect(changed.contains("cblas_sgemm") && !changed.contains("K = 9: a plain loop"))
    }
}
