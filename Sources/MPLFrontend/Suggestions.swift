/// The candidate closest to a misspelt `name`, if it is close enough to be a likely typo
/// (ignoring case, an edit distance of 1, or 2 for names of six letters or more). Used for
/// "did you mean ...?" hints.
func closestName(to name: String, in candidates: [String]) -> String? {
    // Long names are never typos of the DSL's short names; skipping them keeps the cost bounded.
    guard name.count <= 40 else { return nil }
    let lowered = Array(name.lowercased())
    let allowed = name.count >= 6 ? 2 : 1
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, Array(candidate.lowercased()))
        if distance <= allowed, distance < (best?.distance ?? .max) {
            best = (candidate, distance)
        }
    }
    return best?.name
}

/// Levenshtein distance with a single rolling row.
private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var diagonal = row[0]
        row[0] = i
        for j in 1...b.count {
            let above = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
            diagonal = above
        }
    }
    return row[b.count]
}
