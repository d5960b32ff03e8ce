import MPLFrontend
import MPLFuzz
import MPLIR
import MPLModel
import Testing

/// What the grammar accepts, and how each form is read.
@Suite struct GrammarTests {
    @Test func everyLayerAndItsArgumentForms() throws {
        let layers = """
            Conv2D(8, kernel: 5, stride: 2, padding: 2)
                Conv2D(filters: 8, kernel: 3)
                LeakyReLU()
                MaxPool2D(2)
                AvgPool2D(size: 3, stride: 1)
                MaxPool2D(size: 2, stride: 1)
                Tanh()
                GlobalAvgPool()
                Sigmoid()
                Dropout(rate: 0)
                LeakyReLU(0.1)
                LeakyReLU(alpha: 0.3)
                Flatten()
                Dense(units: 10)
                ReLU()
                GELU()
            """
        let network = try #require(parsedModel(smallModel(layers: layers))).teacher
        #expect(
            network.layers == [
                .conv2D(filters: 8, kernel: 5, stride: 2, padding: 2),
                .conv2D(filters: 8, kernel: 3, stride: 1, padding: 0),
                .activation(.leakyReLU(alpha: 0.2)), .maxPool2D(size: 2, stride: 2), .avgPool2D(size: 3, stride: 1),
                .maxPool2D(size: 2, stride: 1), .activation(.tanh), .globalAvgPool, .activation(.sigmoid),
                .dropout(rate: 0),
                .activation(.leakyReLU(alpha: 0.1)),
                .activation(.leakyReLU(alpha: 0.3)), .flatten, .dense(units: 10), .activation(.relu),
                .activation(.gelu),
            ])
    }

    /// The fuzz grammar takes the activations from their definitions (MPLModel/Activation.swift), so a new one is
    /// fuzzed without a second list to update.
    @Test func theFuzzGrammarWritesEveryActivation() {
        var rng = SplitMix64(seed: 1)
        var called: Set<String> = []
        for _ in 0..<2_000 { called.insert(String(GrammarGenerator.layer(using: &rng).prefix { $0 != "(" })) }
        for kind in Activation.Kind.allCases {
            #expect(called.contains(kind.rawValue), "the fuzz grammar never writes \(kind.rawValue)()")
        }
    }

    @Test func everySettingOverridesItsDefault() throws {
        let settings = """
            seed(7)
                evalBatch(1_000)
                initialization(.uniform(0.1))
                emaDecay(0.99)
                finetune(steps: 0, learningRate: 1e-3, batch: 64, momentum: 0)
                steps(10_000)
                studentWaitSteps(0)
                studentOptimizer(SGD(learningRate: 0.1, momentum: 0, nesterov: false, weightDecay: 0, warmupSteps: 0, cosineDecay: false))
                teacherOptimizer(SGD())
                labelSmoothing(0)
                uda(temperature: 2, threshold: 1, weight: 0, rampSteps: 0)
                feedback(.lossDifference)
                teacherObjective(.randAugment)
                teacherGradientParts(true)
                pseudoLabels(.soft(temperature: 0.5))
                pseudoLabelsFrom(.weakView)
                unlabeledRatio(1)
                labeledBatch(1)
            """
        let recipe = try #require(parsedModel(smallModel(settings: settings))).recipe
        #expect(recipe.seed == 7 && recipe.evalBatch == 1000 && recipe.initialization == .uniform(0.1))
        #expect(recipe.emaDecay == 0.99 && recipe.steps == 10_000 && recipe.studentWaitSteps == 0)
        #expect(recipe.finetune.steps == 0 && recipe.finetune.learningRate == 1e-3 && recipe.finetune.batch == 64)
        #expect(recipe.finetune.momentum == 0)
        var student = Optimizer()
        student.learningRate = 0.1
        var sgd = SGD()
        (sgd.momentum, sgd.nesterov, sgd.weightDecay) = (0, false, 0)
        student.rule = .sgd(sgd)
        student.warmupSteps = 0
        student.cosineDecay = false
        #expect(recipe.studentOptimizer == student)
        #expect(recipe.teacherOptimizer == Optimizer())
        #expect(recipe.labelSmoothing == 0 && recipe.feedback == .lossDifference)
        #expect(recipe.teacherObjective == .randAugment && recipe.teacherGradientParts)
        #expect(
            recipe.uda.temperature == 2 && recipe.uda.threshold == 1 && recipe.uda.weight == 0
                && recipe.uda.rampSteps == 0)
        #expect(recipe.pseudoLabels == .soft(temperature: 0.5) && recipe.pseudoLabelsFrom == .weakView)
        #expect(recipe.unlabeledRatio == 1 && recipe.labeledBatch == 1)
    }

    @Test func partialArgumentListsOverrideOnlyWhatTheyName() throws {
        let recipe = try #require(parsedModel(smallModel(settings: "uda(weight: 2)\n finetune(batch: 32)"))).recipe
        var uda = UDASettings()
        uda.weight = 2
        var finetune = Finetune()
        finetune.batch = 32
        #expect(recipe.uda == uda)
        #expect(recipe.finetune == finetune)
    }

    @Test(arguments: [
        ("teacherObjective(.supervised)", TeacherObjective.supervised, Feedback.dotProduct),
        ("teacherObjective(.randAugment)\n feedback(.off)", .randAugment, .off),
        ("teacherObjective(.uda)\n feedback(.lossDifference)", .uda, .lossDifference),
        ("", .uda, .dotProduct),
    ])
    func ablationAxes(settings: String, objective: TeacherObjective, feedback: Feedback) throws {
        let recipe = try #require(parsedModel(smallModel(settings: settings))).recipe
        #expect(recipe.teacherObjective == objective && recipe.feedback == feedback)
    }

    /// Reduced MPL (a teacher that reads cached distributions, not images) with `settings` on lines 10 and after.
    static func reducedModel(settings: String) -> String {
        """
        let input = Image(channels: 1, height: 28, width: 28)
        let classes = 10
        let small = Sequential { Dense(10) }
        let student = Sequential {
            Flatten()
            Dense(10)
        }
        let mpl = MPL(teacher: small, student: student) {
            teacherInput(.cachedPredictions)
            \(settings)
        }
        """
    }

    @Test func randAugmentNeedsATeacherThatReadsImages() {
        let source = Self.reducedModel(settings: "teacherObjective(.randAugment)\n    teacherObjective(.supervised)")
        #expect(diagnose(source).contains("bad.swiftdsl:11:5: error: `teacherObjective` is already set at line 10"))
        let one = Self.reducedModel(settings: "teacherObjective(.randAugment)")
        #expect(
            diagnose(one).contains(
                "bad.swiftdsl:10:5: error: teacherObjective(.randAugment) needs a teacher that reads images; with "
                    + "teacherInput(.cachedPredictions) it reads one cached distribution per image"),
            "\(diagnose(one))")
        #expect(diagnose(Self.reducedModel(settings: "teacherObjective(.supervised)")) == "")
    }

    @Test func theWeakViewNeedsATeacherThatReadsImages() {
        let weak = diagnose(Self.reducedModel(settings: "pseudoLabelsFrom(.weakView)"))
        #expect(
            weak.contains(
                "bad.swiftdsl:10:5: error: pseudoLabelsFrom(.weakView) needs a teacher that reads images; with "
                    + "teacherInput(.cachedPredictions) it reads one cached distribution per image, which has no weakly "
                    + "augmented view"), "\(weak)")
        #expect(diagnose(Self.reducedModel(settings: "pseudoLabelsFrom(.strongView)")) == "")
        let other = diagnose(Self.reducedModel(settings: "pseudoLabelsFrom(.both)"))
        #expect(
            other.contains("bad.swiftdsl:10:22: error: pseudoLabelsFrom must be .strongView or .weakView; got `.both`"),
            "\(other)")
    }

    @Test(arguments: [
        ("pseudoLabels(.hard(.sampled))", PseudoLabels.hardSampled),
        ("pseudoLabels(.hard(.argmax))", .hardArgmax),
        ("pseudoLabels(.soft(temperature: 1))", .soft(temperature: 1)),
    ])
    func pseudoLabelForms(setting: String, expected: PseudoLabels) throws {
        #expect(try #require(parsedModel(smallModel(settings: setting))).recipe.pseudoLabels == expected)
    }

    @Test(arguments: [
        ("0.5", 0.5), ("5e-1", 0.5), ("1", 1.0), ("0", 0.0), ("1_0e-1", 1.0), ("0x1p-1", 0.5), ("0.000_5", 0.0005),
    ])
    func realNumberSpellings(literal: String, expected: Double) throws {
        let settings = "uda(threshold: \(literal))"  // a setting whose range, [0, 1], takes all of them
        #expect(try #require(parsedModel(smallModel(settings: settings))).recipe.uda.threshold == expected)
    }

    @Test(arguments: [
        ("1_000", 1000), ("0x10", 16), ("0b101", 5), ("0o17", 15), ("9_223_372_036_854_775_807", Int.max),
    ])
    func integerSpellings(literal: String, expected: Int) throws {
        #expect(try #require(parsedModel(smallModel(settings: "seed(\(literal))"))).recipe.seed == expected)
    }

    @Test func featuresInputAndAnyDeclarationOrder() throws {
        let source = """
            // The training setup may come before the networks it names.
            let mpl = MPL(teacher: big, student: small) { steps(10); studentWaitSteps(9)
                teacherOptimizer(SGD(warmupSteps: 10)); studentOptimizer(SGD(warmupSteps: 0)) }
            let small = Sequential { Dense(3) }
            let big = Sequential { Dense(64); Tanh(); Dense(3) }
            let classes = 3
            /* block comments are comments too */
            let input = Features(2)
            """
        let model = try #require(parsedModel(source, fileName: "dir/two.moons.swiftdsl"))
        #expect(model.name == "two.moons")
        #expect(model.input == .features(2))
        #expect(model.teacher.name == "big" && model.teacher.layers.count == 3)
        #expect(model.student.layers == [.dense(units: 3)])
        #expect(model.recipe.steps == 10)
    }

    @Test func teacherAndStudentMayBeTheSameNetwork() throws {
        let model = try #require(parsedModel(smallModel()))
        #expect(model.teacher == model.student)
    }

    @Test(arguments: [("a/b/model.swiftdsl", "model"), ("model", "model"), ("x.y.z", "x.y")])
    func modelNameIsTheBaseNameWithoutExtension(fileName: String, expected: String) throws {
        #expect(try #require(parsedModel(smallModel(), fileName: fileName)).name == expected)
    }

    @Test func adamAndAdamWStartFromTheirOwnDefaults() throws {
        let settings = """
            teacherOptimizer(Adam(learningRate: 0.002, beta1: 0.8, warmupSteps: 10))
                studentOptimizer(AdamW(beta2: 0.99, epsilon: 1e-6, cosineDecay: false))
            """
        let recipe = try #require(parsedModel(smallModel(settings: settings))).recipe
        var teacher = Optimizer.defaults(named: "Adam")!
        var adam = Adam()
        adam.beta1 = 0.8
        (teacher.learningRate, teacher.warmupSteps, teacher.rule) = (0.002, 10, .adam(adam))
        #expect(recipe.teacherOptimizer == teacher)
        var student = Optimizer()
        var adamW = Adam()
        (adamW.beta2, adamW.epsilon, adamW.weightDecay, adamW.decoupled) = (0.99, 1e-6, 0.01, true)
        (student.learningRate, student.cosineDecay, student.rule) = (1e-3, false, .adam(adamW))
        #expect(recipe.studentOptimizer == student)
        let lines = recipe.resolvedLines
        for expected in [
            "teacherOptimizer Adam", "teacherOptimizer.learningRate 0.002", "teacherOptimizer.beta1 0.8",
            "teacherOptimizer.beta2 0.999 (default)", "studentOptimizer AdamW",
            "studentOptimizer.learningRate 0.001 (default)",
            "studentOptimizer.weightDecay 0.01 (default)", "studentOptimizer.epsilon 1e-06",
        ] {
            #expect(lines.contains(expected), "\(expected) not in \(lines)")
        }
        #expect(!lines.contains { $0.contains("momentum") && $0.contains("Optimizer") })
    }
}
