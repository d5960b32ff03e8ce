// Where an entry point's inputs come from and its results go: the state arena, its own I/O arena, or a
// pointer argument. These layouts are the generated header's symbol tables.

import MPLIR

/// Every buffer starts on a 64-byte boundary (16 floats), so vector loads of a buffer's start are aligned.
public let arenaAlignment = 16

func alignedFloats(_ count: Int) -> Int { (count + arenaAlignment - 1) / arenaAlignment * arenaAlignment }

/// A memory region the generated code addresses.
public enum Arena: Hashable, Sendable {
    case state
    /// The entry point's I/O arena.
    case io
    case scratch
    /// A separate pointer argument of the C function, by tensor name.
    case argument(String)
}

/// A float offset into an arena.
public struct Location: Hashable, Sendable {
    public var arena: Arena
    public var offset: Int
    public init(_ arena: Arena, _ offset: Int) {
        self.arena = arena
        self.offset = offset
    }
    func advanced(by floats: Int) -> Location { Location(arena, offset + floats) }
}

/// One row of a symbol table.
public struct ArenaTensor: Hashable, Sendable {
    public var info: TensorInfo
    /// In floats, from the start of the arena.
    public var offset: Int
    public var name: String { info.name }
    public var shape: Shape { info.shape }
    public var count: Int { info.shape.count }
}

/// Tensors laid out one after the other, each aligned.
public struct ArenaLayout: Hashable, Sendable {
    public var tensors: [ArenaTensor] = []
    public var floats = 0

    public init(_ infos: [TensorInfo] = []) {
        for info in infos { append(info) }
    }

    mutating func append(_ info: TensorInfo) {
        tensors.append(ArenaTensor(info: info, offset: floats))
        floats += alignedFloats(info.shape.count)
    }

    public func tensor(named name: String) -> ArenaTensor? { tensors.first { $0.name == name } }
}

func layOutState(_ state: [TensorInfo]) -> ArenaLayout { ArenaLayout(state) }

/// A tensor passed as its own pointer argument.
public struct ArgumentTensor: Hashable, Sendable {
    public var name: String
    public var shape: Shape
}

public struct Bindings: Sendable {
    public var state: ArenaLayout
    /// The I/O arena: `.io` inputs in graph order, then `.io` results in result order.
    public var ioInputs: [ArenaTensor] = []
    public var ioOutputs: [ArenaTensor] = []
    public var ioFloats = 0
    /// Pointer arguments: inputs in graph order, then results in result order.
    public var argumentInputs: [ArgumentTensor] = []
    public var argumentOutputs: [ArgumentTensor] = []
    /// Names of the state tensors read and written, in graph order.
    public var stateInputs: [String] = []
    public var stateResults: [String] = []
    public var inputStorage: [String: Storage]
    public var resultStorage: [String: Storage]

    /// Whether the C function takes the state pointer, and whether it writes through it.
    public var usesState: Bool { !stateInputs.isEmpty || !stateResults.isEmpty }
    public var writesState: Bool { !stateResults.isEmpty }
    public var usesIO: Bool { !ioInputs.isEmpty || !ioOutputs.isEmpty }
    public var writesIO: Bool { !ioOutputs.isEmpty }

    /// The layout comes from the entry point's original graph, so dead inputs keep their slots.
    init(entry: EntryPoint, state: ArenaLayout) {
        self.state = state
        inputStorage = entry.inputStorage
        resultStorage = entry.resultStorage
        var io = ArenaLayout()
        for input in entry.graph.inputs {
            let shape = entry.graph.shape(of: input.value)
            switch Self.storage(entry.inputStorage, input.name, "input", entry.name) {
            case .state:
                precondition(
                    state.tensor(named: input.name)?.shape == shape,
                    "\(entry.name): state input \(input.name) \(shape) is not a state tensor of that shape")
                stateInputs.append(input.name)
            case .io: io.append(Self.info(input.name, shape, entry.ioInfo))
            case .argument: argumentInputs.append(ArgumentTensor(name: input.name, shape: shape))
            }
        }
        ioInputs = io.tensors
        for result in entry.graph.results {
            let shape = entry.graph.shape(of: result.value)
            switch Self.storage(entry.resultStorage, result.name, "result", entry.name) {
            case .state:
                precondition(
                    state.tensor(named: result.name)?.shape.count == shape.count,
                    "\(entry.name): state result \(result.name) \(shape) does not fit a state tensor")
                stateResults.append(result.name)
            case .io: io.append(Self.info(result.name, shape, entry.ioInfo))
            case .argument: argumentOutputs.append(ArgumentTensor(name: result.name, shape: shape))
            }
        }
        ioOutputs = Array(io.tensors.dropFirst(ioInputs.count))
        ioFloats = io.floats
    }

    private static func storage(_ table: [String: Storage], _ name: String, _ kind: String, _ entry: String) -> Storage
    {
        guard let storage = table[name] else { preconditionFailure("\(entry): \(kind) \(name) has no storage") }
        return storage
    }

    private static func info(_ name: String, _ shape: Shape, _ ioInfo: [String: TensorInfo]) -> TensorInfo {
        var info = ioInfo[name] ?? TensorInfo(name: name, shape: shape)
        info.name = name
        info.shape = shape
        return info
    }

    /// Where the input called `name` lives.
    func location(ofInput name: String) -> Location {
        switch inputStorage[name]! {
        case .state: return Location(.state, state.tensor(named: name)!.offset)
        case .io: return Location(.io, ioInputs.first { $0.name == name }!.offset)
        case .argument: return Location(.argument(name), 0)
        }
    }

    /// Where the result called `name` must end up.
    func destination(ofResult name: String) -> Location {
        switch resultStorage[name]! {
        case .state: return Location(.state, state.tensor(named: name)!.offset)
        case .io: return Location(.io, ioOutputs.first { $0.name == name }!.offset)
        case .argument: return Location(.argument(name), 0)
        }
    }
}
