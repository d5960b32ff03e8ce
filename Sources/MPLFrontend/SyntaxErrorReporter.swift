import SwiftParserDiagnostics
import SwiftSyntax

/// Reports the parser's syntax errors, with a limit.
///
/// swift-syntax's ParseDiagnosticsGenerator writes the best messages, but its cost grows with the
/// square of the number of errors (thousands of errors take minutes). Within a budget of error
/// sites it is used as is; beyond it, the first sites are described plainly and the rest are
/// summarized, as compilers do with an error limit.
enum SyntaxErrorReporter {
    /// Syntax errors shown per file, counting those of SourceScreen.
    static let limit = 50
    static let tooManyMessage = "too many syntax errors; the rest are not shown"

    struct SyntaxError {
        var position: AbsolutePosition
        var message: String
    }

    /// The tree's syntax errors, at most `budget` of them plus a "too many" summary.
    static func errors(in tree: SourceFileSyntax, budget: Int) -> [SyntaxError] {
        guard tree.hasError, budget > 0 else { return [] }
        let sites = errorSites(in: tree, upTo: budget + 1)
        guard sites.count > budget else {
            return ParseDiagnosticsGenerator.diagnostics(for: tree).map {
                SyntaxError(position: $0.position, message: $0.message)
            }
        }
        return sites.prefix(budget).map { SyntaxError(position: $0.position, message: $0.message) }
            + [SyntaxError(position: sites[budget].position, message: tooManyMessage)]
    }

    private struct Site {
        var position: AbsolutePosition
        var message: String
    }

    /// Missing tokens, unexpected text and malformed tokens in file order, at most `count` of them.
    /// An explicit stack walks only subtrees with errors, so neither depth nor size is a risk.
    private static func errorSites(in tree: SourceFileSyntax, upTo count: Int) -> [Site] {
        var sites: [Site] = []
        var stack = [Syntax(tree)]
        while sites.count < count, let node = stack.popLast() {
            if let unexpected = node.as(UnexpectedNodesSyntax.self) {
                sites.append(
                    Site(
                        position: unexpected.positionAfterSkippingLeadingTrivia,
                        message: "unexpected code `\(unexpected.snippet)`"))
            } else if let token = node.as(TokenSyntax.self) {
                if token.presence == .missing {
                    sites.append(
                        Site(
                            position: token.positionAfterSkippingLeadingTrivia,
                            message: "expected \(expectation(token))"))
                } else if token.tokenDiagnostic?.severity == .error {
                    sites.append(
                        Site(
                            position: token.positionAfterSkippingLeadingTrivia,
                            message: "malformed token `\(token.snippet)`"))
                }
            } else {
                // Reversed, so that popping visits children in file order.
                stack.append(contentsOf: node.children(viewMode: .all).filter(\.hasError).reversed())
            }
        }
        return sites
    }

    /// "`)`" for punctuation; "expression" for a placeholder such as `<#expression#>`.
    private static func expectation(_ token: TokenSyntax) -> String {
        let text = token.text
        if text.hasPrefix("<#") && text.hasSuffix("#>") && text.count > 4 {
            return String(text.dropFirst(2).dropLast(2))
        }
        return text.isEmpty ? "a name" : "`\(text)`"
    }
}
