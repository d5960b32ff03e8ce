// What the step builder hands to lowering: entry points (graphs with bound inputs and results),
// the persistent state's symbol table, and model facts that the generated header exports as macros.

/// Where an entry point's input comes from or its result goes.
public enum Storage: Hashable, Sendable {
    /// A tensor of the persistent state arena (parameters, optimiser state). A result bound to `.state`
    /// overwrites the state tensor of the same name when the entry point returns.
    case state
    /// The entry point's I/O arena (batch data, scalars, losses), described by a symbol table.
    case io
    /// A separate pointer argument of the C function (inputs first, then results, in graph order).
    case argument
}

/// One entry in a symbol table of the generated header.
public struct TensorInfo: Hashable, Sendable {
    public var name: String
    public var shape: Shape
    /// Inputs per output unit for weights (He initialisation); 0 otherwise.
    public var fanIn: Int
    /// Weights get weight decay and He initialisation; biases and everything else do not.
    public var isWeight: Bool
    /// For dropout-mask inputs: the drop rate, so the runner can draw masks; 0 otherwise.
    public var dropoutRate: Double

    public init(name: String, shape: Shape, fanIn: Int = 0, isWeight: Bool = false, dropoutRate: Double = 0) {
        self.name = name
        self.shape = shape
        self.fanIn = fanIn
        self.isWeight = isWeight
        self.dropoutRate = dropoutRate
    }
}

public struct EntryPoint: Sendable {
    /// The C function's name, e.g. `mplc_step`.
    public var name: String
    /// What the entry point's symbol tables are called in the header, e.g. `step` gives `mplc_step_inputs`.
    public var tableName: String
    public var graph: Graph
    public var inputStorage: [String: Storage]
    public var resultStorage: [String: Storage]
    /// Extra facts about I/O tensors (dropout rates), by name.
    public var ioInfo: [String: TensorInfo]

    public init(
        name: String, tableName: String, graph: Graph, inputStorage: [String: Storage],
        resultStorage: [String: Storage], ioInfo: [String: TensorInfo] = [:]
    ) {
        self.name = name
        self.tableName = tableName
        self.graph = graph
        self.inputStorage = inputStorage
        self.resultStorage = resultStorage
        self.ioInfo = ioInfo
    }
}

public struct Program: Sendable {
    public var modelName: String
    /// How to regenerate the output, written at the top of every generated file.
    public var regenerateCommand: String
    /// The persistent state, in arena order.
    public var state: [TensorInfo]
    public var entryPoints: [EntryPoint]
    /// `#define` lines of the header, in order.
    public var macros: [(name: String, value: MacroValue)]

    public init(
        modelName: String, regenerateCommand: String, state: [TensorInfo], entryPoints: [EntryPoint],
        macros: [(name: String, value: MacroValue)]
    ) {
        self.modelName = modelName
        self.regenerateCommand = regenerateCommand
        self.state = state
        self.entryPoints = entryPoints
        self.macros = macros
    }
}

/// The value of a header `#define`. Strings are kept as text and escaped by the C emitter, so no name from a
/// model file reaches C source as code; numbers are checked by the emitter to be plain C numbers.
public enum MacroValue: Sendable, Equatable {
    /// A C integer or floating literal, as written (`32`, `0.05`, `1e-05`).
    case number(String)
    /// A C string, unescaped.
    case string(String)

    /// The value as plain text, without quotes (the `key=value` pairs of MPLC_RECIPE).
    public var text: String {
        switch self {
        case .number(let text), .string(let text): return text
        }
    }
}
