import Foundation
import MPLFrontend
import MPLModel
import Testing

/// docs/DSL.md is pasted into the README: its examples must parse and its error table must be complete.
@Suite struct DocumentationTests {
    private let text: String

    init() throws {
        text = try String(contentsOfFile: Repository.root + "/docs/DSL.md", encoding: .utf8)
    }

    @Test func everySwiftExampleInTheReferenceParses() throws {
        let blocks = text.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.count == 2)
        for block in blocks {
            #expect(parsedModel(block, fileName: "example.swiftdsl") != nil)
        }
        let complete = try #require(parsedModel(blocks[0]))
        #expect(complete.teacher.layers.count == 11 && complete.student.layers.count == 4)
        #expect(complete.recipe.steps == 3000)
    }

    /// The README shows the default model file as "a complete example": it must be that file (but for its comments
    /// and the student it abbreviates), or a change of the file (its steps, say) leaves the README describing
    /// another model.
    @Test func theReadmeShowsTheDefaultModelFile() throws {
        let readme = try String(contentsOfFile: Repository.root + "/README.md", encoding: .utf8)
        let file = try String(contentsOfFile: Repository.root + "/Examples/fashion_cnn.swiftdsl", encoding: .utf8)
        let shown = try #require(
            readme.components(separatedBy: "(`Examples/fashion_cnn.swiftdsl`):\n\n```swift\n").dropFirst().first?
                .components(separatedBy: "```")[0])
        let abbreviated = "let student = Sequential { /* the same layers without Dropout */ }\n"
        let student = try #require(file.firstRange(of: #/let student = Sequential \{\n(.*\n)*?\}\n/#))
        #expect(shown.contains(abbreviated))
        let completed = shown.replacingOccurrences(of: abbreviated, with: String(file[student]))
        let readmeModel = try #require(parsedModel(completed, fileName: "fashion_cnn.swiftdsl"))
        let fileModel = try #require(parsedModel(file, fileName: "fashion_cnn.swiftdsl"))
        #expect(readmeModel == fileModel)
        // The abbreviation is honest: the student is the teacher without its Dropout.
        #expect(fileModel.student.layers == fileModel.teacher.layers.filter { $0.kind != .dropout })
    }

    /// The layer table is the reference a model author reads: a layer it leaves out is one nobody can find.
    @Test func theLayerTableListsEveryLayer() {
        for kind in Layer.Kind.allCases {
            // `Dense(units)`, `Residual { layers }`
            let row = ["(", " {"].contains { text.contains("| `\(kind.name)" + $0) }
            #expect(row, "\(kind.name) is missing from the layer table of docs/DSL.md")
        }
    }

    @Test func theErrorTableListsEveryID() {
        for kind in DiagnosticKind.allCases {
            #expect(text.contains("| \(kind.rawValue) |"), "\(kind.rawValue) is missing from docs/DSL.md")
        }
    }
}
