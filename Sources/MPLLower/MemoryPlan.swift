// plan-memory: gives every value that lives in memory a location. Inputs live where their storage says;
// results are written straight into their destination when that is safe; everything else goes to the
// scratch arena, where values whose live ranges do not overlap share memory.
//
// State results are the delicate part. Writing θ' over θ is only correct if no one reads the old θ
// afterwards: the kernel that writes θ' may read θ itself only at the element it is writing (an
// element-wise loop loads before it stores), and no later kernel or final copy may read θ at all.
// Otherwise θ' is computed into scratch and copied over θ when the entry point has finished.

import MPLIR

public struct ScratchBuffer: Hashable, Sendable {
    /// The value the buffer holds, or nil for a staging copy of an old state tensor or a kernel's temporary.
    public var value: Value?
    /// The kernel whose temporary this is (e.g. a chunk of im2col columns), if it is one.
    public var temporaryOf: Int? = nil
    public var label: String
    public var offset: Int
    /// Aligned size, in floats.
    public var floats: Int
    /// Live from the start of kernel `firstKernel` to the end of kernel `lastKernel` (inclusive);
    /// `kernels.count` stands for the copies after the last kernel.
    public var firstKernel: Int
    public var lastKernel: Int

    public func overlapsInTime(_ other: ScratchBuffer) -> Bool {
        firstKernel <= other.lastKernel && other.firstKernel <= lastKernel
    }
    public func overlapsInMemory(_ other: ScratchBuffer) -> Bool {
        offset < other.offset + other.floats && other.offset < offset + floats
    }
}

/// `floats` floats from `source` to `destination`, after the last kernel.
public struct Copy: Hashable, Sendable {
    public var source: Location
    public var destination: Location
    public var floats: Int
    /// The result it delivers (or stages).
    public var resultName: String
}

public struct MemoryPlan: Hashable, Sendable {
    /// By value id; nil for values that never touch memory (fused scalars, constants).
    public var locations: [Location?] = []
    public var scratchBuffers: [ScratchBuffer] = []
    /// By kernel index: where the kernel's temporary lives (nil for kernels without one).
    public var temporaries: [Location?] = []
    /// First after the last kernel: old state tensors that a result needs, saved before anything overwrites them.
    public var stagingCopies: [Copy] = []
    /// Then: results that could not be written in place.
    public var finalCopies: [Copy] = []
    public var scratchFloats = 0
    /// The scratch arena without reuse: the sum of all scratch buffers.
    public var naiveScratchFloats = 0
    /// State results whose kernel writes the state tensor directly.
    public var inPlaceStateResults: [String] = []

    public func location(of value: Value) -> Location? { locations[value.id] }

    /// Floats of scratch live while each kernel runs (index `kernels.count`: the copies after the last kernel).
    /// Their largest is the least any arena could be; `scratchFloats` exceeds it by what best fit leaves unused.
    public func liveFloatsByKernel(kernelCount: Int) -> [Int] {
        var change = [Int](repeating: 0, count: kernelCount + 2)
        for buffer in scratchBuffers {
            change[buffer.firstKernel] += buffer.floats
            change[buffer.lastKernel + 1] -= buffer.floats
        }
        var live = 0
        return (0...kernelCount).map { index in
            live += change[index]
            return live
        }
    }

    /// The buffers live while kernel `kernel` runs, largest first.
    public func buffersLive(atKernel kernel: Int) -> [ScratchBuffer] {
        scratchBuffers.filter { $0.firstKernel <= kernel && kernel <= $0.lastKernel }.sorted {
            ($0.floats, -$0.firstKernel) > ($1.floats, -$1.firstKernel)
        }
    }
}

@Sendable func planMemory(_ function: LoweredFunction, _ options: LoweringOptions) -> LoweredFunction {
    var planner = MemoryPlanner(function)
    planner.placeResults()
    planner.allocateScratch(reuse: options.reuseScratch)
    var next = function
    next.plan = planner.finish()
    return next
}

private struct Read {
    var kernel: Int
    /// Only at the element the kernel writes, before writing it.
    var pointwise: Bool
}

private struct PendingCopy {
    var resultName: String
    var value: Value
    var destination: Location
}

private struct MemoryPlanner {
    let graph: Graph
    let kernels: [Kernel]
    let bindings: Bindings
    /// Index of the pseudo-kernel "after the last kernel", where final copies read.
    let end: Int
    let roots: [(root: Value, offset: Int)]
    /// Kernel that writes each value to memory.
    var producer: [Int?]
    /// Reads of each root value (views included), in kernel order.
    var reads: [[Read]]
    var home: [Location?]
    var pendingCopies: [PendingCopy] = []
    /// All-reduce outputs that sum in place in their operand's scratch buffer, by output id: the operand.
    var summedInPlace: [Int: Value] = [:]
    var plan = MemoryPlan()

    init(_ function: LoweredFunction) {
        graph = function.graph
        kernels = function.kernels
        bindings = function.bindings
        end = kernels.count
        roots = graph.values.map { memoryRoot(of: $0, in: function.graph) }
        let count = graph.equations.count
        producer = Array(repeating: nil, count: count)
        reads = Array(repeating: [], count: count)
        home = Array(repeating: nil, count: count)
        for (index, kernel) in kernels.enumerated() {
            for output in kernel.outputs { producer[output.id] = index }
            for value in kernel.reads {
                let (root, offset) = roots[value.id]
                reads[root.id].append(Read(kernel: index, pointwise: offset == 0 && kernel.readsOnlyPointwise(value)))
            }
        }
    }

    /// A state result that is the unchanged input of the same tensor: nothing to do.
    private func isUnchangedState(_ name: String, _ value: Value) -> Bool {
        bindings.resultStorage[name] == .state && bindings.inputStorage[name] == .state
            && graph.op(of: value) == .input(name)
    }

    private func stateInput(named name: String) -> Value? {
        bindings.inputStorage[name] == .state ? graph.input(named: name) : nil
    }

    /// Decides, result by result, whether its kernel writes it where it belongs or it is copied there at the end.
    mutating func placeResults() {
        // Results that are (views of) inputs are copied after the last kernel, so those inputs are read then.
        for result in graph.results where !isUnchangedState(result.name, result.value) {
            let root = roots[result.value.id].root
            if case .input = graph.op(of: root) { reads[root.id].append(Read(kernel: end, pointwise: false)) }
        }
        for result in graph.results where !isUnchangedState(result.name, result.value) {
            let destination = bindings.destination(ofResult: result.name)
            let stored = storedValue(holding: result.value)
            if let stored, let kernel = producer[stored.id], home[stored.id] == nil,
                canWrite(result.name, stored, at: kernel)
            {
                home[stored.id] = destination
                if bindings.resultStorage[result.name] == .state { plan.inPlaceStateResults.append(result.name) }
            } else {
                pendingCopies.append(
                    PendingCopy(resultName: result.name, value: result.value, destination: destination))
                reads[roots[result.value.id].root.id].append(Read(kernel: end, pointwise: false))
            }
        }
    }

    /// The kernel output whose memory is exactly `value`: the value, or what a whole-tensor view (a reshape) shows.
    private func storedValue(holding value: Value) -> Value? {
        let (root, offset) = roots[value.id]
        guard offset == 0, graph.shape(of: root).count == graph.shape(of: value).count, producer[root.id] != nil else {
            return nil
        }
        return root
    }

    /// Whether kernel `kernel`, which computes `value`, may write result `name` straight into its destination.
    private func canWrite(_ name: String, _ value: Value, at kernel: Int) -> Bool {
        switch bindings.resultStorage[name]! {
        case .io, .argument:
            return true  // a result's own slot: nothing else lives there
        case .state:
            guard let old = stateInput(named: name) else { return true }
            // sgemm writes its output before the epilogue reads anything: no read of the old tensor survives that.
            let writesBeforeReading: Bool = {
                if case .gemm(let g) = kernels[kernel].body { return g.output == value }
                return false
            }()
            return reads[old.id].allSatisfy {
                $0.kernel < kernel || ($0.kernel == kernel && $0.pointwise && !writesBeforeReading)
            }
        }
    }

    /// Every stored value without a destination gets a scratch buffer live from its kernel to its last read.
    mutating func allocateScratch(reuse: Bool) {
        placeAllReducesInPlace()
        for (index, kernel) in kernels.enumerated() {
            for output in kernel.outputs where home[output.id] == nil && summedInPlace[output.id] == nil {
                // The buffer lives on as the all-reduce outputs summed in it (a chain, in general) are read.
                var lastRead = reads[output.id].map(\.kernel).max() ?? index
                var holder = output
                while let summed = summedInPlace.first(where: { $0.value == holder })?.key {
                    lastRead = max(lastRead, reads[summed].map(\.kernel).max() ?? lastRead)
                    holder = Value(summed)
                }
                plan.scratchBuffers.append(
                    ScratchBuffer(
                        value: output, label: "\(output)", offset: 0,
                        floats: alignedFloats(graph.shape(of: output).count),
                        firstKernel: index, lastKernel: max(lastRead, index)))
            }
        }
        for (index, kernel) in kernels.enumerated() where kernel.temporaryFloats > 0 {
            var buffer = ScratchBuffer(
                value: nil, label: "temporary of kernel \(index)", offset: 0,
                floats: alignedFloats(kernel.temporaryFloats), firstKernel: index, lastKernel: index)
            buffer.temporaryOf = index
            plan.scratchBuffers.append(buffer)
        }
        // An old state tensor that a result copies must be saved before the final copies overwrite state.
        for copy in pendingCopies where isOldState(roots[copy.value.id].root) {
            plan.scratchBuffers.append(
                ScratchBuffer(
                    value: nil, label: "old state for \(copy.resultName)", offset: 0,
                    floats: alignedFloats(graph.shape(of: copy.value).count),
                    firstKernel: end, lastKernel: end))
        }
        plan.naiveScratchFloats = plan.scratchBuffers.map(\.floats).reduce(0, +)
        plan.scratchFloats =
            reuse ? assignOffsetsBestFit(&plan.scratchBuffers) : assignOffsetsOneAfterAnother(&plan.scratchBuffers)
    }

    /// An all-reduce whose operand is (a whole view of) a scratch value that nothing reads after it sums that
    /// buffer in place instead of copying it first (the kernel copies only when the two buffers differ).
    private mutating func placeAllReducesInPlace() {
        for (index, kernel) in kernels.enumerated() {
            guard case .allReduceSum(let operand, let output) = kernel.body, home[output.id] == nil,
                let stored = storedValue(holding: operand), home[stored.id] == nil,
                reads[stored.id].allSatisfy({ $0.kernel <= index })
            else { continue }
            summedInPlace[output.id] = stored
        }
    }

    private func isOldState(_ value: Value) -> Bool {
        if case .input(let name) = graph.op(of: value) { return bindings.inputStorage[name] == .state }
        return false
    }

    mutating func finish() -> MemoryPlan {
        var locations = [Location?](repeating: nil, count: graph.equations.count)
        for buffer in plan.scratchBuffers {
            if let value = buffer.value { locations[value.id] = Location(.scratch, buffer.offset) }
        }
        for value in graph.values {
            if let destination = home[value.id] { locations[value.id] = destination }
            if let operand = summedInPlace[value.id] { locations[value.id] = locations[operand.id] }
            switch graph.op(of: value).family {
            case .input(let name):
                locations[value.id] = bindings.location(ofInput: name)
            case .view:
                let (root, offset) = roots[value.id]
                locations[value.id] = locations[root.id]?.advanced(by: offset)
            case .fill, .elementwise, .broadcast, .reduction, .structured:
                break
            }
        }
        // A product with an epilogue lives in the epilogue's output buffer; views of it do not exist (single use).
        for kernel in kernels {
            if case .gemm(let gemm) = kernel.body { locations[gemm.product.id] = locations[gemm.output.id] }
        }

        plan.temporaries = Array(repeating: nil, count: kernels.count)
        for buffer in plan.scratchBuffers {
            if let kernel = buffer.temporaryOf { plan.temporaries[kernel] = Location(.scratch, buffer.offset) }
        }
        let staging = plan.scratchBuffers.filter { $0.value == nil && $0.temporaryOf == nil }
        var stagingIndex = 0
        for copy in pendingCopies {
            let (root, offset) = roots[copy.value.id]
            guard var source = locations[root.id]?.advanced(by: offset) else {
                preconditionFailure("result \(copy.resultName) = \(copy.value) has no memory to copy from")
            }
            let floats = graph.shape(of: copy.value).count
            if isOldState(root) {
                let saved = Location(.scratch, staging[stagingIndex].offset)
                stagingIndex += 1
                plan.stagingCopies.append(
                    Copy(source: source, destination: saved, floats: floats, resultName: copy.resultName))
                source = saved
            }
            plan.finalCopies.append(
                Copy(source: source, destination: copy.destination, floats: floats, resultName: copy.resultName))
        }
        plan.locations = locations
        return plan
    }
}

/// Greedy by size, best fit: the largest buffers are placed first, each in the smallest gap between the
/// buffers already placed that are live at the same time (or after the last of them). Returns the arena size.
func assignOffsetsBestFit(_ buffers: inout [ScratchBuffer]) -> Int {
    let order = buffers.indices.sorted {
        (buffers[$0].floats, -buffers[$0].firstKernel, -$0) > (buffers[$1].floats, -buffers[$1].firstKernel, -$1)
    }
    var placed: [Int] = []
    for index in order {
        let neighbours = placed.filter { buffers[$0].overlapsInTime(buffers[index]) }.sorted {
            (buffers[$0].offset, $0) < (buffers[$1].offset, $1)
        }
        var candidate = 0
        var best: (offset: Int, gap: Int)?
        for neighbour in neighbours {
            let gap = buffers[neighbour].offset - candidate
            if gap >= buffers[index].floats && gap < (best?.gap ?? Int.max) { best = (candidate, gap) }
            candidate = max(candidate, buffers[neighbour].offset + buffers[neighbour].floats)
        }
        buffers[index].offset = best?.offset ?? candidate
        placed.append(index)
    }
    return buffers.map { $0.offset + $0.floats }.max() ?? 0
}

/// No reuse: every buffer after the previous one.
func assignOffsetsOneAfterAnother(_ buffers: inout [ScratchBuffer]) -> Int {
    var offset = 0
    for index in buffers.indices {
        buffers[index].offset = offset
        offset += buffers[index].floats
    }
    return offset
}
