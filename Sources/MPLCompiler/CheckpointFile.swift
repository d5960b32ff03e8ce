// Reading tensors from a run's checkpoint (docs/RUNNER.md, "Checkpoints": an 8-byte little-endian header length,
// a JSON header with each tensor's dtype, shape and data_offsets, then the data), for `mplc export`. Only the
// tensors asked for are read, each checked, and the data's CRC-32 when the header has one (`data_crc32`, written by
// newer runners); a bad file is a CompileFailure naming it and the cause.

import Foundation
import MPLEmitC
import MPLIR

#if canImport(Glibc)
    import Glibc
#endif

/// An open checkpoint; the file is closed when the value goes away.
public final class CheckpointFile {
    public let path: String
    /// The header's `__metadata__` (all values strings; empty if there is none).
    public let metadata: [String: String]
    /// The tensors' header entries, by name.
    let entries: [String: Any]
    let descriptor: Int32
    let dataStart: Int
    let fileSize: Int

    /// The largest header: the limit of the runner and of the safetensors reference implementation.
    public static let maxHeaderBytes = 100 << 20

    /// Opens `path` and reads its header. The file must be a regular file (not a pipe, a device or a folder).
    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever. It changes nothing for files.
        descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CheckpointFile.failure(path, "cannot open it: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw CheckpointFile.failure(path, "not a regular file")
        }
        fileSize = Int(status.st_size)
        guard fileSize >= 8 else {
            close(descriptor)
            throw CheckpointFile.failure(path, "too short to be a checkpoint (\(fileSize) bytes)")
        }
        do {
            let lengthBytes = try CheckpointFile.read(descriptor, path, at: 0, count: 8)
            let length = lengthBytes.enumerated().reduce(UInt64(0)) {
                $0 | UInt64($1.element) << (8 * UInt64($1.offset))
            }
            guard length > 0, length <= UInt64(CheckpointFile.maxHeaderBytes), length <= UInt64(fileSize - 8) else {
                throw CheckpointFile.failure(path, "bad header length \(length) (the file has \(fileSize) bytes)")
            }
            dataStart = 8 + Int(length)
            let header = try CheckpointFile.read(descriptor, path, at: 8, count: Int(length))
            guard let object = try? JSONSerialization.jsonObject(with: Data(header)),
                var entries = object as? [String: Any]
            else {
                throw CheckpointFile.failure(path, "the header is not a JSON object")
            }
            let metadata = entries.removeValue(forKey: "__metadata__") ?? [String: String]()
            guard let strings = metadata as? [String: String] else {
                throw CheckpointFile.failure(path, "__metadata__ is not an object of strings")
            }
            self.metadata = strings
            self.entries = entries
            if let stored = strings["data_crc32"] {
                let crc = String(try CheckpointFile.crc32(descriptor, path, from: dataStart, to: fileSize), radix: 16)
                let now = String(repeating: "0", count: 8 - crc.count) + crc
                guard now == stored else {
                    throw CheckpointFile.failure(
                        path,
                        "the data does not match its checksum (CRC-32 \(now), the header says "
                            + "\(CSyntax.commentText(String(stored.prefix(16))))): the file is damaged")
                }
            }
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit { close(descriptor) }

    /// The values of `info.name` (`stored` if the file names it otherwise, e.g. `ema/...`): dtype F32, the
    /// shape of `info`, within the file, every value finite.
    public func tensor(_ info: TensorInfo, stored name: String? = nil) throws -> [Float] {
        let name = name ?? info.name
        guard let entry = entries[name] as? [String: Any] else {
            throw CheckpointFile.failure(path, "no tensor \(name)")
        }
        guard let dtype = entry["dtype"] as? String, dtype == "F32" else {
            throw CheckpointFile.failure(path, "tensor \(name) has dtype \(describe(entry["dtype"])), not F32")
        }
        guard let shape = entry["shape"] as? [Int], shape == info.shape.dims else {
            throw CheckpointFile.failure(
                path, "tensor \(name) has shape \(describe(entry["shape"])), the model's is \(info.shape.dims)")
        }
        let count = info.shape.count
        guard let offsets = entry["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0,
            offsets[1] - offsets[0] == 4 * count, offsets[1] <= fileSize - dataStart
        else {
            throw CheckpointFile.failure(
                path,
                "tensor \(name) has data_offsets \(describe(entry["data_offsets"])), not \(4 * count) "
                    + "bytes within the file's \(fileSize - dataStart) bytes of data")
        }
        let bytes = try CheckpointFile.read(descriptor, path, at: dataStart + offsets[0], count: 4 * count)
        let values = (0..<count).map { i in
            Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[4 * i + $1]) << (8 * UInt32($1)) })
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw CheckpointFile.failure(path, "tensor \(name) is not finite (element \(bad) = \(values[bad]))")
        }
        return values
    }

    /// The first way the file's tensors differ from the model's state table `state` as the runner's loader reads
    /// them (safetensors.c): every state tensor present, F32, with the table's shape; nothing else but
    /// `ema/student/...` beside its student tensor's shape. nil when they fit: the weights mean what the model says.
    public func layoutDifference(from state: [TensorInfo]) -> String? {
        func difference(_ name: String, _ info: TensorInfo) -> String? {
            guard let entry = entries[name] as? [String: Any] else { return "it has no tensor \(name)" }
            guard let dtype = entry["dtype"] as? String, dtype == "F32" else {
                return "its tensor \(name) has dtype \(describe(entry["dtype"])), not F32"
            }
            guard let shape = entry["shape"] as? [Int], shape == info.shape.dims else {
                return "its tensor \(name) has shape \(describe(entry["shape"])), the model's is \(info.shape.dims)"
            }
            return nil
        }
        // The model's tensors in its order first: the first difference named is the first layer that differs.
        if let first = state.lazy.compactMap({ difference($0.name, $0) }).first { return first }
        let table = Dictionary(state.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in entries.keys.sorted() where table[name] == nil {
            guard name.hasPrefix("ema/"), let info = table[String(name.dropFirst("ema/".count))],
                info.name.hasPrefix("student/")
            else { return "its tensor \(CSyntax.commentText(name)) is not one of the model's" }
            if let differs = difference(name, info) { return differs }
        }
        return nil
    }

    /// A header value in a message: a string or a list of integers as such, anything else by its kind.
    private func describe(_ value: Any?) -> String {
        switch value {
        case let text as String: return CSyntax.commentText(text)
        case let numbers as [Int]: return "\(numbers)"
        case nil: return "none"
        default:
            return "a JSON \(value is [Any] ? "list" : value is [String: Any] ? "object" : "value") of another kind"
        }
    }

    static func failure(_ path: String, _ cause: String) -> CompileFailure {
        CompileFailure("error: \(path): \(cause)")
    }

    /// CRC-32 (zlib's) of bytes [start, end) of the file: the runner's `data_crc32` of the data section.
    private static func crc32(_ descriptor: Int32, _ path: String, from start: Int, to end: Int) throws -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        var offset = start
        while offset < end {
            let count = min(1 << 20, end - offset)
            for byte in try read(descriptor, path, at: offset, count: count) {
                crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
            offset += count
        }
        return ~crc
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        (0..<8).reduce(UInt32(n)) { c, _ in c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    }

    private static func read(_ descriptor: Int32, _ path: String, at offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes {
                pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw failure(
                    path,
                    got == 0
                        ? "the file ends at byte \(offset + done), inside the data it declares"
                        : "cannot read it: \(String(cString: strerror(errno)))")
            }
            done += got
        }
        return bytes
    }
}
