import Foundation
import MPLCompiler
import MPLModel
import Testing

struct CrossCheckCase: CustomStringConvertible, Sendable {
    var file: String
    var pseudoLabels: PseudoLabels
    var feedback: Feedback
    var view: AugmentedView = .strongView
    var description: String { "\(file) \(pseudoLabels) \(feedback)" + (view == .strongView ? "" : " \(view)") }
}

@Suite("Generated C against the independent JAX reference", .serialized)
struct JAXCrossCheckTests {
    @Test(
        "Full-size examples: every state tensor within 1e-4 (norm-wise relative) or, with BatchNorm, twice JAX float32's worst",
        arguments: ["fashion_mlp.swiftdsl", "fashion_cnn.swiftdsl"].flatMap { file in
            [
                CrossCheckCase(file: file, pseudoLabels: .hardArgmax, feedback: .dotProduct),
                CrossCheckCase(file: file, pseudoLabels: .hardArgmax, feedback: .lossDifference),
                CrossCheckCase(file: file, pseudoLabels: .soft(temperature: 1), feedback: .dotProduct),
            ]
        } + [
            // BatchNorm (its running averages included) and residual blocks with projection shortcuts.
            CrossCheckCase(file: "fashion_wrn.swiftdsl", pseudoLabels: .hardArgmax, feedback: .dotProduct),
            // Pseudo labels from the teacher's weak view.
            CrossCheckCase(
                file: "fashion_mlp.swiftdsl", pseudoLabels: .hardArgmax, feedback: .dotProduct, view: .weakView),
            CrossCheckCase(
                file: "fashion_mlp.swiftdsl", pseudoLabels: .soft(temperature: 1), feedback: .dotProduct,
                view: .weakView),
        ])
    func oneStep(testCase: CrossCheckCase) throws {
        var model = try Compiler.load(path: repositoryRoot + "/Examples/" + testCase.file).get()
        model.recipe.pseudoLabels = testCase.pseudoLabels
        model.recipe.feedback = testCase.feedback
        model.recipe.pseudoLabelsFrom = testCase.view
        model.recipe.teacherGradientParts = true  // so that the parts' norms are compared too
        let directory = try buildTrainer(model)
        let output = try shell([
            "python3", repositoryRoot + "/Tests/reference/crosscheck.py", "--runner", directory + "/mplc-run",
            "--spec", directory + "/model.json", "--work", directory + "/crosscheck", "--steps", "2",
        ])
        let summary = try #require(output.split(separator: "\n").last.map(String.init))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
        #expect(json["failures"] as? Int == 0, "\(output)")
        #expect((json["tensors_changed"] as? Int ?? 0) > 0)
        print("\(testCase): \(summary)")
    }
}
