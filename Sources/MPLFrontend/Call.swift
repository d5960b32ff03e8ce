import SwiftSyntax

/// A call as the DSL writes it: `Name(arguments)`, `Name { ... }` or `Name(arguments) { ... }`.
struct Call {
    let name: String
    let syntax: FunctionCallExprSyntax

    /// Nil unless the expression is a call of a plain name (not `a.b()`, `f<T>()` or `f(x:)()`).
    init?(_ expression: ExprSyntax) {
        guard let call = expression.as(FunctionCallExprSyntax.self),
            let callee = call.calledExpression.as(DeclReferenceExprSyntax.self),
            callee.argumentNames == nil
        else { return nil }
        name = callee.baseName.text
        syntax = call
    }

    var nameNode: ExprSyntax { syntax.calledExpression }
    var arguments: LabeledExprListSyntax { syntax.arguments }
    var block: ClosureExprSyntax? { syntax.trailingClosure }

    /// Reports `{ ... }` blocks where the callee takes none; returns whether there were any.
    func rejectBlocks(_ diagnostics: DiagnosticCollector) -> Bool {
        if let block = syntax.trailingClosure {
            diagnostics.error(.unsupported, "\(name)(...) does not take a `{ ... }` block", at: block)
            return true
        }
        if let extra = syntax.additionalTrailingClosures.first {
            diagnostics.error(.unsupported, "\(name)(...) does not take a `{ ... }` block", at: extra)
            return true
        }
        return false
    }
}

/// An enum-style value: `.name` or `.name(arguments)`, as in `.hard(.argmax)` or `.dotProduct`.
struct CaseValue {
    let name: String
    /// The argument list when written with parentheses.
    let arguments: LabeledExprListSyntax?

    init?(_ expression: ExprSyntax) {
        if let member = Self.implicitMember(expression) {
            name = member
            arguments = nil
        } else if let call = expression.as(FunctionCallExprSyntax.self),
            call.trailingClosure == nil, call.additionalTrailingClosures.isEmpty,
            let member = Self.implicitMember(call.calledExpression)
        {
            name = member
            arguments = call.arguments
        } else {
            return nil
        }
    }

    /// `name` for `.name` without a base; nil for anything else.
    private static func implicitMember(_ expression: ExprSyntax) -> String? {
        guard let member = expression.as(MemberAccessExprSyntax.self), member.base == nil,
            member.declName.argumentNames == nil
        else { return nil }
        return member.declName.baseName.text
    }
}

extension ClosureExprSyntax {
    /// The statements of a `{ ... }` block, after reporting a closure signature such as `{ x in ... }`,
    /// which the DSL does not use. Statements with syntax errors are left out: the parser already
    /// reported them. `isComplete` is false if anything was left out or rejected.
    func checkedStatements(_ diagnostics: DiagnosticCollector) -> (statements: [ExprSyntax], isComplete: Bool) {
        var isComplete = !hasError(outside: statements)
        if let signature, !signature.hasError {
            diagnostics.error(.unsupported, "a `{ ... }` block here takes no parameters", at: signature)
            isComplete = false
        }
        var expressions: [ExprSyntax] = []
        for statement in statements {
            if statement.hasError {
                isComplete = false
            } else if case .expr(let expression) = statement.item {
                expressions.append(expression)
            } else {
                diagnostics.error(.unsupported, "only calls are allowed in a `{ ... }` block", at: statement)
                isComplete = false
            }
        }
        return (expressions, isComplete)
    }
}
