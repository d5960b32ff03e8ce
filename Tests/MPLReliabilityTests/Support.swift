import Foundation
import MPLCompiler
@_exported import MPLTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Sanitizer reports in a program's output (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer).
func sanitizerReports(_ output: String) -> [String] {
    output.split(separator: "\n").map(String.init).filter {
        $0.contains("ERROR: AddressSanitizer") || $0.contains("ERROR: LeakSanitizer") || $0.contains("runtime error:")
            || $0.contains("SUMMARY: UndefinedBehaviorSanitizer")
    }
}

/// Environment for sanitized programs: distinctive exit codes, stack traces, and no recovery.
let sanitizerEnvironment = [
    "ASAN_OPTIONS": "exitcode=86:detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "exitcode=87:print_stacktrace=1:halt_on_error=1",
]

// MARK: - data

/// A data directory with the whole Fashion-MNIST training set and the first `testImages` test images
/// (uncompressed IDX), so that evaluations in tests are short. Made once per size.
enum SmallData {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var made: [Int: Result<String, Error>] = [:]

    static func directory(testImages: Int) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let result = made[testImages] { return try result.get() }
        let result = Result { try make(testImages: testImages) }
        made[testImages] = result
        return try result.get()
    }

    private static func make(testImages: Int) throws -> String {
        let directory = try temporaryDirectory("data-\(testImages)")
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
            let source = try FashionMNIST.path(name)
            try FileManager.default.createSymbolicLink(
                atPath: directory + "/" + URL(fileURLWithPath: source).lastPathComponent,
                withDestinationPath: source)
        }
        for (name, header, perItem) in [("t10k-images-idx3-ubyte", 16, 784), ("t10k-labels-idx1-ubyte", 8, 1)] {
            var bytes = try FashionMNIST.bytes(name)
            bytes = Array(bytes.prefix(header + testImages * perItem))
            let count = UInt32(testImages)
            bytes[4] = UInt8(count >> 24)
            bytes[5] = UInt8(count >> 16 & 0xFF)
            bytes[6] = UInt8(count >> 8 & 0xFF)
            bytes[7] = UInt8(count & 0xFF)
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        return directory
    }
}

/// The bytes of a metrics.jsonl without each line's wall-clock `"time"` (its last key), so that two runs' lines
/// compare equal when all they record but the time is; other files unchanged (a checkpoint holds no ',"time":"').
func withoutTimes(_ data: Data) -> Data {
    let text = String(decoding: data, as: UTF8.self)
    guard text.contains(",\"time\":\"") else { return data }
    return Data(text.replacing(#/,"time":"[^"]*"\}\n/#, with: "}\n").utf8)
}

// MARK: - file formats

/// Writes a version-1 NPY file ('<f4', '<i8' or '|u1'), C order.
func writeNPY(
    _ path: String, floats: [Float]? = nil, int64s: [Int64]? = nil, uint8s: [UInt8]? = nil, shape: [Int]
) throws {
    let descr = floats != nil ? "<f4" : uint8s != nil ? "|u1" : "<i8"
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + dict.utf8.count + 1) % 64 != 0 { dict += " " }
    dict += "\n"
    var bytes: [UInt8] =
        [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(dict.utf8.count & 0xFF), UInt8(dict.utf8.count >> 8)]
    bytes += Array(dict.utf8)
    if let floats { floats.withUnsafeBytes { bytes += $0 } }
    if let int64s { int64s.withUnsafeBytes { bytes += $0 } }
    if let uint8s { bytes += uint8s }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A checkpoint's metadata and tensors (F32 only, as the runner writes them).
struct Checkpoint {
    var metadata: [String: String]
    var tensors: [String: [Float]]

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count >= 8 else { throw TestFailure("\(path): too short") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header =
            try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) as? [String: Any] ?? [:]
        metadata = header["__metadata__"] as? [String: String] ?? [:]
        tensors = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let offsets = entry["data_offsets"] as? [Int] else { continue }
            let slice = data.subdata(in: 8 + headerLength + offsets[0]..<8 + headerLength + offsets[1])
            tensors[name] = slice.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
    }

    var allFinite: Bool { tensors.values.allSatisfy { $0.allSatisfy(\.isFinite) } }
}

/// An integer macro of the model.h next to a runner binary (Runners writes them together).
func modelMacro(_ runner: String, _ name: String) throws -> Int {
    let header = try String(
        contentsOfFile: URL(fileURLWithPath: runner).deletingLastPathComponent().path + "/model.h", encoding: .utf8)
    for line in header.split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count >= 3, parts[0] == "#define", parts[1] == name, let value = Int(parts[2]) { return value }
    }
    throw TestFailure("model.h has no integer macro \(name)")
}
