import SwiftSyntax

/// One parameter of a layer, setting or value constructor.
struct Parameter {
    enum Label {
        /// Always written with its label: `kernel: 3`.
        case required
        /// The first argument, written with or without its label: `Dense(10)` or `Dense(units: 10)`.
        case optional
        /// Written without a label: `steps(3000)`.
        case omitted
    }

    var name: String
    var label: Label
    var isRequired: Bool

    static func labeled(_ name: String, required: Bool = false) -> Parameter {
        Parameter(name: name, label: .required, isRequired: required)
    }
    static func leading(_ name: String, required: Bool = true) -> Parameter {
        Parameter(name: name, label: .optional, isRequired: required)
    }
    static func unlabeled(_ name: String) -> Parameter {
        Parameter(name: name, label: .omitted, isRequired: true)
    }
}

/// The arguments of one call, matched to parameters by label, with typed readers that report
/// wrong types and out-of-range values.
struct Arguments {
    /// How the call is named in messages about its argument list: "Conv2D", "SGD", ".soft".
    let callee: String
    /// How its values are named in messages about one value: "Conv2D", "teacherOptimizer".
    let subject: String
    private let parameters: [Parameter]
    private(set) var values: [String: ExprSyntax] = [:]
    /// False if an argument could not be matched; the call then yields no value.
    private(set) var isComplete = true
    private let diagnostics: DiagnosticCollector

    /// Matches `list` to `parameters`. Labeled arguments may come in any order. A missing required
    /// argument is reported only when the rest of the list matched, so that a misspelt label
    /// yields one error, not two.
    init(
        _ list: LabeledExprListSyntax, parameters: [Parameter], callee: String, subject: String? = nil,
        at call: some SyntaxProtocol, diagnostics: DiagnosticCollector
    ) {
        self.callee = callee
        self.subject = subject ?? callee
        self.parameters = parameters
        self.diagnostics = diagnostics
        for (index, argument) in list.enumerated() {
            match(argument, isFirst: index == 0)
        }
        if isComplete {
            reportMissing(at: call)
        }
    }

    subscript(name: String) -> ExprSyntax? { values[name] }

    private mutating func match(_ argument: LabeledExprSyntax, isFirst: Bool) {
        guard let label = argument.label else {
            matchUnlabeled(argument, isFirst: isFirst)
            return
        }
        guard let parameter = parameters.first(where: { $0.name == label.text && $0.label != .omitted }) else {
            fail(
                .unexpectedArgument, "\(callee) has no argument `\(label.text):`\(suggestion(for: label.text))",
                at: label)
            return
        }
        guard values[parameter.name] == nil else {
            fail(.duplicate, "argument `\(parameter.name):` is given more than once", at: label)
            return
        }
        values[parameter.name] = argument.expression
    }

    private mutating func matchUnlabeled(_ argument: LabeledExprSyntax, isFirst: Bool) {
        if isFirst, let first = parameters.first, first.label != .required {
            values[first.name] = argument.expression
            return
        }
        let labels = parameters.filter { $0.label != .omitted }.map { "`\($0.name):`" }
        let message: String
        if parameters.isEmpty {
            message = "\(callee) takes no arguments"
        } else if labels.isEmpty || (parameters.count == 1 && !isFirst) {
            message = "\(callee) takes only one argument"
        } else {
            message = "this argument of \(callee) needs a label: \(list(labels))"
        }
        fail(.unexpectedArgument, message, at: argument)
    }

    private mutating func reportMissing(at call: some SyntaxProtocol) {
        for parameter in parameters where parameter.isRequired && values[parameter.name] == nil {
            let what: String
            switch parameter.label {
            case .required: what = "argument `\(parameter.name):`"
            case .optional: what = "argument `\(parameter.name)`"
            case .omitted: what = "its value"
            }
            fail(.missingArgument, "\(callee) is missing \(what)", at: call)
        }
    }

    private func suggestion(for label: String) -> String {
        let labels = parameters.filter { $0.label != .omitted }.map(\.name)
        if let close = closestName(to: label, in: labels) {
            return "; did you mean `\(close):`?"
        }
        return labels.isEmpty ? "" : "; expected \(list(labels.map { "`\($0):`" }))"
    }

    private mutating func fail(_ kind: DiagnosticKind, _ message: String, at node: some SyntaxProtocol) {
        diagnostics.error(kind, message, at: node)
        isComplete = false
    }

    // MARK: Typed values

    /// The subject of a message about one value: "Conv2D kernel", or just "steps" for `steps(3000)`.
    private func subject(of name: String) -> String {
        let parameter = parameters.first { $0.name == name }
        return parameter?.label == .omitted ? subject : "\(subject) \(name)"
    }

    /// The integer argument `name`, `fallback` when it is absent, nil when it is invalid (reported).
    func integer(_ name: String, in range: IntegerRange, default fallback: Int? = nil) -> Int? {
        guard let expression = values[name] else { return fallback }
        return ValueReader(diagnostics: diagnostics).integer(expression, subject(of: name), in: range)
    }

    func real(_ name: String, in range: RealRange, default fallback: Double? = nil) -> Double? {
        guard let expression = values[name] else { return fallback }
        return ValueReader(diagnostics: diagnostics).real(expression, subject(of: name), in: range)
    }

    func boolean(_ name: String, default fallback: Bool? = nil) -> Bool? {
        guard let expression = values[name] else { return fallback }
        return ValueReader(diagnostics: diagnostics).boolean(expression, subject(of: name))
    }
}

/// "a", "a or b", "a, b or c".
func list(_ items: [String]) -> String {
    guard items.count > 1 else { return items.first ?? "" }
    return items.dropLast().joined(separator: ", ") + " or " + items[items.count - 1]
}
