import SwiftSyntax

/// Reads one literal value and reports a wrong type or an out-of-range value at the literal.
struct ValueReader {
    let diagnostics: DiagnosticCollector

    func integer(_ expression: ExprSyntax, _ subject: String, in range: IntegerRange) -> Int? {
        guard let number = NumberLiteral(expression), number.isInteger else {
            diagnostics.error(.wrongType, "\(subject) must be an integer; got `\(expression.snippet)`", at: expression)
            return nil
        }
        guard let value = number.integer, range.contains(value) else {
            diagnostics.error(
                .outOfRange, "\(subject) must be \(range.description); got \(number.text)", at: expression)
            return nil
        }
        return value
    }

    func real(_ expression: ExprSyntax, _ subject: String, in range: RealRange) -> Double? {
        guard let number = NumberLiteral(expression) else {
            diagnostics.error(.wrongType, "\(subject) must be a number; got `\(expression.snippet)`", at: expression)
            return nil
        }
        guard let value = number.real, range.contains(value) else {
            diagnostics.error(
                .outOfRange, "\(subject) must be \(range.description); got \(number.text)", at: expression)
            return nil
        }
        return value
    }

    func boolean(_ expression: ExprSyntax, _ subject: String) -> Bool? {
        guard let literal = expression.as(BooleanLiteralExprSyntax.self) else {
            diagnostics.error(
                .wrongType, "\(subject) must be true or false; got `\(expression.snippet)`", at: expression)
            return nil
        }
        return literal.literal.tokenKind == .keyword(.true)
    }
}
