// The activation layers, each defined once: its name in a model file, its optional argument, and the names the
// JAX reference (Tests/reference/mpl_jax.py) and the ONNX export (Templates/onnx_export.py) know it by. Its
// equations are built in MPLStep/Networks.swift (`activate`), its op is defined in MPLIR/ElementwiseOps.swift.
// Every switch is exhaustive, so an activation left out of one does not compile.

/// An element-wise function applied by a layer; keeps its input's shape and has no weights.
public enum Activation: Equatable, Sendable {
    case relu
    /// max(x, αx).
    case leakyReLU(alpha: Double)
    case tanh
    case sigmoid
    /// x·Φ(x) with Φ the standard normal distribution function: the exact (erf) form, PyTorch's default.
    case gelu

    /// The activations by the name a model file gives them, in the order the documentation lists them.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case relu = "ReLU"
        case leakyReLU = "LeakyReLU"
        case tanh = "Tanh"
        case sigmoid = "Sigmoid"
        case gelu = "GELU"

        /// The one optional number the activation takes, with its label and default; it lies in (0, 1).
        public var argument: (label: String, defaultValue: Double)? {
            switch self {
            case .leakyReLU: return ("alpha", 0.2)
            case .relu, .tanh, .sigmoid, .gelu: return nil
            }
        }

        /// The activation with its argument (nil for one that takes none).
        public func activation(_ argument: Double?) -> Activation {
            switch self {
            case .relu: return .relu
            case .leakyReLU: return .leakyReLU(alpha: argument ?? self.argument!.defaultValue)
            case .tanh: return .tanh
            case .sigmoid: return .sigmoid
            case .gelu: return .gelu
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .relu: return .relu
        case .leakyReLU: return .leakyReLU
        case .tanh: return .tanh
        case .sigmoid: return .sigmoid
        case .gelu: return .gelu
        }
    }

    /// The value of the activation's argument, if it takes one.
    public var argument: Double? {
        switch self {
        case .leakyReLU(let alpha): return alpha
        case .relu, .tanh, .sigmoid, .gelu: return nil
        }
    }

    /// Its `layer` in the JAX reference's model.json: the model-file name in lower case.
    public var referenceName: String { kind.rawValue.lowercased() }

    /// Its `op` in the ONNX export's layer list.
    public var exportName: String {
        switch self {
        case .relu: return "relu"
        case .leakyReLU: return "leaky_relu"
        case .tanh: return "tanh"
        case .sigmoid: return "sigmoid"
        case .gelu: return "gelu"
        }
    }
}
