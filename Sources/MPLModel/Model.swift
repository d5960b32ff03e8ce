// The checked model: what a `.swiftdsl` file describes, with every setting resolved to a value.
// The front end produces it; the step builder consumes it. Plain data, no syntax.

/// Where something came from in a model file (1-based line and column).
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// The shape of one example, without the batch dimension. Images are stored channels-last (H, W, C)
/// everywhere in mplc, so that a convolution is one GEMM with no transposes.
public enum InputSpec: Equatable, Sendable {
    case image(channels: Int, height: Int, width: Int)
    case features(Int)

    public var featureShape: FeatureShape {
        switch self {
        case .image(let c, let h, let w): return .image(height: h, width: w, channels: c)
        case .features(let d): return .vector(d)
        }
    }
}

/// Shape of an activation without its batch dimension.
public enum FeatureShape: Equatable, Sendable, CustomStringConvertible {
    case image(height: Int, width: Int, channels: Int)
    case vector(Int)

    /// The element count. Shapes the front end accepts have at most `FeatureShape.maxElements`.
    public var count: Int { checkedCount ?? Int.max }

    /// The element count, or nil if it does not fit in an Int.
    public var checkedCount: Int? {
        switch self {
        case .image(let h, let w, let c): return checkedProduct([h, w, c])
        case .vector(let d): return d
        }
    }

    /// The most elements one tensor of one example may have (an activation, a weight tensor, the im2col
    /// windows of one image): 2^32. Batches are below 2^31 (labeledBatch and evalBatch at most 10^6,
    /// unlabeledRatio at most 1000), so every tensor of a step has fewer than 2^63 elements and the step
    /// builder's shape arithmetic cannot overflow; the compiler's resource check then bounds the rest.
    public static let maxElements = 1 << 32
    public var description: String {
        switch self {
        case .image(let h, let w, let c): return "\(c)×\(h)×\(w)"
        case .vector(let d): return "\(d)"
        }
    }
}

public indirect enum Layer: Equatable, Sendable {
    case dense(units: Int)
    case conv2D(filters: Int, kernel: Int, stride: Int, padding: Int)
    case maxPool2D(size: Int, stride: Int)
    case avgPool2D(size: Int, stride: Int)
    case globalAvgPool
    case flatten
    /// An element-wise function (Activation.swift).
    case activation(Activation)
    case dropout(rate: Double)
    /// Normalises each channel (the last axis) by its batch statistics in training and by running averages
    /// (updated as avg ← (1 − momentum)·avg + momentum·batch) in evaluation; then a learned scale and offset.
    case batchNorm(momentum: Double, epsilon: Double)
    /// body(x) + shortcut(x): the shortcut is x itself when the body keeps its shape, else a learned
    /// projection without bias (a strided 1×1 convolution for images, a matrix for vectors).
    case residual([Layer])

    /// The layer's kind, which names it in a model file.
    public var kind: Kind {
        switch self {
        case .dense: return .dense
        case .conv2D: return .conv2D
        case .maxPool2D: return .maxPool2D
        case .avgPool2D: return .avgPool2D
        case .globalAvgPool: return .globalAvgPool
        case .flatten: return .flatten
        case .activation(let activation): return .activation(activation.kind)
        case .dropout: return .dropout
        case .batchNorm: return .batchNorm
        case .residual: return .residual
        }
    }

    /// The layer's name as written in a model file.
    public var name: String { kind.name }

    /// The kinds of layer a model file may name, each with its name: the one list of layer names.
    public enum Kind: Hashable, Sendable, CaseIterable {
        case dense, conv2D, maxPool2D, avgPool2D, globalAvgPool, flatten
        case activation(Activation.Kind)
        case dropout, batchNorm, residual

        /// In the order the documentation and the diagnostics list them.
        public static var allCases: [Kind] {
            [.dense, .conv2D, .maxPool2D, .avgPool2D, .globalAvgPool, .flatten]
                + Activation.Kind.allCases.map { .activation($0) } + [.dropout, .batchNorm, .residual]
        }

        public var name: String {
            switch self {
            case .dense: return "Dense"
            case .conv2D: return "Conv2D"
            case .maxPool2D: return "MaxPool2D"
            case .avgPool2D: return "AvgPool2D"
            case .globalAvgPool: return "GlobalAvgPool"
            case .flatten: return "Flatten"
            case .activation(let activation): return activation.rawValue
            case .dropout: return "Dropout"
            case .batchNorm: return "BatchNorm"
            case .residual: return "Residual"
            }
        }

        /// The kind a model file names `name`, if any.
        public init?(name: String) {
            guard let kind = Kind.allCases.first(where: { $0.name == name }) else { return nil }
            self = kind
        }
    }

    /// The output shape for `input`, or a message saying why the layer does not fit: its input does not suit
    /// it, or its output, weights or windows would have more than `FeatureShape.maxElements` per example.
    public func outputShape(for input: FeatureShape) -> Result<FeatureShape, ShapeError> {
        unboundedOutputShape(for: input).flatMap { output in
            for (verb, factors, noun) in sizes(input: input, output: output) {
                guard let count = checkedProduct(factors), count <= FeatureShape.maxElements else {
                    let product = checkedProduct(factors).map(String.init) ?? "more than 2^63"
                    let size =
                        factors.count == 1
                        ? product : factors.map(String.init).joined(separator: " × ") + " = " + product
                    return .failure(
                        ShapeError(
                            "\(name) \(verb) \(size) \(noun), more than the \(FeatureShape.maxElements) (2^32) one tensor may "
                                + "hold; use smaller layers or inputs"))
                }
            }
            return .success(output)
        }
    }

    /// The per-example tensors of the layer, as factors of their element counts: its output, weights (for the
    /// shortcut of a Residual, its projection) and a convolution's windows.
    private func sizes(input: FeatureShape, output: FeatureShape) -> [(verb: String, factors: [Int], noun: String)] {
        func factors(_ shape: FeatureShape) -> [Int] {
            switch shape {
            case .image(let h, let w, let c): return [h, w, c]
            case .vector(let d): return [d]
            }
        }
        var list = [("gives", factors(output), "values per example")]
        switch (self, input, output) {
        case (.dense(let units), _, _):
            list.append(("has", factors(input) + [units], "weights"))
        case (.conv2D(let f, let k, _, _), .image(_, _, let c), .image(let oh, let ow, _)):
            list.append(("has", [k, k, c, f], "weights"))
            list.append(("reads", [oh, ow, k, k, c], "window values per image"))
        case (.residual, _, _):
            if case .success(let shortcut) = Residual.shortcut(from: input, to: output) {
                switch shortcut {
                case .identity: break
                case .convolution(_, let a, let b), .matrix(let a, let b):
                    list.append(("has", [a, b], "shortcut weights"))
                }
            }
        default:
            break
        }
        return list
    }

    private func unboundedOutputShape(for input: FeatureShape) -> Result<FeatureShape, ShapeError> {
        switch (self, input) {
        case (.dense(let units), .vector):
            return .success(.vector(units))
        case (.dense, .image):
            return .failure(
                ShapeError(
                    "Dense expects a vector but its input is an image \(input); add Flatten() or GlobalAvgPool() before it"
                ))
        case (.conv2D(let f, let k, let s, let p), .image(let h, let w, _)):
            let oh = (h + 2 * p - k) / s + 1
            let ow = (w + 2 * p - k) / s + 1
            guard h + 2 * p >= k, w + 2 * p >= k else {
                return .failure(
                    ShapeError("Conv2D kernel \(k)×\(k) is larger than its padded input \(h + 2 * p)×\(w + 2 * p)"))
            }
            return .success(.image(height: oh, width: ow, channels: f))
        case (.maxPool2D(let k, let s), .image(let h, let w, let c)),
            (.avgPool2D(let k, let s), .image(let h, let w, let c)):
            guard k <= h, k <= w else {
                return .failure(ShapeError("\(name) window \(k)×\(k) is larger than its input \(h)×\(w)"))
            }
            return .success(.image(height: (h - k) / s + 1, width: (w - k) / s + 1, channels: c))
        case (.globalAvgPool, .image(_, _, let c)):
            return .success(.vector(c))
        case (.conv2D, .vector), (.maxPool2D, .vector), (.avgPool2D, .vector), (.globalAvgPool, .vector):
            return .failure(ShapeError("\(name) expects an image but its input is a vector of \(input.count) features"))
        case (.flatten, _):
            return .success(.vector(input.count))
        case (.activation, _), (.dropout, _), (.batchNorm, _):
            return .success(input)
        case (.residual(let body), _):
            switch Network.shapes(of: body, input: input) {
            case .failure(let failure):
                return .failure(ShapeError("in Residual, \(failure.error.message)"))
            case .success(let shapes):
                let output = shapes.last ?? input
                return Residual.shortcut(from: input, to: output).map { _ in output }
            }
        }
    }
}

/// How a residual block's shortcut maps its input to the body's output shape.
public enum Residual {
    public enum Shortcut: Equatable, Sendable {
        case identity
        /// A 1×1 convolution with this stride, from `inChannels` to `outChannels`.
        case convolution(stride: Int, inChannels: Int, outChannels: Int)
        /// A matrix from `inFeatures` to `outFeatures`.
        case matrix(inFeatures: Int, outFeatures: Int)
    }

    public static func shortcut(from input: FeatureShape, to output: FeatureShape) -> Result<Shortcut, ShapeError> {
        if input == output { return .success(.identity) }
        switch (input, output) {
        case (.vector(let a), .vector(let b)):
            return .success(.matrix(inFeatures: a, outFeatures: b))
        case (.image(let h, let w, let c), .image(let oh, let ow, let oc)):
            // A 1×1 window with stride s gives (h − 1)/s + 1 rows: find the s that matches both sides.
            if let s = (1...max(h, w)).first(where: { (h - 1) / $0 + 1 == oh && (w - 1) / $0 + 1 == ow }) {
                return .success(.convolution(stride: s, inChannels: c, outChannels: oc))
            }
            return .failure(
                ShapeError(
                    "Residual body maps \(input) to \(output), which no strided 1×1 convolution shortcut can match"))
        default:
            return .failure(
                ShapeError(
                    "Residual body maps \(input) to \(output); the body must keep images as images and vectors as vectors"
                ))
        }
    }
}

/// The product of `factors`, or nil if it does not fit in an Int.
public func checkedProduct(_ factors: [Int]) -> Int? {
    var product = 1
    for factor in factors {
        let (next, overflow) = product.multipliedReportingOverflow(by: factor)
        if overflow { return nil }
        product = next
    }
    return product
}

public struct ShapeError: Error, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

public struct Network: Equatable, Sendable {
    public var name: String
    public var layers: [Layer]
    public init(name: String, layers: [Layer]) {
        self.name = name
        self.layers = layers
    }

    /// Output shapes after each layer, or the first shape error with its layer index.
    public func shapes(input: FeatureShape) -> Result<[FeatureShape], IndexedShapeError> {
        Network.shapes(of: layers, input: input)
    }

    static func shapes(of layers: [Layer], input: FeatureShape) -> Result<[FeatureShape], IndexedShapeError> {
        var shapes: [FeatureShape] = []
        var current = input
        for (index, layer) in layers.enumerated() {
            switch layer.outputShape(for: current) {
            case .success(let next):
                shapes.append(next)
                current = next
            case .failure(let error):
                return .failure(IndexedShapeError(layerIndex: index, error: error))
            }
        }
        return .success(shapes)
    }
}

public struct IndexedShapeError: Error, Equatable, Sendable {
    public var layerIndex: Int
    public var error: ShapeError
}

public enum PseudoLabels: Equatable, Sendable {
    case hardArgmax
    case hardSampled
    case soft(temperature: Double)
}

/// Which view of each unlabeled image the teacher labels for the student (MPL.md, step 4). The student learns
/// on the strong view either way, and with hard labels the feedback's REINFORCE term is the cross-entropy of the
/// same labels against the same teacher logits they came from.
public enum AugmentedView: String, Equatable, Sendable {
    /// The strong view, the image the student sees: MPL.md, the paper and its code.
    case strongView
    /// The weak view, as FixMatch labels: the student learns, on the image it sees heavily augmented, what the
    /// teacher says of the lightly augmented one. Needs a teacher that reads images (Reduced MPL's has no weak
    /// view).
    case weakView
}

/// The teacher's feedback from the student (MPL.md, step 8). With soft pseudo labels the compiled step descends the
/// exact meta-gradient whichever of `dotProduct` and `lossDifference` is set; `off` holds with any pseudo labels.
public enum Feedback: Equatable, Sendable {
    /// The teacher only distills into the student: the step is compiled as with `dotProduct` (so h and its
    /// diagnostics are still logged, and the runner's `--feedback dot` can switch it on), but the runner's default
    /// feedback scale is 0.
    case off
    /// h = η_eff·⟨g_l, g_u⟩ (MPL.md's default for hard labels).
    case dotProduct
    /// h = L_l(θ_S) − L_l(θ'_S), old minus new.
    case lossDifference
}

/// What the teacher learns from besides the feedback (the paper's ablation, Table 5). A runtime choice of the
/// runner (docs/RUNNER.md): the step is the same; `supervised` and `randAugment` set the UDA weight to 0, and
/// `randAugment` gives the labeled rows of the batch the strong augmentation instead of the weak one.
public enum TeacherObjective: String, Equatable, Sendable {
    /// Label-smoothed cross-entropy on the weakly augmented labeled images.
    case supervised
    /// The same on strongly augmented (RandAugment + Cutout) labeled images.
    case randAugment
    /// Supervised plus λ(t)·UDA consistency loss (MPL.md, step 3).
    case uda
}

/// What the teacher reads.
public enum TeacherInput: Equatable, Sendable {
    /// The images, like the student (MPL).
    case image
    /// Reduced MPL: the class distribution a large teacher predicted for each image, cached once in a file;
    /// the teacher is then a small network from `classes` features to `classes` logits.
    case cachedPredictions
}

public enum Initialization: Equatable, Sendable {
    /// He-uniform for weights (bound √(6/fan_in)), zero biases.
    case heUniform
    /// U(−a, a) for every parameter, the paper's two-moons toy.
    case uniform(Double)
}

/// An optimiser: a learning-rate schedule (the runner's, the same for every rule) and an update rule.
public struct Optimizer: Equatable, Sendable {
    public var learningRate: Double = 0.05
    public var warmupSteps: Int = 5000
    /// Cosine decay from the peak to zero at the end of training, after warm-up.
    public var cosineDecay: Bool = true
    public var rule: UpdateRule = .sgd(SGD())
    public init() {}

    /// The optimiser a model file's `SGD()`, `Adam()` or `AdamW()` means before its arguments; nil for other names.
    public static func defaults(named name: String) -> Optimizer? {
        var optimizer = Optimizer()
        switch name {
        case "SGD": return optimizer
        case "Adam", "AdamW":
            var adam = Adam()
            if name == "AdamW" { (adam.decoupled, adam.weightDecay) = (true, 0.01) }
            optimizer.learningRate = 1e-3
            optimizer.rule = .adam(adam)
            return optimizer
        default: return nil
        }
    }

    /// The name a model file writes it with.
    public var name: String {
        switch rule {
        case .sgd: return "SGD"
        case .adam(let adam): return adam.decoupled ? "AdamW" : "Adam"
        }
    }
}

/// How an optimiser turns gradients into a step; MPLStep's Optimizers.swift builds each as graph equations.
public enum UpdateRule: Equatable, Sendable {
    case sgd(SGD)
    case adam(Adam)
}

/// SGD with heavy-ball or Nesterov momentum and L2 weight decay on weights (docs/STEP.md, step 6).
public struct SGD: Equatable, Sendable {
    public var momentum: Double = 0.9
    public var nesterov: Bool = true
    public var weightDecay: Double = 5e-4
    public init() {}
}

/// Adam (Kingma & Ba) with bias correction; AdamW when the weight decay is decoupled (Loshchilov & Hutter).
public struct Adam: Equatable, Sendable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    /// On weights only. Adam adds weightDecay·θ to the gradient (L2); AdamW subtracts lr·weightDecay·θ from θ.
    public var weightDecay: Double = 0
    public var decoupled: Bool = false
    public init() {}
}

public struct UDASettings: Equatable, Sendable {
    public var temperature: Double = 0.7
    public var threshold: Double = 0.6
    public var weight: Double = 8
    public var rampSteps: Int = 5000
    public init() {}
}

public struct Finetune: Equatable, Sendable {
    public var steps: Int = 1000
    public var learningRate: Double = 1e-5
    public var batch: Int = 512
    public var momentum: Double = 0.9
    public init() {}
}

/// Every setting of MPL.md's recipe. The defaults are the paper's CIFAR-10-4K values (MPL.md, last section).
public struct Recipe: Equatable, Sendable {
    public var labeledBatch: Int = 128
    public var unlabeledRatio: Int = 7
    public var pseudoLabels: PseudoLabels = .hardArgmax
    public var pseudoLabelsFrom: AugmentedView = .strongView
    public var feedback: Feedback = .dotProduct
    public var teacherObjective: TeacherObjective = .uda
    /// Log the norms of the teacher's gradient parts (supervised, UDA, feedback) as step outputs. Each part is then
    /// its own VJP through the teacher: one more teacher backward pass over the strong-view rows (+28 % CPU per
    /// fashion_cnn step), so it is a diagnostic to switch on, not a default.
    public var teacherGradientParts: Bool = false
    public var uda = UDASettings()
    public var labelSmoothing: Double = 0.15
    public var teacherOptimizer = Optimizer()
    public var studentOptimizer = Optimizer()
    public var studentWaitSteps: Int = 3000
    public var steps: Int = 300_000
    public var finetune = Finetune()
    public var emaDecay: Double = 0.995
    public var teacherInput: TeacherInput = .image
    public var initialization: Initialization = .heUniform
    public var evalBatch: Int = 500
    public var seed: Int = 0
    public init() {}

    public var unlabeledBatch: Int { labeledBatch * unlabeledRatio }
}

extension Feedback {
    /// The name the runner and `--feedback` use (MPLC_FEEDBACK in model.h).
    public var commandName: String {
        switch self {
        case .off: return "off"
        case .dotProduct: return "dot-product"
        case .lossDifference: return "loss-difference"
        }
    }
}

extension TeacherObjective {
    /// The name the runner and `--teacher-objective` use (MPLC_TEACHER_OBJECTIVE in model.h).
    public var commandName: String { self == .randAugment ? "randaugment" : rawValue }
}

/// A checked model file: input, classes, two networks and the recipe.
public struct Model: Equatable, Sendable {
    /// The file's base name without extension; names the generated directory and C symbols' prefix.
    public var name: String
    public var input: InputSpec
    public var classes: Int
    public var teacher: Network
    public var student: Network
    public var recipe: Recipe

    public init(name: String, input: InputSpec, classes: Int, teacher: Network, student: Network, recipe: Recipe) {
        self.name = name
        self.input = input
        self.classes = classes
        self.teacher = teacher
        self.student = student
        self.recipe = recipe
    }
}
