// A PNG writer for tests that hand image files to mplc (export, predict): no image library needed.

/// A PNG of 8-bit grey pixels (row-major), with the image data in stored (uncompressed) deflate blocks.
public func png(grey pixels: [UInt8], width: Int, height: Int) -> [UInt8] {
    func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }
    var scanlines: [UInt8] = []
    for y in 0..<height { scanlines += [0] + pixels[(y * width)..<((y + 1) * width)] }  // filter type 0 per row
    var zlib: [UInt8] = [0x78, 0x01]
    var start = 0
    repeat {
        let length = min(65_535, scanlines.count - start)
        let last: UInt8 = start + length == scanlines.count ? 1 : 0
        zlib += [last, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
        zlib += scanlines[start..<(start + length)]
        start += length
    } while start < scanlines.count
    var (a, b): (UInt32, UInt32) = (1, 0)
    for byte in scanlines {
        a = (a + UInt32(byte)) % 65_521
        b = (b + a) % 65_521
    }
    zlib += bigEndian(b << 16 | a)
    let header = bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 0, 0, 0, 0]  // 8 bits, grey
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", zlib)
        + chunk("IEND", [])
}
