// The one seeded generator of the Swift side: test data, gradient-check directions, fuzzing mutants.

/// SplitMix64: tiny, fast and fully determined by its seed, so a failure reproduces from it. (The runner's C
/// generator, Templates/runner/rng.c, is the same function.)
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [lower, upper), from the top 53 bits (the same numbers on every platform and Swift version).
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * Double(next() >> 11) * 0x1p-53
    }

    public mutating func vector(_ count: Int, in range: ClosedRange<Double> = -1...1) -> [Double] {
        (0..<count).map { _ in uniform(range) }
    }

    public mutating func floats(_ count: Int, in range: ClosedRange<Double> = -1...1) -> [Float] {
        (0..<count).map { _ in Float(uniform(range)) }
    }
}
