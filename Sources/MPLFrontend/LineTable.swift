/// Line starts of a source text, so that UTF-8 offsets become 1-based line and column and lines can
/// be quoted. Lines end at "\n", "\r\n" or "\r", as in swift-syntax; columns count UTF-8 bytes.
struct LineTable {
    let bytes: [UInt8]
    /// UTF-8 offset of the first byte of each line; never empty.
    private let lineStarts: [Int]

    init(_ source: String) {
        bytes = Array(source.utf8)
        var starts = [0]
        var index = 0
        while index < bytes.count {
            let isCRLF =
                bytes[index] == UInt8(ascii: "\r") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n")
            if isCRLF {
                index += 1
            }
            if bytes[index] == UInt8(ascii: "\n") || bytes[index] == UInt8(ascii: "\r") {
                starts.append(index + 1)
            }
            index += 1
        }
        lineStarts = starts
    }

    func location(ofOffset offset: Int) -> (line: Int, column: Int) {
        let clamped = min(max(offset, 0), bytes.count)
        // The last line start at or before the offset.
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= clamped {
                low = middle
            } else {
                high = middle - 1
            }
        }
        return (low + 1, clamped - lineStarts[low] + 1)
    }

    /// The bytes of a 1-based line without its line break; empty for a line that does not exist.
    func line(_ number: Int) -> ArraySlice<UInt8> {
        guard number >= 1 && number <= lineStarts.count else { return [] }
        var end = number < lineStarts.count ? lineStarts[number] : bytes.count
        while end > lineStarts[number - 1]
            && (bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r"))
        {
            end -= 1
        }
        return bytes[lineStarts[number - 1]..<end]
    }
}
