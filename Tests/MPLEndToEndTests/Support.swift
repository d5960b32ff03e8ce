import Foundation
import MPLAutodiff
import MPLCompiler
import MPLEmitC
import MPLIR
import MPLLower
import MPLModel
@_exported import MPLTestSupport

func writeFloats(_ values: [Float], to path: String) throws {
    try values.withUnsafeBufferPointer { try Data(buffer: $0).write(to: URL(fileURLWithPath: path)) }
}

func readFloats(_ path: String) throws -> [Float] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

/// The worst violation of |c − ref| ≤ atol + rtol·|ref| over a tensor, as a multiple of the allowance (≤ 1 passes).
func worstViolation(_ c: ArraySlice<Float>, _ reference: [Double], atol: Double, rtol: Double) -> (
    ratio: Double, index: Int
) {
    var worst = (ratio: 0.0, index: -1)
    for (i, (a, b)) in zip(c, reference).enumerated() {
        let ratio = abs(Double(a) - b) / (atol + rtol * abs(b))
        if !(ratio <= worst.ratio) { worst = (ratio.isNaN ? .infinity : ratio, i) }
    }
    return worst
}
