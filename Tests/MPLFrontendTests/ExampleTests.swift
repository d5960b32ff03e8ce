import MPLFrontend
import MPLModel
import Testing

@Suite struct ExampleTests {
    @Test func fashionMLPParsesToTheExpectedModel() throws {
        let model = try Frontend.parseFile(path: Repository.example("fashion_mlp.swiftdsl")).get()
        let mlp = [Layer.flatten, .dense(units: 256), .activation(.relu), .dense(units: 10)]
        #expect(model.name == "fashion_mlp")
        #expect(model.input == .image(channels: 1, height: 28, width: 28))
        #expect(model.classes == 10)
        #expect(model.teacher == Network(name: "teacher", layers: mlp))
        #expect(model.student == Network(name: "student", layers: mlp))
        #expect(model.recipe == expectedExampleRecipe())
    }

    @Test func fashionCNNParsesToTheExpectedModel() throws {
        let model = try Frontend.parseFile(path: Repository.example("fashion_cnn.swiftdsl")).get()
        let features: [Layer] = [
            .conv2D(filters: 16, kernel: 3, stride: 1, padding: 1), .activation(.relu), .maxPool2D(size: 2, stride: 2),
            .conv2D(filters: 32, kernel: 3, stride: 1, padding: 1), .activation(.relu), .maxPool2D(size: 2, stride: 2),
            .flatten, .dense(units: 128), .activation(.relu),
        ]
        #expect(model.name == "fashion_cnn")
        #expect(model.teacher.layers == features + [.dropout(rate: 0.2), .dense(units: 10)])
        #expect(model.student.layers == features + [.dense(units: 10)])
        #expect(try model.teacher.shapes(input: model.input.featureShape).get().last == .vector(10))
        // The CNN file leaves momentum, nesterov and weight decay out: they keep the paper's values.
        // Its budget is the default run's: 20,000 steps fit in 15 minutes of 2 cores (issue 21).
        var expected = expectedExampleRecipe()
        expected.steps = 20_000
        #expect(model.recipe == expected)
    }

    /// Both examples set the same recipe (but the CNN's step count); everything they leave out is the paper's default.
    private func expectedExampleRecipe() -> Recipe {
        var recipe = Recipe()
        recipe.labeledBatch = 32
        recipe.unlabeledRatio = 4
        recipe.uda.weight = 1
        recipe.uda.rampSteps = 500
        recipe.labelSmoothing = 0.1
        recipe.teacherOptimizer.warmupSteps = 100
        recipe.studentOptimizer.warmupSteps = 100
        recipe.studentWaitSteps = 200
        recipe.steps = 3000
        recipe.finetune.steps = 300
        recipe.finetune.learningRate = 0.005
        recipe.finetune.batch = 256
        return recipe
    }

    @Test func omittedSettingsTakeThePapersDefaults() throws {
        let recipe = try #require(parsedModel(smallModel())).recipe
        #expect(recipe.labeledBatch == 128)
        #expect(recipe.unlabeledRatio == 7)
        #expect(recipe.pseudoLabels == .hardArgmax)
        #expect(recipe.uda.temperature == 0.7 && recipe.uda.threshold == 0.6 && recipe.uda.weight == 8)
        #expect(recipe.teacherOptimizer.learningRate == 0.05 && recipe.teacherOptimizer.rule == .sgd(SGD()))
        #expect(recipe.teacherOptimizer.warmupSteps == 5000 && recipe.teacherOptimizer.cosineDecay)
        #expect(recipe.steps == 300_000 && recipe.studentWaitSteps == 3000)
        #expect(recipe.finetune.learningRate == 1e-5 && recipe.finetune.batch == 512)
        #expect(recipe.emaDecay == 0.995 && recipe.initialization == .heUniform && recipe.evalBatch == 500)
        #expect(recipe == Recipe())
    }
}

/// `mplc check` prints the resolved recipe (docs/DSL.md, "The resolved recipe"): every setting, with the defaults marked.
@Suite struct ResolvedRecipeTests {
    @Test func fashionCNNPrintsEverySettingAndMarksTheDefaults() throws {
        let model = try Frontend.parseFile(path: Repository.example("fashion_cnn.swiftdsl")).get()
        let lines = model.recipe.resolvedLines
        for expected in [
            "labeledBatch 32", "pseudoLabels .hard(.argmax) (default)", "uda.rampSteps 500",
            "teacherOptimizer.momentum 0.9 (default)", "teacherOptimizer.warmupSteps 100", "studentWaitSteps 200",
            "steps 20000", "finetune.batch 256", "finetune.momentum 0.9 (default)", "emaDecay 0.995 (default)",
            "initialization .heUniform (default)", "evalBatch 500 (default)",
        ] {
            #expect(lines.contains(expected), "\(expected) not in \(lines)")
        }
        #expect(lines.count == 35)  // every setting of docs/DSL.md's table, labeled arguments one by one
        #expect(
            lines.prefix(10).joined(separator: "\n") == """
                labeledBatch 32
                unlabeledRatio 4
                pseudoLabels .hard(.argmax) (default)
                pseudoLabelsFrom .strongView (default)
                feedback .dotProduct (default)
                teacherObjective .uda (default)
                teacherGradientParts false (default)
                uda.temperature 0.7 (default)
                uda.threshold 0.6 (default)
                uda.weight 1.0
                """)
        #expect(Recipe().resolvedLines.contains("studentWaitSteps 3000 (default)"))
        #expect(Recipe().resolvedLines.allSatisfy { $0.hasSuffix(" (default)") })
    }
}
