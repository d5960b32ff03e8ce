// One `static void` C function per kernel, and the entry point that calls them in order.
// Naming in the generated code: tN is the buffer of IR value %N, vN its element inside a loop,
// in_NAME the input called NAME; loops run i0, i1, ... over the dims, or one flat i.

import MPLIR
import MPLLower

/// A pointer parameter of a kernel function: one per distinct memory location it touches.
struct KernelParameter {
    var name: String
    var location: Location
    var isWritten: Bool
    /// Read and written: an update in place, element by element.
    var isUpdatedInPlace: Bool
}

struct FunctionWriter {
    let function: LoweredFunction
    /// The entry point is `static` (an exported library's forward pass, called only by its own functions).
    var isStatic = false
    var graph: Graph { function.graph }
    var plan: MemoryPlan { function.plan }

    // MARK: Entry point

    /// The C parameters of the entry point, in ABI order: state, io, argument inputs, argument results, scratch.
    var entryParameters: [(name: String, type: String, arena: Arena)] {
        let bindings = function.bindings
        var parameters: [(name: String, type: String, arena: Arena)] = []
        if bindings.usesState {
            parameters.append(("state", bindings.writesState ? "float *" : "const float *", .state))
        }
        if bindings.usesIO { parameters.append(("io", bindings.writesIO ? "float *" : "const float *", .io)) }
        for input in bindings.argumentInputs {
            parameters.append((argumentName(input.name), "const float *", .argument(input.name)))
        }
        for output in bindings.argumentOutputs {
            parameters.append((argumentName(output.name), "float *", .argument(output.name)))
        }
        parameters.append(("scratch", "float *", .scratch))
        return parameters
    }

    var signature: String {
        (isStatic ? "static " : "") + "void \(function.name)("
            + entryParameters.map { "\($0.type)\($0.name)" }.joined(separator: ", ") + ")"
    }

    func argumentName(_ tensor: String) -> String { CSyntax.identifier(tensor) }

    /// `arena + offset` as the entry point spells it.
    func pointer(_ location: Location) -> String {
        let base: String
        switch location.arena {
        case .state: base = "state"
        case .io: base = "io"
        case .scratch: base = "scratch"
        case .argument(let name): base = argumentName(name)
        }
        return location.offset == 0 ? base : "\(base) + \(location.offset)"
    }

    var entryDefinition: String {
        var body: [String] = []
        var touched: [Location] = []
        for (index, kernel) in function.kernels.enumerated() {
            // Each pointer with the kernel's name for it: tN is %N of the lowered graph in model.ir.
            let parameters = parameters(of: kernel, at: index)
            touched += parameters.map(\.location)
            body.append(
                "\(kernel.name)(\(parameters.map { pointer($0.location) + " /* \($0.name) */" }.joined(separator: ", ")));"
            )
        }
        if !plan.stagingCopies.isEmpty {
            body.append("/* Old state that results need, saved before any result overwrites state. */")
        }
        for copy in plan.stagingCopies {
            touched += [copy.source, copy.destination]
            body.append(
                "memcpy(\(pointer(copy.destination)), \(pointer(copy.source)), \(copy.floats) * sizeof(float)); "
                    + CSyntax.comment(["old value for result \"\(copy.resultName)\""]))
        }
        if !plan.finalCopies.isEmpty {
            body.append(
                "/* Results computed elsewhere (in scratch, or shared with another result), copied into place. */")
        }
        for copy in plan.finalCopies {
            touched += [copy.source, copy.destination]
            body.append(
                "memcpy(\(pointer(copy.destination)), \(pointer(copy.source)), \(copy.floats) * sizeof(float)); "
                    + CSyntax.comment(["result \"\(copy.resultName)\""]))
        }
        // Every parameter is part of the ABI, used or not.
        let unused = entryParameters.filter { parameter in !touched.contains { $0.arena == parameter.arena } }
        let lines = unused.map { "(void)\($0.name);" } + body
        let comment = CSyntax.comment([
            "\(function.kernels.count) kernels; scratch high-water mark \(plan.scratchFloats) floats."
        ])
        return comment + "\n" + signature + " {\n" + lines.map { "    " + $0 }.joined(separator: "\n") + "\n}"
    }

    // MARK: Kernels

    /// Outputs first, then inputs; one parameter per location (an in-place update reads and writes one pointer);
    /// last the kernel's temporary, `chunk`, if it has one.
    func parameters(of kernel: Kernel, at kernelIndex: Int) -> [KernelParameter] {
        var slots: [(location: Location, values: [Value], isWritten: Bool, isRead: Bool)] = []
        func add(_ value: Value, written: Bool) {
            guard let location = plan.location(of: value) else { preconditionFailure("\(value) has no memory") }
            if let existing = slots.firstIndex(where: { $0.location == location }) {
                slots[existing].values.append(value)
                slots[existing].isWritten = slots[existing].isWritten || written
                slots[existing].isRead = slots[existing].isRead || !written
            } else {
                slots.append((location, [value], written, !written))
            }
        }
        for output in kernel.outputs { add(output, written: true) }
        for read in kernel.reads { add(read, written: false) }
        var usedNames: [String] = []
        var parameters = slots.map { slot in
            var name = parameterName(slot.values)
            while usedNames.contains(name) { name += "_" }
            usedNames.append(name)
            return KernelParameter(
                name: name, location: slot.location, isWritten: slot.isWritten,
                isUpdatedInPlace: slot.isWritten && slot.isRead)
        }
        if kernel.temporaryFloats > 0, let location = plan.temporaries[kernelIndex] {
            parameters.append(
                KernelParameter(name: "chunk", location: location, isWritten: true, isUpdatedInPlace: false))
        }
        return parameters
    }

    /// `in_NAME` when the memory is (the start of) an input, else `tN` after the first value kept there.
    private func parameterName(_ values: [Value]) -> String {
        for value in values {
            if let name = input(startingAt: value) { return "in_" + CSyntax.identifier(name) }
        }
        return "t\(values[0].id)"
    }

    /// The input whose memory `value` starts at: the input itself, or a reshape or leading slice of it.
    private func input(startingAt value: Value) -> String? {
        switch graph.op(of: value) {
        case .input(let name): return name
        case .reshape(let operand), .stopGradient(let operand): return input(startingAt: operand)
        case .sliceRows(let operand, let start): return start == 0 ? input(startingAt: operand) : nil
        case .constant, .unary, .binary, .broadcast, .reduceSum, .reduceMax, .matmul, .im2col, .col2im, .maxPool,
            .maxPoolSelect, .maxPoolScatter, .avgPool, .avgPoolTranspose, .padRows, .oneHotArgmax, .oneHotSample,
            .allReduceSum:
            return nil
        }
    }

    /// A serial kernel is one function. A parallel one is three pieces: a struct of its pointers, the function
    /// that runs part `part` of `parts` (mplc_parallel calls it on every thread), and the kernel function, which
    /// packs the pointers, runs the parts and then whatever must follow all of them (adding partial sums).
    func kernelDefinition(_ index: Int, _ kernel: Kernel) -> String {
        let parameters = parameters(of: kernel, at: index)
        let name = kernel.name
        let declarations = parameters.map { ($0.isWritten ? "float *restrict " : "const float *restrict ") + $0.name }
        let header = "static void \(name)(\(declarations.joined(separator: ", ")))"
        let inPlace = parameters.filter(\.isUpdatedInPlace).map {
            "\($0.name) is updated in place: each element is read before it is overwritten"
        }
        let comment = CSyntax.comment([kernel.work] + kernel.equations.map { graph.text(of: $0) } + inPlace)
        var body = KernelBodyWriter(
            graph: graph, plan: plan, parameters: parameters,
            isParallel: kernel.isParallel)
        body.write(kernel)
        guard body.isParallel else {
            return comment + "\n" + header + " {\n" + body.lines.joined(separator: "\n") + "\n}"
        }

        let fields = parameters.map { "    " + ($0.isWritten ? "float *" : "const float *") + $0.name + ";" }
        let record = "typedef struct {\n" + fields.joined(separator: "\n") + "\n} \(name)_pointers;"
        let unpacked = zip(parameters, declarations).map { parameter, declaration in
            let unused =
                CSyntax.mentions(parameter.name, in: body.lines)
                ? "" : " (void)\(parameter.name); /* used after the parts */"
            guard parameter.name == "chunk" else { return "    \(declaration) = p->\(parameter.name);" + unused }
            return kernel.partFloats == 0
                ? "    \(declaration) = p->chunk; /* shared: each piece of work has its own place in it */" + unused
                : "    \(declaration) = p->chunk + (size_t)part * \(kernel.partFloats); /* this thread's part */"
                    + unused
        }
        // Work claimed piece by piece does not need to know which part it is (the comments do not count: "used
        // after the parts" uses no `parts`).
        let code = unpacked.map { $0.components(separatedBy: "/*")[0] }
        let unusedIndex = ["part", "parts"].filter { !CSyntax.mentions($0, in: body.lines + code) }.map {
            "    (void)\($0);"
        }
        let part =
            "static void \(name)_part(void *context, int part, int parts) {\n"
            + "    const \(name)_pointers *p = context;\n" + (unusedIndex + unpacked).joined(separator: "\n") + "\n"
            + body.lines.joined(separator: "\n") + "\n}"
        let call =
            "    mplc_parallel(\(name)_part, &(\(name)_pointers){\(parameters.map(\.name).joined(separator: ", "))});"
        let whole = header + " {\n" + ([call] + body.linesAfterParts).joined(separator: "\n") + "\n}"
        return comment + "\n" + record + "\n\n" + part + "\n\n" + whole
    }
}

/// Writes the statements of one kernel function.
private struct KernelBodyWriter {
    let graph: Graph
    let plan: MemoryPlan
    let parameters: [KernelParameter]
    /// Written as part `part` of `parts` (C variables of the part function) of a parallel kernel: the part
    /// claims pieces of rows or images until none are left, or takes its fixed share (`partRange`).
    let isParallel: Bool
    var lines: [String] = []
    /// What the kernel does after all its parts have finished (a parallel kernel only).
    var linesAfterParts: [String] = []

    init(graph: Graph, plan: MemoryPlan, parameters: [KernelParameter], isParallel: Bool) {
        self.graph = graph
        self.plan = plan
        self.parameters = parameters
        self.isParallel = isParallel
    }

    /// Declares `lo` and `hi`, this part's share of [0, count) in whole blocks: for work whose result depends
    /// on which thread does which share (partial sums), or that is best cut once (a GEMM packs its operands
    /// for each call).
    private mutating func partRange(_ count: Int, block: Int = 1) {
        line(1, "size_t lo, hi;")
        line(1, "mplc_part(\(count), \(block), part, parts, &lo, &hi);")
    }

    /// Line where the rest of the kernel's body goes inside `while (mplc_claim(...)) {`, if it does.
    private var claimLoopStart: Int? = nil

    /// Opens a loop over pieces of [0, count) claimed one at a time (`mplc_claim`, [lo, hi) each): the rest
    /// of the body runs once per piece, and threads that finish early take more pieces.
    private mutating func claimPieces(_ count: Int, piece: Int) {
        line(1, "size_t lo, hi;")
        line(1, "while (mplc_claim(\(count), \(piece), &lo, &hi)) {")
        claimLoopStart = lines.count
    }

    /// About 32 pieces of `count` rows, each at least 16 floats long (no cache line shared between pieces).
    private static func piece(rows count: Int, rowFloats: Int) -> Int {
        let rows = max(1, (count + 31) / 32)
        let minimumRows = (16 + rowFloats - 1) / max(rowFloats, 1)
        return max(rows, minimumRows)
    }

    private mutating func line(_ depth: Int, _ text: String) {
        lines.append(String(repeating: "    ", count: depth) + text)
    }

    /// The parameter holding `value`'s memory.
    private func buffer(_ value: Value) -> String {
        let location = plan.location(of: value)!
        return parameters.first { $0.location == location }!.name
    }

    mutating func write(_ kernel: Kernel) {
        writeBody(kernel)
        if let start = claimLoopStart {  // the claimed piece's work, one level in
            for index in start..<lines.count { lines[index] = "    " + lines[index] }
            line(1, "}")
        }
    }

    private mutating func writeBody(_ kernel: Kernel) {
        switch kernel.body {
        case .loop(let loop):
            if isParallel {
                claimPieces(
                    loop.dims[0], piece: Self.piece(rows: loop.dims[0], rowFloats: loop.dims.dropFirst().reduce(1, *)))
                writeLoop(loop.dims, loop.statements, rows: ("lo", "hi"))
            } else {
                writeLoop(loop.dims, loop.statements)
            }
        case .reduction(let reduction): writeReduction(reduction)
        case .gemm(let gemm): writeGEMM(gemm)
        case .window(let window): writeWindow(window)
        case .padRows(let operand, let start, let output):
            let rows = graph.shape(of: operand)[0]
            let outRows = graph.shape(of: output)[0]
            let rowFloats = outRows == 0 ? 0 : graph.shape(of: output).count / outRows
            line(
                1, "mplc_pad_rows(\(buffer(output)), \(buffer(operand)), \(rows), \(outRows), \(start), \(rowFloats));")
        case .oneHotArgmax(let operand, let output):
            let (rows, classes) = rowsAndClasses(output)
            line(1, "mplc_one_hot_argmax(\(buffer(output)), \(buffer(operand)), \(rows), \(classes));")
        case .oneHotSample(let probabilities, let uniform, let output):
            let (rows, classes) = rowsAndClasses(output)
            line(
                1,
                "mplc_one_hot_sample(\(buffer(output)), \(buffer(probabilities)), \(buffer(uniform)), \(rows), \(classes));"
            )
        case .allReduceSum(let operand, let output):
            let floats = graph.shape(of: output).count
            if buffer(operand) != buffer(output) {
                line(1, "memcpy(\(buffer(output)), \(buffer(operand)), \(floats) * sizeof(float));")
            }
            line(1, "mplc_allreduce_sum(\(buffer(output)), \(floats));")
        }
    }

    private func rowsAndClasses(_ value: Value) -> (Int, Int) {
        let shape = graph.shape(of: value)
        let classes = shape.rank == 0 ? 1 : shape[shape.rank - 1]
        return (classes == 0 ? 0 : shape.count / classes, classes)
    }

    // MARK: Element-wise loops

    /// One flat loop when every read is at the loop's own index (or a scalar); else nested loops over dims.
    /// `rows` restricts the first dimension to [lo, hi) (C expressions), for a GEMM epilogue run chunk by chunk.
    private mutating func writeLoop(
        _ dims: [Int], _ statements: [Statement], rows: (lo: String, hi: String)? = nil,
        depth outer: Int = 1
    ) {
        let identity = Array(dims.indices)
        let flat = statements.allSatisfy { statement in
            statement.expression.loads.allSatisfy { $0.axes == identity || $0.axes.isEmpty }
        }
        let index = Indexing(dims: dims, flat: flat, graph: graph)
        let depth = openLoops(index, dims: dims, depth: outer, rows: rows)
        writeStatements(statements, index, depth: depth)
        for statement in statements where statement.isStored {
            line(depth, "\(buffer(statement.value))[\(index.output)] = v\(statement.value.id);")
        }
        closeLoops(from: depth, to: outer)
    }

    /// Opens the loops and returns the depth of the body.
    /// `rows` restricts dimension `rowsDim` (of a nested loop) to [lo, hi).
    private mutating func openLoops(
        _ index: Indexing, dims: [Int], only range: Range<Int>? = nil, depth: Int = 1,
        rows: (lo: String, hi: String)? = nil, rowsDim: Int = 0
    ) -> Int {
        if index.flat {
            if let rows {
                let row = dims.dropFirst().reduce(1, *)
                line(depth, "for (size_t i = (size_t)(\(rows.lo)) * \(row); i < (size_t)(\(rows.hi)) * \(row); i++) {")
            } else {
                line(depth, "for (size_t i = 0; i < \(dims.reduce(1, *)); i++) {")
            }
            return depth + 1
        }
        var depth = depth
        for d in range ?? dims.indices {
            if d == rowsDim, let rows {
                line(depth, "for (size_t i\(d) = (size_t)(\(rows.lo)); i\(d) < (size_t)(\(rows.hi)); i\(d)++) {")
            } else {
                line(depth, "for (size_t i\(d) = 0; i\(d) < \(dims[d]); i\(d)++) {")
            }
            depth += 1
        }
        return depth
    }

    private mutating func closeLoops(from depth: Int, to outer: Int = 1) {
        for d in stride(from: depth - 1, through: outer, by: -1) { line(d, "}") }
    }

    /// Each statement as `const float vN = ...;`. All loads of an iteration come before its stores, which is
    /// what makes an in-place update (read θ[i], write θ'[i]) correct.
    private mutating func writeStatements(_ statements: [Statement], _ index: Indexing, depth: Int) {
        for statement in statements {
            line(depth, "const float v\(statement.value.id) = \(expression(statement.expression, index));")
        }
    }

    private func expression(_ e: ScalarExpr, _ index: Indexing) -> String {
        switch e {
        case .load(let value, let axes): return "\(buffer(value))[\(index.read(value, axes: axes))]"
        case .local(let value): return "v\(value.id)"
        case .constant(let c):
            let literal = CSyntax.floatLiteral(c)
            return literal.hasPrefix("-") ? "(\(literal))" : literal
        case .unary(let op, let a): return op.cExpression(operand(a, index))
        case .binary(let op, let a, let b): return op.cExpression(operand(a, index), operand(b, index))
        }
    }

    /// An operand in parentheses unless it is a load, a local or a literal.
    private func operand(_ e: ScalarExpr, _ index: Indexing) -> String {
        switch e {
        case .load, .local, .constant: return expression(e, index)
        case .unary, .binary: return "(" + expression(e, index) + ")"
        }
    }

    // MARK: Reductions

    /// Reducing trailing axes (a row sum, a total): a double accumulator per output element. Otherwise (a
    /// column sum such as a bias gradient): zero the output and accumulate into it, vectorised along the rows.
    private mutating func writeReduction(_ r: Reduction) {
        let out = buffer(r.output)
        let isSuffix = r.reducedAxes == Array((r.dims.count - r.reducedAxes.count)..<r.dims.count)
        let index = Indexing(dims: r.dims, flat: false, graph: graph)
        let outputIndex = index.reducedOutput(keeping: r.dims.indices.filter { !r.reducedAxes.contains($0) })
        let combine: (String, String) -> String = { accumulator, x in
            switch r.kind {
            case .sum: return "\(accumulator) += \(x);"
            case .max: return "\(accumulator) = \(x) > \(accumulator) ? \(x) : \(accumulator);"
            }
        }
        if isSuffix {
            precondition(r.siblings.isEmpty, "sibling reductions are column sums")
            let kept = r.dims.count - r.reducedAxes.count
            if isParallel { claimPieces(r.dims[0], piece: Self.piece(rows: r.dims[0], rowFloats: 1)) }
            let outer = openLoops(index, dims: r.dims, only: 0..<kept, rows: isParallel ? ("lo", "hi") : nil)
            if r.kind == .sum && r.dims.last! % sumLanes == 0 && r.dims.last! >= minimumLanedSum {
                writeLanedSum(r, index, kept: kept, depth: outer)
            } else {
                line(outer, r.kind == .sum ? "double sum = 0.0;" : "float best = -INFINITY;")
                let inner = openLoops(index, dims: r.dims, only: kept..<r.dims.count, depth: outer)
                writeStatements(r.statements, index, depth: inner)
                line(inner, combine(r.kind == .sum ? "sum" : "best", expression(r.input, index)))
                closeLoops(from: inner, to: outer)
            }
            line(outer, "\(out)[\(outputIndex)] = \(r.kind == .sum ? "(float)sum" : "best");")
            closeLoops(from: outer)
        } else if isParallel {
            // Reducing leading axes (a column sum): blocks of rows claimed one at a time, each reduced into its own
            // row of partials in `chunk` (a thread reads only its rows), then the partials in block order. A
            // kernel with sibling sums keeps the partials of sum j after those of sum j − 1.
            let initial = r.kind == .sum ? "0.0f" : "-INFINITY"
            let columns = graph.shape(of: r.output).count
            let parts = r.parts
            let suffix = { (j: Int) in j == 0 ? "" : "\(j)" }
            claimPieces(r.dims[0], piece: r.blockRows)
            for j in parts.indices {
                let offset = j == 0 ? "" : " + \(j * r.blocks * r.partialFloats)"
                line(
                    1,
                    "float *restrict partial\(suffix(j)) = chunk\(offset) + lo / \(r.blockRows) * \(r.partialFloats);")
            }
            // Summed in a local array, then stored: cc cannot tell `chunk` from the operands (pointers read from the
            // part's struct), and did not vectorise the sums into it (fashion_wrn's sums took twice the time).
            let local = columns <= maximumLocalColumns
            let sums = { (j: Int) in (local ? "sums" : "partial") + suffix(j) }
            for j in parts.indices {
                if local { line(1, "float \(sums(j))[\(columns)];") }
                line(1, "for (size_t o = 0; o < \(columns); o++) \(sums(j))[o] = \(initial);")
            }
            let depth = openLoops(index, dims: r.dims, rows: ("lo", "hi"))
            writeStatements(r.statements, index, depth: depth)
            for (j, part) in parts.enumerated() {
                line(depth, combine("\(sums(j))[\(outputIndex)]", expression(part.input, index)))
            }
            closeLoops(from: depth)
            if local {
                for j in parts.indices {
                    line(1, "for (size_t o = 0; o < \(columns); o++) partial\(suffix(j))[o] = \(sums(j))[o];")
                }
            }
            let outputs = parts.map { buffer($0.output) }
            afterParts { body in
                for (j, output) in outputs.enumerated() {
                    let base = j * r.blocks * r.partialFloats
                    body.line(1, "for (size_t o = 0; o < \(columns); o++) {")
                    body.line(2, "float total = chunk[\(base == 0 ? "" : "\(base) + ")o];")
                    let partial = "chunk[\(base == 0 ? "" : "\(base) + ")b * \(r.partialFloats) + o]"
                    body.line(2, "for (size_t b = 1; b < \(r.blocks); b++) \(combine("total", partial))")
                    body.line(2, "\(output)[o] = total;")
                    body.line(1, "}")
                }
            }
        } else {
            let initial = r.kind == .sum ? "0.0f" : "-INFINITY"
            for part in r.parts {
                line(
                    1,
                    "for (size_t o = 0; o < \(graph.shape(of: part.output).count); o++) \(buffer(part.output))[o] = \(initial);"
                )
            }
            let depth = openLoops(index, dims: r.dims)
            writeStatements(r.statements, index, depth: depth)
            for part in r.parts {
                line(depth, combine("\(buffer(part.output))[\(outputIndex)]", expression(part.input, index)))
            }
            closeLoops(from: depth)
        }
    }

    /// The most columns whose partial sums a column sum's piece keeps on the stack (4 KiB).
    private let maximumLocalColumns = 1024

    /// `double sum` over the reduced suffix in `sumLanes` accumulators, lane l taking the elements ≡ l
    /// (mod sumLanes) of the last axis, added in lane order at the end. One accumulator chains every addition
    /// on the previous one (a 1M-element dot product of the feedback took 1 ms); independent lanes let cc
    /// vectorise without -ffast-math, and the order of the additions is still fixed by the shapes alone.
    private mutating func writeLanedSum(_ r: Reduction, _ index: Indexing, kept: Int, depth outer: Int) {
        let last = r.dims.count - 1
        line(outer, "double sums[\(sumLanes)] = {0.0};")
        let middle = openLoops(index, dims: r.dims, only: kept..<last, depth: outer)
        line(middle, "for (size_t i\(last)s = 0; i\(last)s < \(r.dims[last]); i\(last)s += \(sumLanes)) {")
        line(middle + 1, "for (size_t lane = 0; lane < \(sumLanes); lane++) {")
        line(middle + 2, "const size_t i\(last) = i\(last)s + lane;")
        writeStatements(r.statements, index, depth: middle + 2)
        line(middle + 2, "sums[lane] += \(expression(r.input, index));")
        closeLoops(from: middle + 2, to: outer)
        line(outer, "double sum = 0.0;")
        line(outer, "for (size_t lane = 0; lane < \(sumLanes); lane++) sum += sums[lane];")
    }

    // MARK: GEMM

    private mutating func writeGEMM(_ g: GEMM) {
        let lda = graph.shape(of: g.a)[1]
        let ldb = graph.shape(of: g.b)[1]
        let flags = [g.transposeA, g.transposeB].map { $0 ? "CblasTrans" : "CblasNoTrans" }
        switch (g.strategy, g.im2colA, g.col2imOutput) {
        case (.winograd, nil, let w?):
            return writeWinogradTransposedConvolution(g, w)
        case (.winograd, let w?, nil):
            return g.transposeA ? writeWinogradFilterGradient(g, w) : writeWinogradConvolution(g, w)
        case (.blasOnColumns, let w?, nil), (.smallGEMM, let w?, nil), (.smallOuterProducts, let w?, nil):
            return writeStreamedColumns(g, w, flags: flags, lda: lda, ldb: ldb)
        case (.blasIntoCol2im, nil, let w?):
            return writeStreamedCol2im(g, w, flags: flags, lda: lda, ldb: ldb)
        case (.blas, nil, nil):
            break
        default:
            preconditionFailure("GEMM strategy \(g.strategy) does not fit its operands")
        }
        if isParallel {
            // This part's rows of the product: rows of op(a), i.e. rows of a, or columns of a when transposed.
            partRange(g.m, block: g.m >= 64 ? 16 : 1)  // whole 16-row blocks keep sgemm's kernels on full tiles
            let a = g.transposeA ? "\(buffer(g.a)) + lo" : "\(buffer(g.a)) + lo * \(lda)"
            line(1, "if (lo == hi) return;")
            line(
                1,
                "cblas_sgemm(CblasRowMajor, \(flags[0]), \(flags[1]), (int)(hi - lo), \(g.n), \(g.k), 1.0f, "
                    + "\(a), \(lda), \(buffer(g.b)), \(ldb), 0.0f, \(buffer(g.output)) + lo * \(g.n), \(g.n));")
        } else {
            line(
                1,
                "cblas_sgemm(CblasRowMajor, \(flags[0]), \(flags[1]), \(g.m), \(g.n), \(g.k), 1.0f, "
                    + "\(buffer(g.a)), \(lda), \(buffer(g.b)), \(ldb), 0.0f, \(buffer(g.output)), \(g.n));")
        }
        guard !g.epilogue.isEmpty else { return }
        line(1, "/* epilogue, in place on the product */")
        writeLoop([g.m, g.n], g.epilogue, rows: isParallel ? ("lo", "hi") : nil)
    }

    /// `(mplc_window){...}` with `batch` images.
    private func windowLiteral(_ g: WindowGeometry, batch: String) -> String {
        "(mplc_window){\(batch), \(g.height), \(g.width), \(g.channels), \(g.kernel), \(g.stride), \(g.padding)}"
    }

    /// Opens `for (n0 ...) { const int nb = ...;` over the images of `w` (this part's, in a parallel kernel), a
    /// chunk at a time. Parts are cut at whole chunks, so the chunks are the same for any number of threads.
    private mutating func openChunks(_ w: WindowedImages) {
        let (first, end) = isParallel ? ("(int)lo", "(int)hi") : ("0", "\(w.geometry.batch)")
        line(1, "for (int n0 = \(first); n0 < \(end); n0 += \(w.chunkImages)) {")
        line(2, "const int nb = \(end) - n0 < \(w.chunkImages) ? \(end) - n0 : \(w.chunkImages);")
    }

    /// The columns of a chunk of images in `chunk`, then the GEMM on them: rows of the product (and the epilogue
    /// on those rows), or a slice of the contraction accumulated over the chunks (then the epilogue).
    private mutating func writeStreamedColumns(_ g: GEMM, _ w: WindowedImages, flags: [String], lda: Int, ldb: Int) {
        let geometry = w.geometry
        let imageFloats = geometry.height * geometry.width * geometry.channels
        let rowsPerImage = w.rowsPerImage
        line(1, "/* columns of \(w.chunkImages) images at a time (\(w.chunkFloats) floats), never the whole im2col */")
        if isParallel {
            // ∂W's partial sums must not depend on which thread took which images: fixed shares for it.
            if g.hasPartialSums {
                partRange(geometry.batch, block: w.chunkImages)
            } else {
                claimPieces(geometry.batch, piece: w.chunkImages)
            }
        }
        if g.hasPartialSums { declarePartialSum(g) }
        let isSmallOuterProduct = g.strategy == .smallOuterProducts
        if isSmallOuterProduct {
            line(1, "float total[\(g.m * g.n)];")
            line(1, "for (int i = 0; i < \(g.m * g.n); i++) total[i] = 0.0f;")
        }
        openChunks(w)
        line(
            2,
            "mplc_im2col(chunk, \(buffer(w.images)) + (size_t)n0 * \(imageFloats), \(windowLiteral(geometry, batch: "nb")));"
        )
        if !g.transposeA {
            if g.strategy == .smallGEMM {
                writeSmallContraction(g, rows: "(size_t)nb * \(rowsPerImage)", ldb: ldb, rowsPerImage: rowsPerImage)
            } else {
                line(
                    2,
                    "cblas_sgemm(CblasRowMajor, CblasNoTrans, \(flags[1]), nb * \(rowsPerImage), \(g.n), \(g.k), 1.0f, "
                        + "chunk, \(lda), \(buffer(g.b)), \(ldb), 0.0f, \(buffer(g.output)) + (size_t)n0 * \(rowsPerImage * g.n), \(g.n));"
                )
            }
            writeChunkEpilogue(g, rowsPerImage: rowsPerImage)
            return
        }
        if isSmallOuterProduct {
            writeSmallOuterProducts(g, w, ldb: ldb)
            line(1, "for (int i = 0; i < \(g.m * g.n); i++) sum[i] = total[i];")
        } else {
            let bRows = g.transposeB ? "(size_t)n0 * \(rowsPerImage)" : "(size_t)n0 * \(rowsPerImage * ldb)"
            let first = isParallel ? "(int)lo" : "0"
            line(
                2,
                "cblas_sgemm(CblasRowMajor, CblasTrans, \(flags[1]), \(g.m), \(g.n), nb * \(rowsPerImage), 1.0f, "
                    + "chunk, \(lda), \(buffer(g.b)) + \(bRows), \(ldb), n0 == \(first) ? 0.0f : 1.0f, sum, \(g.n));")
            line(1, "}")
        }
        addPartialSumsAndEpilogue(g)
    }

    /// After the parts of ∂W: their partial sums added (a parallel kernel) and the epilogue on the sum.
    private mutating func addPartialSumsAndEpilogue(_ g: GEMM) {
        afterParts { writer in
            writer.addPartialSums(g)
            if !g.epilogue.isEmpty {
                writer.line(1, "/* epilogue, in place on the product */")
                writer.writeLoop([g.m, g.n], g.epilogue)
            }
        }
    }

    /// A forward 3×3 convolution by Winograd F(2×2, 3×3), a chunk of images at a time (rows of the product), and
    /// the epilogue on those rows.
    private mutating func writeWinogradConvolution(_ g: GEMM, _ w: WindowedImages) {
        let geometry = w.geometry
        let t = g.winogradTile
        line(1, "/* the convolution of \(w.chunkImages) images at a time by Winograd F(\(t)x\(t), 3x3) */")
        writeWinogradFilters(g, flipped: false)
        if isParallel { claimPieces(geometry.batch, piece: w.chunkImages) }
        openChunks(w)
        line(
            2,
            "\(Self.winogradConvolution(g))(\(buffer(g.output)) + (size_t)n0 * \(w.rowsPerImage * g.n), "
                + "\(buffer(w.images)) + (size_t)n0 * \(geometry.height * geometry.width * geometry.channels), filters, "
                + "\(windowLiteral(geometry, batch: "nb")), \(g.n), \(winogradScratch(g)));")
        writeChunkEpilogue(g, rowsPerImage: w.rowsPerImage)
    }

    /// ∂W = colsᵀ·∂y of a 3×3 convolution by Winograd F(2×2, 3×3): the gradient of the transformed filters summed
    /// over this part's chunks of images, then turned into ∂W (the partial sum), then the parts' sums added.
    private mutating func writeWinogradFilterGradient(_ g: GEMM, _ w: WindowedImages) {
        guard let c = g.winogradChannels else { preconditionFailure("a Winograd GEMM without a convolution") }
        let geometry = w.geometry
        line(
            1,
            "/* ∂W by Winograd F(2x2, 3x3), summed over \(w.chunkImages) images at a time in the transformed filters */"
        )
        if isParallel { partRange(geometry.batch, block: w.chunkImages) }
        declarePartialSum(g)
        line(1, "float *filters = chunk;")
        openChunks(w)
        line(
            2,
            "mplc_winograd_filter_gradient(filters, \(buffer(w.images)) + (size_t)n0 * \(geometry.height * geometry.width * geometry.channels), "
                + "\(buffer(g.b)) + (size_t)n0 * \(w.rowsPerImage * g.n), \(windowLiteral(geometry, batch: "nb")), \(g.n), "
                + "n0 != \(isParallel ? "(int)lo" : "0"), \(winogradScratch(g)));")
        line(1, "}")
        line(1, "\(isParallel ? "if (lo < hi) " : "")mplc_winograd_filters_transpose(sum, filters, \(c.in), \(c.out));")
        addPartialSumsAndEpilogue(g)
    }

    /// After a forward convolution's chunk: the epilogue on its rows and the pool of its images, then the end of
    /// the chunk loop.
    private mutating func writeChunkEpilogue(_ g: GEMM, rowsPerImage: Int) {
        if !g.epilogue.isEmpty {
            line(2, "/* epilogue on these rows, in place on the product */")
            writeLoop([g.m, g.n], g.epilogue, rows: ("n0 * \(rowsPerImage)", "(n0 + nb) * \(rowsPerImage)"), depth: 2)
        }
        if let pool = g.pool {
            let p = pool.geometry
            line(2, "/* the pool of these images, while they are in cache */")
            line(
                2,
                "\(Self.helper(pool.op))(\(buffer(pool.output)) + (size_t)n0 * \(p.outHeight * p.outWidth * p.channels), "
                    + "\(buffer(pool.operands[0])) + (size_t)n0 * \(p.height * p.width * p.channels), \(windowLiteral(p, batch: "nb")));"
            )
        }
        line(1, "}")
    }

    /// `sum`, where this part accumulates ∂W = colsᵀ·∂y over its images: the output itself (serial, or part 0),
    /// or the part's partial sum after its chunk. A part without images leaves zeros.
    private mutating func declarePartialSum(_ g: GEMM) {
        guard isParallel else {
            line(1, "float *sum = \(buffer(g.output));")
            return
        }
        line(1, "float *sum = part == 0 ? \(buffer(g.output)) : chunk + \(g.partialSumsOffset);")
        line(1, "if (lo == hi) for (int i = 0; i < \(g.m * g.n); i++) sum[i] = 0.0f;")
    }

    /// After the parts of a parallel ∂W: the other parts' partial sums added to part 0's, in part order.
    private mutating func addPartialSums(_ g: GEMM) {
        guard isParallel else { return }
        line(1, "for (int q = 1; q < mplc_threads(); q++) {")
        line(2, "const float *partial = chunk + (size_t)q * \(g.partFloats) + \(g.partialSumsOffset);")
        line(2, "for (int i = 0; i < \(g.m * g.n); i++) \(buffer(g.output))[i] += partial[i];")
        line(1, "}")
    }

    /// Writes with `body` into `linesAfterParts` (a parallel kernel), or on into `lines` (a serial one).
    private mutating func afterParts(_ body: (inout KernelBodyWriter) -> Void) {
        guard isParallel else { return body(&self) }
        let partLines = lines
        lines = []
        body(&self)
        linesAfterParts += lines
        lines = partLines
    }

    /// A forward convolution whose contraction is tiny (k·k·C_in ≤ `smallContraction`, e.g. the first layer of
    /// a grey-scale CNN, K = 9): sgemm would spend more on packing the columns than on the arithmetic, so each
    /// row of the chunk is multiplied in a plain loop whose accumulators stay in registers.
    private mutating func writeSmallContraction(_ g: GEMM, rows: String, ldb: Int, rowsPerImage: Int) {
        line(2, "/* K = \(g.k): a plain loop, the accumulators of a row in registers (sgemm would mostly pack) */")
        line(2, "for (size_t r = 0; r < \(rows); r++) {")
        line(3, "float acc[\(g.n)];")
        line(3, "for (int j = 0; j < \(g.n); j++) acc[j] = 0.0f;")
        line(3, "for (int p = 0; p < \(g.k); p++) {")
        line(4, "const float x = chunk[r * \(g.k) + p];")
        line(4, "for (int j = 0; j < \(g.n); j++) acc[j] = fmaf(x, \(buffer(g.b))[p * \(ldb) + j], acc[j]);")
        line(3, "}")
        line(3, "float *row = \(buffer(g.output)) + ((size_t)n0 * \(rowsPerImage) + r) * \(g.n);")
        line(3, "for (int j = 0; j < \(g.n); j++) row[j] = acc[j];")
        line(2, "}")
    }

    /// ∂W = colsᵀ·∂y of such a convolution (m = k·k·C_in tiny): outer products accumulated row by row, in blocks
    /// of `smallBlockRows` rows whose partial sums are added to `total` (a two-level sum, about as accurate as
    /// sgemm's blocked one), in row order whatever the chunk size.
    private mutating func writeSmallOuterProducts(_ g: GEMM, _ w: WindowedImages, ldb: Int) {
        let rowsPerImage = w.rowsPerImage
        let size = g.m * g.n
        line(
            2,
            "/* m = \(g.m): outer products of the rows, summed in blocks of \(smallBlockRows) rows (sgemm would mostly pack) */"
        )
        line(2, "for (size_t r0 = 0; r0 < (size_t)nb * \(rowsPerImage); r0 += \(smallBlockRows)) {")
        line(
            3,
            "const size_t r1 = r0 + \(smallBlockRows) < (size_t)nb * \(rowsPerImage) ? r0 + \(smallBlockRows) : (size_t)nb * \(rowsPerImage);"
        )
        line(3, "float block_sum[\(size)];")
        line(3, "for (int i = 0; i < \(size); i++) block_sum[i] = 0.0f;")
        line(3, "for (size_t r = r0; r < r1; r++) {")
        line(4, "const float *dy = \(buffer(g.b)) + ((size_t)n0 * \(rowsPerImage) + r) * \(ldb);")
        line(4, "for (int p = 0; p < \(g.m); p++) {")
        line(5, "const float x = chunk[r * \(g.m) + p];")
        line(
            5, "for (int j = 0; j < \(g.n); j++) block_sum[p * \(g.n) + j] = fmaf(x, dy[j], block_sum[p * \(g.n) + j]);"
        )
        line(4, "}")
        line(3, "}")
        line(3, "for (int i = 0; i < \(size); i++) total[i] += block_sum[i];")
        line(2, "}")
        line(1, "}")
    }

    /// The product a chunk of images at a time into `chunk`, each chunk summed into its images by col2im.
    private mutating func writeStreamedCol2im(_ g: GEMM, _ w: WindowedImages, flags: [String], lda: Int, ldb: Int) {
        let geometry = w.geometry
        let imageFloats = geometry.height * geometry.width * geometry.channels
        let rowsPerImage = w.rowsPerImage
        let aRows = g.transposeA ? "(size_t)n0 * \(rowsPerImage)" : "(size_t)n0 * \(rowsPerImage * lda)"
        line(
            1,
            "/* the product \(w.chunkImages) images at a time (\(w.chunkFloats) floats), each chunk through col2im */")
        if isParallel { claimPieces(geometry.batch, piece: w.chunkImages) }
        openChunks(w)
        line(
            2,
            "cblas_sgemm(CblasRowMajor, \(flags[0]), \(flags[1]), nb * \(rowsPerImage), \(g.n), \(g.k), 1.0f, "
                + "\(buffer(g.a)) + \(aRows), \(lda), \(buffer(g.b)), \(ldb), 0.0f, chunk, \(g.n));")
        line(
            2,
            "mplc_col2im(\(buffer(g.output)) + (size_t)n0 * \(imageFloats), chunk, \(windowLiteral(geometry, batch: "nb")));"
        )
        line(1, "}")
    }

    /// ∂x = col2im(∂y·Wᵀ) of a 3×3 stride-1 pad-1 convolution as what it is, the convolution of ∂y with the filters
    /// turned by 180° and transposed, by Winograd F(2×2, 3×3), a chunk of images at a time.
    private mutating func writeWinogradTransposedConvolution(_ g: GEMM, _ w: WindowedImages) {
        let geometry = w.geometry
        var dy = geometry
        dy.height = geometry.outHeight
        dy.width = geometry.outWidth
        dy.channels = g.k
        line(
            1,
            "/* ∂x = the transposed convolution of ∂y, \(w.chunkImages) images at a time, by Winograd "
                + "F(\(g.winogradTile)x\(g.winogradTile), 3x3) */"
        )
        writeWinogradFilters(g, flipped: true)
        if isParallel { claimPieces(geometry.batch, piece: w.chunkImages) }
        openChunks(w)
        line(
            2,
            "\(Self.winogradConvolution(g))(\(buffer(g.output)) + (size_t)n0 * \(geometry.height * geometry.width * geometry.channels), "
                + "\(buffer(g.a)) + (size_t)n0 * \(w.rowsPerImage * g.k), filters, \(windowLiteral(dy, batch: "nb")), "
                + "\(geometry.channels), \(winogradScratch(g)));")
        line(1, "}")
    }

    /// The chunk's scratch in this part's temporary, as the runtime's `mplc_winograd_scratch` (GEMM.winogradScratch).
    private func winogradScratch(_ g: GEMM) -> String {
        guard let s = g.winogradScratch else { preconditionFailure("a Winograd GEMM without a convolution") }
        return "(mplc_winograd_scratch){chunk + \(s.v), chunk + \(s.m), chunk + \(s.zeros), "
            + "chunk + \(s.dropped), \(s.vPlane), \(s.mPlane)}"
    }

    /// `filters`, at the start of this part's temporary: the Winograd transform of the GEMM's weights `b` (for
    /// ∂x, `flipped`: those of the convolution the other way, turned by 180°), once per part, before its pieces.
    private mutating func writeWinogradFilters(_ g: GEMM, flipped: Bool) {
        guard let c = g.winogradChannels else { preconditionFailure("a Winograd GEMM without a convolution") }
        line(1, "float *filters = chunk;")
        let transform = g.winogradTile == 4 ? "mplc_winograd4_filters" : "mplc_winograd_filters"
        line(1, "\(transform)(filters, \(buffer(g.b)), \(c.in), \(c.out), \(flipped ? 1 : 0));")
    }

    /// The runtime's convolution for the GEMM's Winograd tiles (`GEMM.winogradTile`).
    private static func winogradConvolution(_ g: GEMM) -> String {
        g.winogradTile == 4 ? "mplc_winograd4_conv3x3" : "mplc_winograd_conv3x3"
    }

    // MARK: Windows

    /// The runtime function of a window op.
    private static func helper(_ op: WindowOp) -> String {
        switch op {
        case .im2col: return "mplc_im2col"
        case .col2im: return "mplc_col2im"
        case .maxPool: return "mplc_max_pool"
        case .maxPoolSelect: return "mplc_max_pool_select"
        case .maxPoolScatter: return "mplc_max_pool_scatter"
        case .avgPool: return "mplc_avg_pool"
        case .avgPoolTranspose: return "mplc_avg_pool_transpose"
        }
    }

    private mutating func writeWindow(_ w: WindowKernel) {
        let g = w.geometry
        let geometry = windowLiteral(g, batch: "\(g.batch)")
        let helper = Self.helper(w.op)
        guard isParallel else {
            let operands = ([w.output] + w.operands).map { buffer($0) }.joined(separator: ", ")
            line(1, "\(helper)(\(operands), \(geometry));")
            return
        }
        // This part's images: every helper treats the images of a batch independently.
        claimPieces(g.batch, piece: Self.piece(rows: g.batch, rowFloats: 16))
        let operands = ([w.output] + w.operands).map { "\(buffer($0)) + lo * \(graph.shape(of: $0).count / g.batch)" }
        let partGeometry = windowLiteral(g, batch: "(int)(hi - lo)")
        line(1, "\(helper)(\(operands.joined(separator: ", ")), \(partGeometry));")
    }
}

/// A sum over a suffix whose last axis is a multiple of `sumLanes` and at least `minimumLanedSum` long is
/// accumulated in lanes (writeLanedSum): 8 doubles are two AVX2 registers.
let sumLanes = 8
let minimumLanedSum = 64

/// Rows per partial sum of `GEMMStrategy.smallOuterProducts` (see writeSmallOuterProducts).
let smallBlockRows = 256

/// Index expressions of one loop nest: flat (`i`) or per dimension (`i0 * 256 + i1`), affine either way.
private struct Indexing {
    let dims: [Int]
    let flat: Bool
    let graph: Graph

    /// The element of the loop's own shape being computed.
    var output: String { flat ? "i" : affine(Array(dims.indices), strides: rowMajorStrides(dims)) }

    /// Element of `value` whose axis k is loop dimension axes[k].
    func read(_ value: Value, axes: [Int]) -> String {
        if axes.isEmpty { return "0" }
        if flat { return "i" }
        return affine(axes, strides: rowMajorStrides(graph.shape(of: value).dims))
    }

    /// Element of a reduction's output, whose axes are the loop dimensions `kept`.
    func reducedOutput(keeping kept: [Int]) -> String {
        kept.isEmpty ? "0" : affine(kept, strides: rowMajorStrides(kept.map { dims[$0] }))
    }

    private func affine(_ loopDims: [Int], strides: [Int]) -> String {
        let terms = zip(loopDims, strides).compactMap { dim, stride -> String? in
            if self.dims[dim] == 1 { return nil }  // the index is always 0
            return stride == 1 ? "i\(dim)" : "i\(dim) * \(stride)"
        }
        return terms.isEmpty ? "0" : terms.joined(separator: " + ")
    }
}

func rowMajorStrides(_ dims: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: dims.count)
    for axis in stride(from: dims.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * dims[axis + 1] }
    return strides
}
