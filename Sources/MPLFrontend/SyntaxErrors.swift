import SwiftSyntax

extension SyntaxProtocol {
    /// Whether this node has a syntax error anywhere except inside `excluded`, a descendant (or nil).
    ///
    /// The front end checks a construct whose own text is intact even when a nested block is broken,
    /// so that a missing parenthesis in one layer does not hide a misspelt layer elsewhere in the
    /// same network. Only the path from this node down to `excluded` is walked.
    func hasError(outside excluded: (some SyntaxProtocol)?) -> Bool {
        guard hasError else { return false }
        guard let excluded else { return true }
        let path = Set(sequence(first: Syntax(excluded), next: { $0.parent }).map(\.id))
        guard path.contains(id) else { return true }
        var node = Syntax(self)
        while node.id != excluded.id {
            var next: Syntax?
            for child in node.children(viewMode: .all) {
                if path.contains(child.id) {
                    next = child
                } else if child.hasError {
                    return true
                }
            }
            guard let next else { return false }
            node = next
        }
        return false
    }
}
