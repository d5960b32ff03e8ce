// SHA-256 against its standard's vectors and sha256sum, and the two escapers that every name or path from
// outside the compiler goes through on its way into C (CSyntax.stringLiteral, CSyntax.commentText).

import Foundation
import MPLEmitC
import Testing

@Suite struct SHA256Tests {
    /// FIPS 180-4 / NIST CSRC examples (SHA256.pdf, SHA2_Additional.pdf).
    @Test func fipsVectors() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            SHA256.hex(
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
            )
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(
            SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every length around the padding's block boundaries (55, 56, 63, 64 ... bytes), fed whole and in uneven
    /// pieces, against the system's sha256sum.
    @Test func matchesSha256sum() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mplc-sha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        let lengths = [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4099]
        var names: [String] = []
        var expected: [String] = []
        for length in lengths {
            let bytes = (0..<length).map { _ -> UInt8 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
            try Data(bytes).write(to: directory.appendingPathComponent("\(length).bin"))
            names.append("\(length).bin")
            var hasher = SHA256.Hasher()
            var start = 0
            var piece = 1
            while start < bytes.count {
                let end = min(bytes.count, start + piece)
                hasher.update(bytes[start..<end])
                (start, piece) = (end, piece * 3 + 1)
            }
            let whole = SHA256.hex(bytes)
            #expect(hasher.finalizeHex() == whole, "pieces and whole differ at length \(length)")
            expected.append("\(whole)  \(length).bin")
        }
        let output = try runCommand(["sha256sum"] + names, in: directory)
        #expect(output.split(separator: "\n").map(String.init) == expected)
    }
}

@Suite struct CTextEscaping {
    /// Names a hostile model file or directory could have: code after a quote and a newline (the issue's
    /// exploit), comment terminators and openers, a trigraph backslash at the end, a backslash-newline,
    /// a carriage return, NUL, non-ASCII and a Unicode line separator.
    static let hostile: [String] = [
        "m\"\nint system(const char*); __attribute__((constructor)) static void p(void){system(\"id>PWNED.txt\");}\n#define Q \"",
        "dir*/ int x = 1; /*", "a/*b*/c", "*/*/", "//x", "tail??/", "tail\\", "back\\\nslash", "cr\rlf\r\n",
        "nul\u{0}after", "caf\u{e9} \u{2028} line", "??=??(??)??<??>??'??!??-", "\"\"\"", "'",
    ]

    /// Every hostile text as a string literal compiles and reads back byte for byte; as comment text inside
    /// `/* */` and after `//` it produces no code (the program still prints only the literals), under the
    /// flags the runner is built with plus -Wtrigraphs and -pedantic.
    @Test func hostileTextStaysInert() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mplc-escape-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var source = "#include <stdio.h>\n"
        for (index, text) in Self.hostile.enumerated() {
            let comment = CSyntax.commentText(text)
            #expect(
                !comment.contains("\n") && !comment.contains("\r") && !comment.contains("*/") && !comment.contains("/*")
            )
            #expect(!comment.hasSuffix("\\") && !comment.contains("??"))
            source += "/* \(comment) */\n// \(comment)\n"
            source += "static const char s\(index)[] = \(CSyntax.stringLiteral(text));\n"
        }
        source += "int main(void) {\n"
        for index in Self.hostile.indices {
            source += "    fwrite(s\(index), 1, sizeof s\(index) - 1, stdout); fputc('|', stdout);\n"
        }
        source += "    return 0;\n}\n"
        try source.write(to: directory.appendingPathComponent("t.c"), atomically: true, encoding: .utf8)
        try runCommand(
            ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-pedantic", "t.c", "-o", "t"],
            in: directory)
        let printed = try runCommand(["./t"], in: directory)
        #expect(printed == Self.hostile.map { $0 + "|" }.joined())
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("PWNED.txt").path))
    }

    @Test func commentTextKeepsOrdinaryPathsReadable() {
        #expect(
            CSyntax.commentText("mplc train Examples/fashion_mlp.swiftdsl -o /tmp/x y")
                == "mplc train Examples/fashion_mlp.swiftdsl -o /tmp/x y")
        #expect(CSyntax.commentText("a\nb") == "a\\x0ab")
        #expect(CSyntax.commentText("x*/y/*z") == "x* /y/ *z")
    }
}
