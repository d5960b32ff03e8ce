// Hand-built programs that together use every op of the IR, built with MPLIR's builders only.

import Foundation
import MPLIR
import MPLLower

private func shape(_ dims: Int...) -> Shape { Shape(dims) }

enum TestPrograms {
    static let momentum = 0.9
    static let weightDecay = 0.01

    /// θ' = θ − lr·(g' + μ·v'), v' = μ·v + g', g' = g + wd·θ (weights only): SGD with Nesterov momentum.
    static func nesterov(
        _ g: inout Graph, _ theta: Value, _ velocity: Value, _ gradient: Value, lr: Value,
        isWeight: Bool
    ) -> (theta: Value, velocity: Value) {
        let decayed = isWeight ? g.add(gradient, g.scale(theta, weightDecay)) : gradient
        let newVelocity = g.add(g.scale(velocity, momentum), decayed)
        let direction = g.add(decayed, g.scale(newVelocity, momentum))
        return (g.sub(theta, g.scale(direction, by: lr)), newVelocity)
    }

    /// A two-layer MLP: one training step (forward, cross-entropy, backward, Nesterov update of every
    /// parameter and momentum in place) and a predict function with pointer arguments.
    static var dense: Program {
        let (rows, inputs, hidden, classes) = (5, 6, 8, 4)
        let parameters: [(name: String, shape: Shape, isWeight: Bool, fanIn: Int)] = [
            ("net/dense0/weight", shape(inputs, hidden), true, inputs), ("net/dense0/bias", shape(hidden), false, 0),
            ("net/dense1/weight", shape(hidden, classes), true, hidden), ("net/dense1/bias", shape(classes), false, 0),
        ]
        let state =
            parameters.map { TensorInfo(name: $0.name, shape: $0.shape, fanIn: $0.fanIn, isWeight: $0.isWeight) }
            + parameters.map { TensorInfo(name: "momentum/" + $0.name.dropFirst(4), shape: $0.shape) }

        func forward(_ g: inout Graph, _ x: Value, _ p: [Value]) -> (hiddenPre: Value, hidden: Value, logits: Value) {
            let hiddenPre = g.addBias(g.matmul(x, p[0]), p[1])
            let h = g.unary(.relu, hiddenPre)
            return (hiddenPre, h, g.addBias(g.matmul(h, p[2]), p[3]))
        }

        var step = Graph()
        let x = step.input("x", shape(rows, inputs))
        let y = step.input("y", shape(rows, classes))
        let lr = step.input("lr", .scalar)
        let theta = parameters.map { step.input($0.name, $0.shape) }
        let velocity = parameters.map { step.input("momentum/" + $0.name.dropFirst(4), $0.shape) }
        let (hiddenPre, h, logits) = forward(&step, x, theta)
        let loss = step.crossEntropy(targets: y, logits: logits)
        let dLogits = step.scale(step.sub(step.softmax(logits), y), 1 / Double(rows))
        let dHidden = step.mul(step.matmul(dLogits, theta[2], transposeB: true), step.unary(.step, hiddenPre))
        let gradients = [
            step.matmul(x, dHidden, transposeA: true), step.reduceSum(dHidden, axes: [0]),
            step.matmul(h, dLogits, transposeA: true), step.reduceSum(dLogits, axes: [0]),
        ]
        step.results = [("loss", loss), ("logits", logits)]
        for (index, parameter) in parameters.enumerated() {
            let updated = nesterov(
                &step, theta[index], velocity[index], gradients[index], lr: lr, isWeight: parameter.isWeight)
            step.results.append((parameter.name, updated.theta))
            step.results.append(("momentum/" + parameter.name.dropFirst(4), updated.velocity))
        }

        var predict = Graph()
        let px = predict.input("x", shape(rows, inputs))
        let pTheta = parameters.map { predict.input($0.name, $0.shape) }
        predict.results = [("logits", forward(&predict, px, pTheta).logits)]

        var stepStorage: [String: Storage] = ["x": .io, "y": .io, "lr": .io]
        for tensor in state { stepStorage[tensor.name] = .state }
        var predictStorage: [String: Storage] = ["x": .argument]
        for parameter in parameters { predictStorage[parameter.name] = .state }
        var stepResults: [String: Storage] = ["loss": .io, "logits": .io]
        for tensor in state { stepResults[tensor.name] = .state }
        return Program(
            modelName: "test_dense", regenerateCommand: "swift test --filter MPLCodegenTests", state: state,
            entryPoints: [
                EntryPoint(
                    name: "mplc_step", tableName: "step", graph: step, inputStorage: stepStorage,
                    resultStorage: stepResults),
                EntryPoint(
                    name: "mplc_predict", tableName: "predict", graph: predict, inputStorage: predictStorage,
                    resultStorage: ["logits": .argument]),
            ],
            macros: [
                ("MPLC_MODEL_NAME", .string("test_dense")), ("MPLC_CLASSES", .number("4")),
                ("MPLC_TEACHER_LR", .number("0.05")),
            ])
    }

    /// A convolution as im2col + GEMM with ReLU, max and average pooling (plain and strided-padded), and the
    /// derivatives: maxPoolSelect, maxPoolScatter, avgPoolTranspose, col2im, the weight gradient as a GEMM of
    /// the columns, and an in-place SGD update of the (HWIO) weight through its reshaped gradient.
    static var convolution: Program {
        let conv = WindowGeometry(batch: 2, height: 6, width: 6, channels: 3, kernel: 3, stride: 1, padding: 1)
        let pool = WindowGeometry(batch: 2, height: 6, width: 6, channels: 4, kernel: 2, stride: 2, padding: 0)
        let paddedPool = WindowGeometry(batch: 2, height: 6, width: 6, channels: 4, kernel: 3, stride: 2, padding: 1)
        let weightShape = shape(3, 3, 3, 4)
        var g = Graph()
        let x = g.input("x", conv.inputShape)
        let cotangent = g.input("cotangent", pool.pooledShape)
        let tangent = g.input("tangent", pool.inputShape)
        let weight = g.input("conv/weight", weightShape)
        let bias = g.input("conv/bias", shape(4))
        let columns = g.append(.im2col(x, conv))
        let weightMatrix = g.reshape(weight, shape(27, 4))
        let preActivation = g.addBias(g.matmul(columns, weightMatrix), bias)  // [72, 4]
        let image = g.reshape(preActivation, pool.inputShape)
        let activation = g.unary(.relu, image)
        let pooled = g.append(.maxPool(activation, pool))
        let averaged = g.append(.avgPool(activation, pool))
        let paddedMax = g.append(.maxPool(activation, paddedPool))
        let paddedAverage = g.append(.avgPool(activation, paddedPool))
        let selected = g.append(.maxPoolSelect(source: activation, tangent: tangent, pool))
        let routed = g.append(.maxPoolScatter(source: activation, cotangent: cotangent, pool))
        let spread = g.append(.avgPoolTranspose(cotangent, pool))
        let paddedSpread = g.append(.avgPoolTranspose(paddedAverage, paddedPool))
        let dImage = g.mul(g.add(routed, spread), g.unary(.step, image))
        let dPre = g.reshape(dImage, shape(72, 4))
        let dWeight = g.reshape(g.matmul(columns, dPre, transposeA: true), weightShape)
        let dBias = g.reduceSum(dPre, axes: [0])
        let dColumns = g.matmul(dPre, weightMatrix, transposeB: true)
        let dx = g.append(.col2im(dColumns, conv))
        g.results = [
            ("pooled", pooled), ("averaged", averaged), ("padded_max", paddedMax), ("padded_spread", paddedSpread),
            ("selected", selected), ("dx", dx), ("d_bias", dBias),
            ("conv/weight", g.sub(weight, g.scale(dWeight, 0.1))),
        ]
        var inputStorage: [String: Storage] = ["x": .io, "cotangent": .io, "tangent": .io]
        inputStorage["conv/weight"] = .state
        inputStorage["conv/bias"] = .state
        var resultStorage: [String: Storage] = [:]
        for result in g.results { resultStorage[result.name] = .io }
        resultStorage["conv/weight"] = .state
        return Program(
            modelName: "test_conv", regenerateCommand: "swift test --filter MPLCodegenTests",
            state: [
                TensorInfo(name: "conv/weight", shape: weightShape, fanIn: 27, isWeight: true),
                TensorInfo(name: "conv/bias", shape: shape(4)),
            ],
            entryPoints: [
                EntryPoint(
                    name: "mplc_conv", tableName: "conv", graph: g, inputStorage: inputStorage,
                    resultStorage: resultStorage)
            ],
            macros: [])
    }

    /// Every unary and binary op, broadcasts along different axes, reductions over leading, middle, trailing
    /// and all axes, reshape chains and identities for the simplifier, row slices and padding, one-hot argmax
    /// and sampling, a GEMM of a constant and of a row slice, a materialised constant and broadcast.
    static var elementwise: Program {
        var g = Graph()
        let a = g.input("a", shape(6, 4))
        let uniform = g.input("uniform", shape(6))
        let b = g.input("b", shape(3, 4, 5))
        let s = g.input("s", .scalar)
        let r = g.input("r", shape(4))
        let q = g.input("q", shape(3, 5))
        let big = shape(3, 4, 5)
        let rWide = g.broadcast(r, to: big, axes: [1])
        let qWide = g.broadcast(q, to: big, axes: [0, 2])
        let sWide = g.broadcast(s, to: big, axes: [])
        // Identities the simplifier removes, and a duplicate it merges.
        let bOne = g.add(g.mul(b, g.constant(1, big)), g.constant(0, big))
        let positive = g.add(g.unary(.exp, bOne), g.constant(1, big))
        let unaries = g.add(
            g.add(g.add(g.unary(.log, positive), g.unary(.sqrt, positive)), g.unary(.tanh, b)),
            g.add(
                g.add(g.unary(.sigmoid, g.neg(b)), g.unary(.relu, g.append(.stopGradient(b)))),
                g.add(g.unary(.gelu, b), g.unary(.normalCDF, b))))
        let binaries = g.add(
            g.sub(g.mul(unaries, rWide), g.div(qWide, positive)),
            g.add(g.binary(.max, b, sWide), g.binary(.greaterEqual, b, qWide)))
        let stepped = g.mul(binaries, g.unary(.step, g.sub(b, g.constant(0.25, big))))
        let duplicate = g.mul(binaries, g.unary(.step, g.sub(b, g.constant(0.25, big))))
        let flat = g.reshape(g.reshape(g.add(stepped, duplicate), shape(12, 5)), shape(60))

        let rows = g.sliceRows(a, start: 2, count: 3)
        let padded = g.append(.padRows(g.scale(rows, 2), start: 1), shape: shape(6, 4))
        let argmax = g.append(.oneHotArgmax(a))
        let sample = g.append(.oneHotSample(probabilities: g.softmax(a), uniform: uniform))
        let ones = g.constant(1, shape(4, 2))
        let rowSums = g.matmul(a, ones)
        let sliceProduct = g.matmul(rows, g.sliceRows(a, start: 0, count: 4))  // [3,4]·[4,4]
        // All-reduces, the identity in one process: one into a result of its own (a copy first), one that sums
        // its operand's scratch buffer in place.
        let reducedCopy = g.allReduceSum(rowSums)
        let reducedInPlace = g.scale(g.allReduceSum(g.matmul(rows, ones)), 3)
        g.results = [
            ("flat", flat), ("padded", padded), ("argmax", argmax), ("sample", sample), ("row_sums", rowSums),
            ("slice_product", sliceProduct), ("reduced_copy", reducedCopy), ("reduced_in_place", reducedInPlace),
            ("max_rows", g.append(.reduceMax(a, axes: [0]))),
            ("sum_outer", g.reduceSum(b, axes: [0, 2])),
            ("sum_leading", g.reduceSum(g.mul(b, qWide), axes: [0, 1])),
            ("sum_middle", g.reduceSum(g.mul(b, qWide), axes: [1])),
            ("sum_inner", g.reduceSum(b, axes: [1, 2])),
            ("max_inner", g.append(.reduceMax(g.unary(.exp, b), axes: [2]))),
            ("total", g.sumAll(g.mul(b, b))),
            ("filled", g.constant(2.5, shape(2, 3))),
            ("broadcast", rWide),
        ]
        var inputStorage: [String: Storage] = [:]
        for input in g.inputs { inputStorage[input.name] = .io }
        var resultStorage: [String: Storage] = [:]
        for result in g.results { resultStorage[result.name] = .io }
        return Program(
            modelName: "test_elementwise", regenerateCommand: "swift test --filter MPLCodegenTests", state: [],
            entryPoints: [
                EntryPoint(
                    name: "mplc_elementwise", tableName: "elementwise", graph: g,
                    inputStorage: inputStorage, resultStorage: resultStorage)
            ],
            macros: [])
    }

    /// Uniform draws that sit in the middle of a cumulative-probability interval of each row of softmax(a),
    /// so that f32 and f64 pick the same class.
    static func safeUniform(_ a: [Float], rows: Int, classes: Int, seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        return (0..<rows).map { row in
            let logits = (0..<classes).map { Double(a[row * classes + $0]) }
            let exps = logits.map { Foundation.exp($0 - logits.max()!) }
            let total = exps.reduce(0, +)
            var cumulative = [0.0]
            for e in exps { cumulative.append(cumulative.last! + e / total) }
            let k = Int(random.next() % UInt64(classes))
            return Float((cumulative[k] + cumulative[k + 1]) / 2)
        }
    }

    /// State results that must not be written in place, and some that may:
    /// a swap (a' = old b, b' = old a), an update whose old value is read later (c), a GEMM reading the tensor
    /// it updates (e), an unchanged tensor (d), a plain in-place scale (f), a passthrough and a duplicated result,
    /// and an update (g) fused into the epilogue of the GEMM it depends on, written in place there.
    static var stateHazards: Program {
        var g = Graph()
        let m = g.input("m", shape(4, 4))
        let sa = g.input("a", shape(4, 4))
        let sb = g.input("b", shape(4, 4))
        let sc = g.input("c", shape(3, 5))
        let sd = g.input("d", shape(3, 5))
        let se = g.input("e", shape(4, 4))
        let sf = g.input("f", shape(6))
        let newC = g.add(sc, g.constant(1, shape(3, 5)))
        let total = g.sumAll(g.mul(sc, g.reshape(sd, shape(3, 5))))  // reads old c after c' is computed
        let newE = g.matmul(se, m)
        let newF = g.scale(sf, 2)
        let tanhM = g.unary(.tanh, m)
        let sg = g.input("g", shape(4, 4))
        let z = g.addBias(g.matmul(m, m, transposeB: true), g.input("bias", shape(4)))
        let newG = g.sub(sg, g.scale(z, 0.1))
        g.results = [
            ("a", sb), ("b", sa), ("c", newC), ("d", sd), ("e", newE), ("f", newF),
            ("total", total), ("passthrough", m), ("tanh1", tanhM), ("tanh2", tanhM), ("c_copy", newC),
            ("g", newG), ("z", z),
        ]
        var inputStorage: [String: Storage] = ["m": .io, "bias": .io]
        for name in ["a", "b", "c", "d", "e", "f", "g"] { inputStorage[name] = .state }
        var resultStorage: [String: Storage] = [:]
        for result in g.results { resultStorage[result.name] = inputStorage[result.name] == .state ? .state : .io }
        let state = ["a", "b", "c", "d", "e", "f", "g"].map {
            TensorInfo(name: $0, shape: g.shape(of: g.input(named: $0)!))
        }
        return Program(
            modelName: "test_state", regenerateCommand: "swift test --filter MPLCodegenTests", state: state,
            entryPoints: [
                EntryPoint(
                    name: "mplc_hazards", tableName: "hazards", graph: g,
                    inputStorage: inputStorage, resultStorage: resultStorage)
            ],
            macros: [])
    }

    /// Two convolutions over 5 images, for stream-convolutions with small chunks (`streamedOptions`: two
    /// images, then one, per chunk; the last chunk short): conv0 (K = 3·3·1 = 9, the plain-loop path) and conv1
    /// (K = 36, sgemm on each chunk), ∂W of both accumulated over chunks, ∂x of conv1 through a streamed col2im.
    static var streamedConvolutions: Program {
        let conv0 = WindowGeometry(batch: 5, height: 6, width: 6, channels: 1, kernel: 3, stride: 1, padding: 1)
        let conv1 = WindowGeometry(batch: 5, height: 6, width: 6, channels: 4, kernel: 3, stride: 1, padding: 1)
        var g = Graph()
        let x = g.input("x", conv0.inputShape)
        let cotangent = g.input("cotangent", shape(180, 3))
        let w0 = g.input("conv0/weight", shape(3, 3, 1, 4))
        let b0 = g.input("conv0/bias", shape(4))
        let w1 = g.input("conv1/weight", shape(3, 3, 4, 3))
        let columns0 = g.append(.im2col(x, conv0))
        let w0Matrix = g.reshape(w0, shape(9, 4))
        let pre0 = g.reshape(g.addBias(g.matmul(columns0, w0Matrix), b0), conv1.inputShape)
        let act0 = g.unary(.relu, pre0)
        let columns1 = g.append(.im2col(act0, conv1))
        let w1Matrix = g.reshape(w1, shape(36, 3))
        let out1 = g.matmul(columns1, w1Matrix)
        let dW1 = g.matmul(columns1, cotangent, transposeA: true)
        let dAct0 = g.append(.col2im(g.matmul(cotangent, w1Matrix, transposeB: true), conv1))
        let dPre0 = g.reshape(g.mul(dAct0, g.unary(.step, pre0)), shape(180, 4))
        let dW0 = g.matmul(columns0, dPre0, transposeA: true)
        g.results = [("out1", out1), ("d_w1", dW1), ("d_act0", dAct0), ("d_w0", dW0)]
        var inputStorage: [String: Storage] = ["x": .io, "cotangent": .io]
        for name in ["conv0/weight", "conv0/bias", "conv1/weight"] { inputStorage[name] = .state }
        var resultStorage: [String: Storage] = [:]
        for result in g.results { resultStorage[result.name] = .io }
        return Program(
            modelName: "test_streamed", regenerateCommand: "swift test --filter MPLCodegenTests",
            state: [
                TensorInfo(name: "conv0/weight", shape: shape(3, 3, 1, 4), fanIn: 9, isWeight: true),
                TensorInfo(name: "conv0/bias", shape: shape(4)),
                TensorInfo(name: "conv1/weight", shape: shape(3, 3, 4, 3), fanIn: 36, isWeight: true),
            ],
            entryPoints: [
                EntryPoint(
                    name: "mplc_streamed", tableName: "streamed", graph: g, inputStorage: inputStorage,
                    resultStorage: resultStorage)
            ],
            macros: [])
    }

    /// Chunks of two images for conv0 and one for conv1 of `streamedConvolutions`.
    static let streamedOptions = LoweringOptions(streamChunkFloats: 700)

    /// A 3×3 stride-1 pad-1 convolution from 8 to 9 channels over 3 images of 5×7 (odd sides: the last Winograd
    /// tiles hang over the edge), as winograd-convolutions runs it: the forward product with bias and ReLU in its
    /// epilogue, ∂x through col2im (the transposed convolution), and ∂W (the transpose in the filters), in chunks
    /// of two images then one (`winogradOptions`).
    static var winogradConvolution: Program {
        let conv = WindowGeometry(batch: 3, height: 5, width: 7, channels: 8, kernel: 3, stride: 1, padding: 1)
        var g = Graph()
        let x = g.input("x", conv.inputShape)
        let cotangent = g.input("cotangent", shape(105, 9))
        let w = g.input("conv/weight", shape(3, 3, 8, 9))
        let b = g.input("conv/bias", shape(9))
        let columns = g.append(.im2col(x, conv))
        let wMatrix = g.reshape(w, shape(72, 9))
        let out = g.unary(.relu, g.addBias(g.matmul(columns, wMatrix), b))
        let dW = g.matmul(columns, cotangent, transposeA: true)
        let dx = g.append(.col2im(g.matmul(cotangent, wMatrix, transposeB: true), conv))
        g.results = [("out", out), ("d_w", dW), ("d_x", dx)]
        var inputStorage: [String: Storage] = ["x": .io, "cotangent": .io]
        for name in ["conv/weight", "conv/bias"] { inputStorage[name] = .state }
        var resultStorage: [String: Storage] = [:]
        for result in g.results { resultStorage[result.name] = .io }
        return Program(
            modelName: "test_winograd", regenerateCommand: "swift test --filter MPLCodegenTests",
            state: [
                TensorInfo(name: "conv/weight", shape: shape(3, 3, 8, 9), fanIn: 72, isWeight: true),
                TensorInfo(name: "conv/bias", shape: shape(9)),
            ],
            entryPoints: [
                EntryPoint(
                    name: "mplc_winograd", tableName: "winograd", graph: g, inputStorage: inputStorage,
                    resultStorage: resultStorage)
            ],
            macros: [])
    }

    /// Chunks of two images, then one, for the convolutions of `winogradConvolution` (2·35·72 floats of columns).
    static let winogradOptions = LoweringOptions(streamChunkFloats: 5_100)

    /// A two-layer backward pass whose logits cotangent is pad_rows(top, 0) + pad_rows(bottom, 4) over 7 rows
    /// (rows 2 and 3 zero, as the weak-view rows of the MPL teacher): skip-zero-rows must run every GEMM of
    /// the backward pass on the 5 non-zero rows and still produce the same gradients.
    static var paddedCotangents: Program {
        var g = Graph()
        let x = g.input("x", shape(7, 5))
        let top = g.input("top", shape(2, 3))
        let bottom = g.input("bottom", shape(3, 3))
        let w1 = g.input("w1", shape(5, 6))
        let w2 = g.input("w2", shape(6, 3))
        let pre = g.matmul(x, w1)
        let h = g.unary(.relu, pre)
        let dz = g.add(
            g.append(.padRows(top, start: 0), shape: shape(7, 3)),
            g.append(.padRows(bottom, start: 4), shape: shape(7, 3)))
        let dh = g.mul(g.matmul(dz, w2, transposeB: true), g.unary(.step, pre))
        g.results = [
            ("d_w2", g.matmul(h, dz, transposeA: true)), ("d_w1", g.matmul(x, dh, transposeA: true)),
            ("d_bias", g.reduceSum(dh, axes: [0])), ("d_h", dh), ("logits", g.matmul(h, w2)),
        ]
        var inputStorage: [String: Storage] = [:]
        for input in g.inputs { inputStorage[input.name] = .io }
        var resultStorage: [String: Storage] = [:]
        for result in g.results { resultStorage[result.name] = .io }
        return Program(
            modelName: "test_padded", regenerateCommand: "swift test --filter MPLCodegenTests", state: [],
            entryPoints: [
                EntryPoint(
                    name: "mplc_padded", tableName: "padded", graph: g,
                    inputStorage: inputStorage, resultStorage: resultStorage)
            ],
            macros: [])
    }

    static var all: [Program] {
        [dense, convolution, elementwise, stateHazards, streamedConvolutions, winogradConvolution, paddedCotangents]
    }
}
