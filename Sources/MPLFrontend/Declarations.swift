import SwiftSyntax

/// A top-level `let NAME = VALUE`, before its value is interpreted.
struct Declaration {
    let name: String
    let nameNode: TokenSyntax
    let value: ExprSyntax

    /// Nil, after reporting why, unless `item` is a plain `let NAME = VALUE`. `declaredName` is
    /// set whenever a name can be made out, so that later references to it are not reported as
    /// undefined. Syntax errors are not reported here: the parser has reported them.
    init?(_ item: CodeBlockItemSyntax, diagnostics: DiagnosticCollector, declaredName: inout String?) {
        guard case .decl(let decl) = item.item, let variable = decl.as(VariableDeclSyntax.self) else {
            if !item.hasError {
                diagnostics.error(
                    .unsupported, "only `let NAME = ...` declarations are allowed at the top level", at: item)
            }
            return nil
        }
        let binding = variable.bindings.first
        guard let identifier = binding?.pattern.as(IdentifierPatternSyntax.self)?.identifier,
            identifier.presence == .present
        else {
            if !item.hasError {
                diagnostics.error(
                    .unsupported, "declare one plain name: `let NAME = ...`",
                    at: binding.map { Syntax($0.pattern) } ?? Syntax(variable))
            }
            return nil
        }
        declaredName = identifier.text
        guard let binding, let initializer = binding.initializer else {
            if !item.hasError {
                diagnostics.error(
                    .unsupported, "`\(identifier.text)` needs a value: `let \(identifier.text) = ...`", at: identifier)
            }
            return nil
        }
        // Errors inside a `{ ... }` block are judged statement by statement later.
        let block = Call(initializer.value)?.block
        guard !item.hasError(outside: block), Self.isPlain(variable, binding, diagnostics) else { return nil }
        name = identifier.text
        nameNode = identifier
        value = initializer.value
    }

    /// The DSL's `let` has no modifiers, type annotation, accessors or second binding. (Attributes
    /// and most modifiers never get here: `@` and Swift keywords are rejected before parsing.)
    private static func isPlain(
        _ variable: VariableDeclSyntax, _ binding: PatternBindingSyntax, _ diagnostics: DiagnosticCollector
    ) -> Bool {
        let unsupported: (node: Syntax, message: String)?
        if variable.bindingSpecifier.tokenKind != .keyword(.let) {
            unsupported = (Syntax(variable.bindingSpecifier), "use `let`; declarations cannot change")
        } else if let modifier = variable.modifiers.first {
            unsupported = (Syntax(modifier), "modifiers are not supported")
        } else if variable.bindings.count > 1, let second = variable.bindings.dropFirst().first {
            unsupported = (Syntax(second), "declare one name per `let`")
        } else if let annotation = binding.typeAnnotation {
            unsupported = (Syntax(annotation), "type annotations are not supported; write `let NAME = ...`")
        } else if let accessors = binding.accessorBlock {
            unsupported = (Syntax(accessors), "accessors are not supported")
        } else {
            unsupported = nil
        }
        if let unsupported {
            diagnostics.error(.unsupported, unsupported.message, at: unsupported.node)
        }
        return unsupported == nil
    }
}
