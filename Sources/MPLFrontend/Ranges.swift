/// The values an integer setting accepts, described in words for error messages.
enum IntegerRange: Sendable {
    case atLeast(Int)
    case between(Int, Int)

    /// The bound for every size (units, filters, channels, kernels, strides, batches). It keeps
    /// shape arithmetic such as height × width × channels far from Int overflow.
    static let size = IntegerRange.between(1, maxSize)
    static let maxSize = 1_000_000
    static let count = IntegerRange.atLeast(0)
    static let positive = IntegerRange.atLeast(1)

    func contains(_ value: Int) -> Bool {
        switch self {
        case .atLeast(let low): return value >= low
        case .between(let low, let high): return low <= value && value <= high
        }
    }

    var description: String {
        switch self {
        case .atLeast(let low): return "at least \(low)"
        case .between(let low, let high): return "between \(low) and \(high)"
        }
    }
}

/// The values a real-valued setting accepts: an interval whose ends may be open, closed or absent.
struct RealRange: Sendable {
    var lower: Double?
    var lowerIncluded: Bool
    var upper: Double?
    var upperIncluded: Bool

    static let positive = RealRange(lower: 0, lowerIncluded: false, upper: nil, upperIncluded: false)
    static let nonNegative = RealRange(lower: 0, lowerIncluded: true, upper: nil, upperIncluded: false)
    /// [0, 1]
    static let probability = RealRange(lower: 0, lowerIncluded: true, upper: 1, upperIncluded: true)
    /// [0, 1): rates where 1 would drop or smooth away everything, and momenta where 1 never decays.
    static let fraction = RealRange(lower: 0, lowerIncluded: true, upper: 1, upperIncluded: false)
    /// (0, 1)
    static let openUnit = RealRange(lower: 0, lowerIncluded: false, upper: 1, upperIncluded: false)

    func contains(_ value: Double) -> Bool {
        guard value.isFinite else { return false }
        if let lower, lowerIncluded ? value < lower : value <= lower { return false }
        if let upper, upperIncluded ? value > upper : value >= upper { return false }
        return true
    }

    var description: String {
        switch (lower, upper) {
        case (let lower?, let upper?):
            return "in \(lowerIncluded ? "[" : "(")\(format(lower)), \(format(upper))\(upperIncluded ? "]" : ")")"
        case (let lower?, nil):
            return lowerIncluded ? "at least \(format(lower))" : "greater than \(format(lower))"
        case (nil, let upper?):
            return upperIncluded ? "at most \(format(upper))" : "less than \(format(upper))"
        case (nil, nil):
            return "finite"
        }
    }

    /// Bounds are small round numbers; print 1.0 as "1".
    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
