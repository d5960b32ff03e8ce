// Issue 20: the backward pass recomputes BatchNorm and LeakyReLU outputs from the BatchNorm's input instead of
// keeping them across the step (the `rematerialise` pass), and the memory plan stays sound with the copies.

import Foundation
import MPLCompiler
import MPLIR
import MPLLower
import MPLModel
import Testing

@Suite("Rematerialised activations")
struct RematerialiseTests {
    static func compile(_ model: Model, rematerialise: Bool) throws -> CompiledModel {
        try Compiler.compile(model, regenerateCommand: "test", options: LoweringOptions(rematerialise: rematerialise))
    }

    @Test(
        "The lowered step computes exactly the same numbers with and without the recomputation",
        arguments: [PseudoLabels.hardArgmax, .soft(temperature: 1.5)])
    func sameNumbers(pseudoLabels: PseudoLabels) throws {
        let model = try shrunkExample("fashion_wrn.swiftdsl", pseudoLabels: pseudoLabels, feedback: .dotProduct)
        let kept = try Self.compile(model, rematerialise: false)
        let recomputed = try Self.compile(model, rematerialise: true)
        for (entry, (keptFunction, recomputedFunction)) in zip(
            kept.program.entryPoints, zip(kept.kernels.entryPoints, recomputed.kernels.entryPoints))
        {
            let inputs = randomInputs(entry, seed: 11, scalars: stepScalars)
            let expected = try Interpreter.results(keptFunction.graph, inputs: inputs)
            let got = try Interpreter.results(recomputedFunction.graph, inputs: inputs)
            // The copies apply the same operations to the same operands: equal to the last bit, not approximately.
            #expect(got == expected, "\(entry.name)")
        }
        // And the step did change: its backward pass reads copies.
        let step = { (compiled: CompiledModel) in compiled.kernels.entryPoints.first { $0.name == "mplc_step" }! }
        #expect(step(recomputed).graph.equations.count > step(kept).graph.equations.count)
    }

    /// Forward BatchNorm and LeakyReLU outputs (element-wise values of those layers, not their per-channel
    /// vectors) that backward kernels read from memory.
    static func keptActivations(_ function: LoweredFunction) -> [String] {
        let graph = function.graph
        var kept: Set<Value> = []
        for kernel in function.kernels {
            guard let main = kernel.equations.last, let pass = graph.origin(of: main)?.pass,
                pass == .vjp || pass == .jvpVJP
            else { continue }
            for read in kernel.reads {
                var root = read
                while case .view(let of, _) = graph.op(of: root).family { root = of }
                guard let origin = graph.origin(of: root), origin.pass == .forward,
                    graph.op(of: root).family == .elementwise, graph.shape(of: root).rank > 1,
                    origin.scope.split(separator: "/").last.map({ $0.hasPrefix("bn") || $0.hasPrefix("leaky") }) == true
                else { continue }
                kept.insert(root)
            }
        }
        return kept.sorted().map { graph.text(of: $0) }
    }

    @Test("Backward kernels read no stored BatchNorm or LeakyReLU output, and the arena shrinks")
    func backwardReadsBatchNormInputsOnly() throws {
        let model = try shrunkExample("fashion_wrn.swiftdsl")
        let kept = try Self.compile(model, rematerialise: false)
        let recomputed = try Self.compile(model, rematerialise: true)
        let step = { (compiled: CompiledModel) in compiled.kernels.entryPoints.first { $0.name == "mplc_step" }! }
        #expect(!Self.keptActivations(step(kept)).isEmpty)
        #expect(Self.keptActivations(step(recomputed)) == [])
        // The full-size step: 101.7 MiB of scratch before, under 40 MiB with the recomputation.
        let full = try Compiler.load(path: repositoryRoot + "/Examples/fashion_wrn.swiftdsl").get()
        let before = try Self.compile(full, rematerialise: false).kernels.scratchFloats
        let after = try Self.compile(full, rematerialise: true).kernels.scratchFloats
        #expect(after * 2 < before, "\(after) floats with the recomputation, \(before) without")
    }

    @Test(
        "Without BatchNorm nothing is worth recomputing: ReLU activations stay kept and the arena does not grow",
        arguments: ["fashion_mlp.swiftdsl", "fashion_cnn.swiftdsl"])
    func reluNetworksKeepTheirActivations(file: String) throws {
        let model = try Compiler.load(path: repositoryRoot + "/Examples/" + file).get()
        let kept = try Self.compile(model, rematerialise: false)
        let recomputed = try Self.compile(model, rematerialise: true)
        #expect(recomputed.kernels.scratchFloats <= kept.kernels.scratchFloats)
        // relu(x) alone, recomputed from x, would keep x instead: the same memory for more work.
        for function in recomputed.kernels.entryPoints {
            let copiedActivations = function.graph.values.filter {
                guard case .unary(.relu, _) = function.graph.op(of: $0) else { return false }
                return function.graph.origin(of: $0)?.pass == .vjp
            }
            #expect(copiedActivations.isEmpty, "\(function.name)")
        }
    }

    @Test("The plan never lets two live buffers overlap, and the report's peak is the live buffers' sum")
    func planIsSound() throws {
        let compiled = try Self.compile(try shrunkExample("fashion_wrn.swiftdsl"), rematerialise: true)
        for function in compiled.kernels.entryPoints {
            let plan = function.plan
            let buffers = plan.scratchBuffers
            for i in buffers.indices {
                #expect(buffers[i].offset + buffers[i].floats <= plan.scratchFloats)
                for j in buffers.indices where j > i && buffers[i].overlapsInTime(buffers[j]) {
                    #expect(
                        !buffers[i].overlapsInMemory(buffers[j]),
                        "\(function.name): \(buffers[i].label) and \(buffers[j].label) overlap")
                }
            }
            // Each buffer lives from the kernel that writes it to the last one that reads it (views included).
            for buffer in buffers {
                guard let value = buffer.value else { continue }
                #expect(function.kernels.firstIndex { $0.outputs.contains(value) } == buffer.firstKernel)
                for (index, kernel) in function.kernels.enumerated() {
                    let readsIt = kernel.reads.contains { read in
                        var root = read
                        while case .view(let of, _) = function.graph.op(of: root).family { root = of }
                        return root == value
                    }
                    if readsIt { #expect(index <= buffer.lastKernel, "\(buffer.label) read by kernel \(index)") }
                }
            }
            let live = plan.liveFloatsByKernel(kernelCount: function.kernels.count)
            for (kernel, floats) in live.enumerated() {
                #expect(floats == plan.buffersLive(atKernel: kernel).map(\.floats).reduce(0, +))
            }
            #expect((live.max() ?? 0) <= plan.scratchFloats)
        }
        let report = compiled.memoryReport(top: 3)
        #expect(report.contains("mplc_step: ") && report.contains("most live at once"))
    }
}
