import Foundation
import Testing

/// Names and paths from outside reach the generated C only as inert text (issue 15): a model file named to
/// inject code is refused, a directory path that closes a comment stays inside it, and `..` writes nothing
/// outside generated/.
@Suite("Hostile names and paths")
struct HostileNameTests {
    /// The exploit: a file name that closes MPLC_MODEL_NAME's string and adds a constructor.
    static let exploitName =
        "m\"\nint system(const char*); __attribute__((constructor)) static void p(void){system(\"id>PWNED.txt\");}\n#define Q \""

    @Test("mplc train of a file named to inject code: refused with E014 before anything is built or run")
    func exploitFileNameIsRefused() throws {
        let work = try temporaryDirectory("exploit-name")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let file = work + "/" + Self.exploitName + ".swiftdsl"
        try FileManager.default.copyItem(atPath: exampleMLP, toPath: file)
        let result = try run(
            [mplcBinary, "train", file, "--steps", "1", "--finetune-steps", "0", "--data", fashionMNIST],
            directory: work)
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("rename the file [E014]"), "\(result.output)")
        #expect(result.output.contains(work + "/m\""), "the message names the file: \(result.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/PWNED.txt"))
        #expect(!FileManager.default.fileExists(atPath: work + "/.build-mplc"))
    }

    @Test("mplc of a file named ...swiftdsl (model name ..): refused, nothing written outside generated/")
    func dotDotNameWritesNothing() throws {
        let work = try temporaryDirectory("dotdot")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work + "/models", withIntermediateDirectories: true)
        for name in ["...swiftdsl", "..swiftdsl"] {
            try FileManager.default.copyItem(atPath: exampleMLP, toPath: work + "/models/" + name)
            let result = try run([mplcBinary, "models/" + name], directory: work)
            #expect(result.status == 1, "\(result.output)")
            #expect(
                result.output.contains("models/\(name):1:1: error: ") && result.output.contains("[E014]"),
                "\(result.output)")
        }
        let written = FileManager.default.enumerator(atPath: work)?.compactMap { $0 as? String } ?? []
        #expect(written.sorted() == ["models", "models/...swiftdsl", "models/..swiftdsl"])
    }

    /// A directory whose name ends in `*` puts `*/` into the regenerate command; the next directory holds code
    /// and the one after reopens a comment, so the old output compiled a constructor into model.c.
    @Test("A path that closes the comment of the regenerate command stays inside it; the C compiles and runs nothing")
    func hostileDirectoryStaysInTheComment() throws {
        let work = try temporaryDirectory("hostile-dir")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let code =
            "\nint system(const char*); __attribute__((constructor)) static void p(void){system(\"id>PWNED.txt\");}\n"
        let directory = work + "/d*/" + code + "/*x??/"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: exampleMLP, toPath: directory + "fashion_mlp.swiftdsl")
        let result = try run([mplcBinary, directory + "fashion_mlp.swiftdsl", "-o", work + "/out"], directory: work)
        #expect(result.status == 0, "\(result.output)")
        for file in ["model.h", "model.c", "model.ir"] {
            let text = try String(contentsOfFile: work + "/out/" + file, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let fromPath = lines.filter { $0.contains("PWNED") || $0.contains("d* /") }
            #expect(fromPath.count == 1, "\(file): \(fromPath)")
            #expect(
                fromPath.allSatisfy { $0.hasPrefix(file == "model.ir" ? "//   mplc " : " *   mplc ") },
                "\(file): \(fromPath)")
        }
        // Built and run as a program: the path must add no code (no constructor runs, nothing is written).
        try "#include \"model.h\"\nint main(void) { return MPLC_CLASSES == 10 ? 0 : 1; }\n"
            .write(toFile: work + "/out/main.c", atomically: true, encoding: .utf8)
        let build = try run(
            [
                "cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "out/model.c", "out/main.c", "-o",
                "out/main", "-lopenblas", "-lm",
            ], directory: work)
        #expect(build.status == 0, "\(build.output)")
        let program = try run([work + "/out/main"], directory: work)
        #expect(program.status == 0, "\(program.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/PWNED.txt"))
    }
}
