#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reading a model file as raw bytes, so that invalid UTF-8 is decoded by the caller, not refused.
enum SourceFile {
    struct ReadError: Error {
        var reason: String
    }

    /// The largest model file: 1 MiB. The examples are a few KiB; the fuzzing corpus's largest file, 200 KB.
    /// A larger file (or /dev/zero) is refused after reading at most one byte more, never read whole.
    static let sizeLimit = 1 << 20

    static func readBytes(path: String) -> Result<[UInt8], ReadError> {
        // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever. It changes nothing for files.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(currentError()) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let error = currentError()
            close(descriptor)
            return .failure(error)
        }
        let kind = status.st_mode & S_IFMT
        guard kind != S_IFIFO && kind != S_IFSOCK else {
            close(descriptor)
            return .failure(ReadError(reason: "it is a pipe or a socket, not a file"))
        }
        guard let file = fdopen(descriptor, "rb") else {
            let error = currentError()
            close(descriptor)
            return .failure(error)
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let wanted = min(chunk.count, sizeLimit + 1 - bytes.count)
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, wanted, file) }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > sizeLimit {
                return .failure(
                    ReadError(reason: "it is larger than 1 MiB (\(sizeLimit) bytes), the most a model file may have"))
            }
            if count < wanted {
                // A short read is either the end of the file or an error such as EISDIR.
                return ferror(file) != 0 ? .failure(currentError()) : .success(bytes)
            }
        }
    }

    private static func currentError() -> ReadError {
        ReadError(reason: String(cString: strerror(errno)))
    }
}
