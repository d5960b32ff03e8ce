import Foundation
import MPLCompiler
import Testing

/// The scratch folders of the trainer's build, the ONNX export and the fuzzer's workers are made in the machine's
/// shared temporary directory (docs/RELIABILITY.md, "Untrusted model files").
@Suite("Temporary folders")
struct TemporaryDirectoryTests {
    @Test("Each folder is new, empty and only its owner's (mode 0700)")
    func privateAndNew() throws {
        let parent = try temporaryDirectory("scratch-parent")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let first = try TemporaryDirectory.make(prefix: "mplc-objects-", in: parent)
        let second = try TemporaryDirectory.make(prefix: "mplc-objects-", in: parent + "/")
        #expect(first != second)
        for folder in [first, second] {
            #expect(folder.hasPrefix(parent + "/mplc-objects-"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
            let attributes = try FileManager.default.attributesOfItem(atPath: folder)
            #expect(attributes[.type] as? FileAttributeType == .typeDirectory)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        }
    }

    @Test("A parent that cannot hold it: an error naming the folder and the cause, and what to do")
    func unusableParent() throws {
        let parent = try temporaryDirectory("scratch-missing") + "/absent"
        defer { try? FileManager.default.removeItem(atPath: (parent as NSString).deletingLastPathComponent) }
        do {
            _ = try TemporaryDirectory.make(prefix: "mplc-onnx-", in: parent)
            Issue.record("made a folder in a parent that does not exist")
        } catch let failure as CompileFailure {
            #expect(failure.description.contains(parent))
            #expect(failure.description.contains("No such file or directory"))
            #expect(failure.description.contains("TMPDIR"))
        }
    }
}
