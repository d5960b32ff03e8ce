import MPLFrontend
import MPLModel
import Testing

/// Bad model files and their diagnostics, checked verbatim: the rendering is part of the product.
@Suite struct DiagnosticTests {
    @Test func syntaxErrorFromTheParser() {
        let source = """
            let input = Image(channels: 1, height: 28, width: 28)
            let classes = 10
            let net = Sequential {
                Flatten()
                Dense(10
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:13: error: expected ')' to end function call [E001]
                    Dense(10
                            ^

                """)
    }

    @Test func unknownLayer() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential {
                Dense2(8)
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:5: error: unknown layer `Dense2`; did you mean `Dense`? [E002]
                    Dense2(8)
                    ^

                """)
    }

    @Test func residualBlocksAndBatchNorm() throws {
        let source = """
            let input = Image(channels: 1, height: 8, width: 8)
            let classes = 3
            let net = Sequential {
                Conv2D(4, kernel: 3, padding: 1)
                Residual {
                    BatchNorm(momentum: 0.1)
                    ReLU()
                    Conv2D(8, kernel: 3, stride: 2, padding: 1)
                }
                Residual { BatchNorm(epsilon: 1e-5); Conv2D(8, kernel: 3, padding: 1) }
                GlobalAvgPool()
                Dense(3)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        let layers = try #require(parsedModel(source)).teacher.layers
        #expect(
            layers[1]
                == .residual([
                    .batchNorm(momentum: 0.1, epsilon: 1e-3), .activation(.relu),
                    .conv2D(filters: 8, kernel: 3, stride: 2, padding: 1),
                ]))
        #expect(
            layers[2]
                == .residual([
                    .batchNorm(momentum: 0.01, epsilon: 1e-5),
                    .conv2D(filters: 8, kernel: 3, stride: 1, padding: 1),
                ]))
    }

    @Test func residualErrors() {
        let source = """
            let input = Image(channels: 1, height: 8, width: 8)
            let classes = 3
            let net = Sequential {
                Residual { }
                Residual(2) { ReLU() }
                Residual { Flatten() }
                Residual { BatchNorm(momentum: 1.5) }
                GlobalAvgPool()
                Dense(3)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:5: error: Residual has no layers: it would only double its input [E007]
                    Residual { }
                    ^
                bad.swiftdsl:5:14: error: Residual takes no arguments [E004]
                    Residual(2) { ReLU() }
                             ^
                bad.swiftdsl:7:36: error: BatchNorm momentum must be in (0, 1); got 1.5 [E006]
                    Residual { BatchNorm(momentum: 1.5) }
                                                   ^

                """)
    }

    @Test func residualShapeError() {
        let source = """
            let input = Image(channels: 1, height: 8, width: 8)
            let classes = 3
            let net = Sequential {
                Residual { Flatten() }
                Dense(3)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:5: error: Residual body maps 1×8×8 to 64; the body must keep images as images and vectors as vectors [E007]
                    Residual { Flatten() }
                    ^

                """)
    }

    @Test func unknownLayerWithoutACloseMatchListsTheLayers() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential { Softmax(); Dense(2) }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:3:24: error: unknown layer `Softmax`; layers are Dense, Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool, Flatten, ReLU, LeakyReLU, Tanh, Sigmoid, GELU, Dropout, BatchNorm or Residual [E002]
                let net = Sequential { Softmax(); Dense(2) }
                                       ^

                """)
    }

    @Test func unknownSetting() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential { Dense(2) }
            let mpl = MPL(teacher: net, student: net) {
                learningRate(0.1)
                stepz(3000)
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:5: error: unknown setting `learningRate`; settings are labeledBatch, unlabeledRatio, pseudoLabels, pseudoLabelsFrom, feedback, teacherObjective, teacherGradientParts, uda, labelSmoothing, teacherOptimizer, studentOptimizer, studentWaitSteps, steps, finetune, emaDecay, initialization, evalBatch, seed or teacherInput [E003]
                    learningRate(0.1)
                    ^
                bad.swiftdsl:6:5: error: unknown setting `stepz`; did you mean `steps`? [E003]
                    stepz(3000)
                    ^

                """)
    }

    @Test func unknownArgumentLabel() {
        let source = """
            let input = Image(channels: 1, height: 8, width: 8)
            let classes = 2
            let net = Sequential {
                Conv2D(4, kernal: 3)
                GlobalAvgPool()
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net) {
                teacherOptimizer(SGD(learningRate: 0.1, lr: 0.1))
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:15: error: Conv2D has no argument `kernal:`; did you mean `kernel:`? [E004]
                    Conv2D(4, kernal: 3)
                              ^
                bad.swiftdsl:9:45: error: SGD has no argument `lr:`; expected `learningRate:`, `momentum:`, `nesterov:`, `weightDecay:`, `warmupSteps:` or `cosineDecay:` [E004]
                    teacherOptimizer(SGD(learningRate: 0.1, lr: 0.1))
                                                            ^

                """)
    }

    @Test func adamArgumentsAndUnknownOptimizers() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential {
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net) {
                teacherOptimizer(Adam(momentum: 0.9))
                studentOptimizer(RMSProp())
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:7:27: error: Adam has no argument `momentum:`; expected `learningRate:`, `beta1:`, `beta2:`, `epsilon:`, `weightDecay:`, `warmupSteps:` or `cosineDecay:` [E004]
                    teacherOptimizer(Adam(momentum: 0.9))
                                          ^
                bad.swiftdsl:8:22: error: studentOptimizer must be SGD(...), Adam(...) or AdamW(...); got `RMSProp()` [E005]
                    studentOptimizer(RMSProp())
                                     ^

                """)
    }

    /// Before, ε = 1e-30 was accepted and ε² became 0 in the generated float code.
    @Test func adamEpsilonMustKeepItsSquareAFloat() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential {
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net) {
                studentOptimizer(AdamW(epsilon: 1e-30))
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:7:37: error: studentOptimizer epsilon must be at least 1e-18; got 1e-30 [E006]
                    studentOptimizer(AdamW(epsilon: 1e-30))
                                                    ^

                """)
    }

    @Test func wrongArgumentType() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential {
                Dense(1.5)
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net) {
                feedback(.dot)
                teacherOptimizer(SGD(nesterov: 1))
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:11: error: Dense units must be an integer; got `1.5` [E005]
                    Dense(1.5)
                          ^
                bad.swiftdsl:8:14: error: feedback must be .off, .dotProduct or .lossDifference; got `.dot` [E005]
                    feedback(.dot)
                             ^
                bad.swiftdsl:9:36: error: teacherOptimizer nesterov must be true or false; got `1` [E005]
                    teacherOptimizer(SGD(nesterov: 1))
                                                   ^

                """)
    }

    @Test func valueOutOfRange() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential {
                Dense(8)
                Dropout(1.5)
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net) {
                labeledBatch(0)
                uda(threshold: -0.5)
                teacherOptimizer(SGD(learningRate: 0))
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:13: error: Dropout rate must be in [0, 1); got 1.5 [E006]
                    Dropout(1.5)
                            ^
                bad.swiftdsl:9:18: error: labeledBatch must be between 1 and 1000000; got 0 [E006]
                    labeledBatch(0)
                                 ^
                bad.swiftdsl:10:20: error: uda threshold must be in [0, 1]; got -0.5 [E006]
                    uda(threshold: -0.5)
                                   ^
                bad.swiftdsl:11:40: error: teacherOptimizer learningRate must be greater than 0; got 0 [E006]
                    teacherOptimizer(SGD(learningRate: 0))
                                                       ^

                """)
    }

    @Test func hugeLiteralsAreRangeErrorsNotCrashes() {
        let source = """
            let input = Features(99999999999999999999)
            let classes = 2
            let net = Sequential { Dense(2) }
            let mpl = MPL(teacher: net, student: net) { steps(-9999999999999999999999); emaDecay(1e999) }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:1:22: error: Features must be between 1 and 1000000; got 99999999999999999999 [E006]
                let input = Features(99999999999999999999)
                                     ^
                bad.swiftdsl:4:51: error: steps must be at least 1; got -9999999999999999999999 [E006]
                let mpl = MPL(teacher: net, student: net) { steps(-9999999999999999999999); emaDecay(1e999) }
                                                                  ^
                bad.swiftdsl:4:86: error: emaDecay must be in [0, 1); got 1e999 [E006]
                let mpl = MPL(teacher: net, student: net) { steps(-9999999999999999999999); emaDecay(1e999) }
                                                                                                     ^

                """)
    }

    @Test func denseAfterAnImageWithoutFlatten() {
        let source = """
            let input = Image(channels: 1, height: 28, width: 28)
            let classes = 10
            let net = Sequential {
                Conv2D(8, kernel: 3, padding: 1)
                ReLU()
                Dense(10)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:6:5: error: Dense expects a vector but its input is an image 8×28×28; add Flatten() or GlobalAvgPool() before it [E007]
                    Dense(10)
                    ^

                """)
    }

    @Test func poolingWindowLargerThanItsInput() {
        let source = """
            let input = Image(channels: 1, height: 28, width: 28)
            let classes = 10
            let net = Sequential {
                MaxPool2D(64)
                Flatten()
                Dense(10)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:5: error: MaxPool2D window 64×64 is larger than its input 28×28 [E007]
                    MaxPool2D(64)
                    ^

                """)
    }

    @Test func finalWidthMustMatchClasses() {
        let source = """
            let input = Image(channels: 1, height: 28, width: 28)
            let classes = 10
            let teacher = Sequential {
                Flatten()
                Dense(7)
            }
            let student = Sequential {
                Conv2D(4, kernel: 3)
            }
            let mpl = MPL(teacher: teacher, student: student)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:5: error: the last layer of `teacher` gives 7 outputs but classes is 10; end it with Dense(10) [E007]
                    Dense(7)
                    ^
                bad.swiftdsl:8:5: error: the last layer of `student` gives an image 4×26×26 but must give 10 class scores; end it with Flatten() and Dense(10) [E007]
                    Conv2D(4, kernel: 3)
                    ^

                """)
    }

    @Test func convolutionOnAVector() {
        let source = """
            let input = Features(784)
            let classes = 10
            let net = Sequential {
                Conv2D(8, kernel: 3)
                Flatten()
                Dense(10)
            }
            let mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:5: error: Conv2D expects an image but its input is a vector of 784 features [E007]
                    Conv2D(8, kernel: 3)
                    ^

                """)
    }

    @Test func everyErrorInAFileIsReportedInOrder() {
        let source = """
            let input = Image(channels: 1, height: 28, width: 28)
            let classes = 10
            let classes = 12
            let teacher = Sequential {
                Flatten()
                Dense2(128)
                Dense(10)
            }
            let student = Sequential {
                Dense(10)
            }
            var extra = 1
            let mpl = MPL(teacher: teachr, student: student) {
                steps(0)
                steps(100)
                pseudoLabels(.hard(.max))
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:3:5: error: `classes` is already declared at line 2 [E008]
                let classes = 12
                    ^
                bad.swiftdsl:6:5: error: unknown layer `Dense2`; did you mean `Dense`? [E002]
                    Dense2(128)
                    ^
                bad.swiftdsl:10:5: error: Dense expects a vector but its input is an image 1×28×28; add Flatten() or GlobalAvgPool() before it [E007]
                    Dense(10)
                    ^
                bad.swiftdsl:12:1: error: use `let`; declarations cannot change [E011]
                var extra = 1
                ^
                bad.swiftdsl:13:24: error: undefined network `teachr`; did you mean `teacher`? [E009]
                let mpl = MPL(teacher: teachr, student: student) {
                                       ^
                bad.swiftdsl:14:11: error: steps must be at least 1; got 0 [E006]
                    steps(0)
                          ^
                bad.swiftdsl:15:5: error: `steps` is already set at line 14 [E008]
                    steps(100)
                    ^
                bad.swiftdsl:16:24: error: pseudoLabels .hard must be .argmax or .sampled; got `.max` [E005]
                    pseudoLabels(.hard(.max))
                                       ^

                """)
    }

    @Test func aSyntaxErrorDoesNotHideOtherErrors() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential {
                Dense(4 4)
                Dense2(2)
                Dense(2)
            }
            let mpl = MPL(teacher: net, student: net) { seed(-1) }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:13: error: unexpected code '4' in function call [E001]
                    Dense(4 4)
                            ^
                bad.swiftdsl:5:5: error: unknown layer `Dense2`; did you mean `Dense`? [E002]
                    Dense2(2)
                    ^
                bad.swiftdsl:8:50: error: seed must be at least 0; got -1 [E006]
                let mpl = MPL(teacher: net, student: net) { seed(-1) }
                                                                 ^

                """)
    }

    @Test func aTruncatedFileReportsTheTruncationOnly() {
        let source = "let input = Features(4)\nlet classes = 2\nlet net = Sequential {\n    Dense(4)\n    Dense(2)\n"
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:13: error: expected '}' to end closure [E001]
                    Dense(2)
                            ^

                """)
    }

    @Test func missingDeclarationsAreReportedAtTheStartOfTheFile() {
        #expect(
            diagnose("// nothing here\n") == """
                bad.swiftdsl:1:1: error: missing `let input = Image(channels:height:width:)` or `let input = Features(n)` [E010]
                // nothing here
                ^
                bad.swiftdsl:1:1: error: missing `let classes = K` [E010]
                // nothing here
                ^
                bad.swiftdsl:1:1: error: missing the training setup `let mpl = MPL(teacher: NAME, student: NAME) { ... }` [E010]
                // nothing here
                ^

                """)
    }

    @Test func missingArgumentsAndExtraArguments() {
        let source = """
            let input = Image(channels: 1, height: 8, width: 8)
            let classes = 2
            let net = Sequential {
                Conv2D(4)
                ReLU(1)
                Dense()
            }
            let mpl = MPL(teacher: net) { seed(1, 2) }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:4:5: error: Conv2D is missing argument `kernel:` [E012]
                    Conv2D(4)
                    ^
                bad.swiftdsl:5:10: error: ReLU takes no arguments [E004]
                    ReLU(1)
                         ^
                bad.swiftdsl:6:5: error: Dense is missing argument `units` [E012]
                    Dense()
                    ^
                bad.swiftdsl:8:11: error: MPL is missing argument `student:` [E012]
                let mpl = MPL(teacher: net) { seed(1, 2) }
                          ^
                bad.swiftdsl:8:39: error: seed takes only one argument [E004]
                let mpl = MPL(teacher: net) { seed(1, 2) }
                                                      ^

                """)
    }

    @Test func unsupportedStatementsAndExpressions() {
        let source = """
            let input = Features(4)
            let classes: Int = 2
            let size = 8
            let net = Sequential {
                Dense(size)
                ReLU
                Dense(2)
            }
            var mpl = MPL(teacher: net, student: net)
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:2:12: error: type annotations are not supported; write `let NAME = ...` [E011]
                let classes: Int = 2
                           ^
                bad.swiftdsl:3:12: error: `size` must be a network (`Sequential { ... }`) or the training setup (`MPL(...) { ... }`); got `8` [E011]
                let size = 8
                           ^
                bad.swiftdsl:5:11: error: Dense units must be an integer; got `size` [E005]
                    Dense(size)
                          ^
                bad.swiftdsl:6:5: error: write the layer as a call: `ReLU(...)` [E011]
                    ReLU
                    ^
                bad.swiftdsl:9:1: error: use `let`; declarations cannot change [E011]
                var mpl = MPL(teacher: net, student: net)
                ^

                """)
    }

    /// Swift that is not part of the model language is rejected before parsing, with one error per
    /// statement rather than a cascade.
    @Test func swiftKeywordsAndCharactersOutsideTheLanguage() {
        let source = """
            import Foundation
            let input = Features(4)
            let classes = 2
            let net = Sequential { Dense(2?) }
            let mpl = MPL(teacher: net, student: net) {
                if true {
                    seed(1)
                }
                seed(try 2)
                labelSmoothing(- 0.1)
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:1:1: error: `import` is a Swift keyword, not part of the model language; the statement is ignored [E001]
                import Foundation
                ^
                bad.swiftdsl:4:31: error: unexpected character `?`; the model language does not use it [E001]
                let net = Sequential { Dense(2?) }
                                              ^
                bad.swiftdsl:6:5: error: `if` is a Swift keyword, not part of the model language; the statement is ignored [E001]
                    if true {
                    ^
                bad.swiftdsl:9:10: error: `try` is a Swift keyword, not part of the model language [E001]
                    seed(try 2)
                         ^
                bad.swiftdsl:10:20: error: `-` must be written directly before a number [E001]
                    labelSmoothing(- 0.1)
                                   ^

                """)
    }

    @Test func aFloodOfSyntaxErrorsIsCutShort() {
        let source = smallModel(
            layers: "Flatten()\n" + String(repeating: "    Dense(10) Dense(10)\n", count: 200) + "    Dense(10)")
        let rendered = diagnose(source)
        let errors = rendered.components(separatedBy: "\n").filter { $0.contains(": error: ") }
        #expect(errors.count == 51)  // the documented limit of 50, then the summary
        #expect(errors.last?.hasSuffix("error: too many syntax errors; the rest are not shown [E001]") == true)
    }

    @Test func defaultsThatConflictWithAShortRunSayTheyAreDefaults() {
        let source = """
            let input = Features(4)
            let classes = 2
            let net = Sequential { Dense(2) }
            let mpl = MPL(teacher: net, student: net) {
                steps(1000)
                studentOptimizer(SGD(warmupSteps: 2000))
            }
            """
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:11: error: teacherOptimizer warmupSteps must be at most steps (1000); got 5000, its default [E006]
                    steps(1000)
                          ^
                bad.swiftdsl:5:11: error: studentWaitSteps must be less than steps (1000); got 3000, its default [E006]
                    steps(1000)
                          ^
                bad.swiftdsl:6:39: error: studentOptimizer warmupSteps must be at most steps (1000); got 2000 [E006]
                    studentOptimizer(SGD(warmupSteps: 2000))
                                                      ^

                """)
    }

    @Test func caretLinesUpAfterTabsAndWideCharacters() {
        let source =
            "let input = Features(4)\nlet classes = 2\n// é\nlet net = Sequential {\n\tDense(2); /* é */ Tanh2()\n}\nlet mpl = MPL(teacher: net, student: net)\n"
        #expect(
            diagnose(source) == """
                bad.swiftdsl:5:21: error: unknown layer `Tanh2`; did you mean `Tanh`? [E002]
                \tDense(2); /* é */ Tanh2()
                \t                  ^

                """)
    }

    @Test func deepNestingStopsTheCheckAtTheFirstBracketTooDeep() {
        let line = "let x = " + String(repeating: "(", count: 65) + "1" + String(repeating: ")", count: 65)
        #expect(
            diagnose(line) == """
                bad.swiftdsl:1:73: error: brackets are nested more than 64 levels deep here; the file is not checked further [E001]
                \(line)
                \(String(repeating: " ", count: 72))^

                """)
    }

    @Test func aLongLineIsShownAsAWindowAroundTheColumn() {
        let line = "let net = Sequential { " + String(repeating: "ReLU(); ", count: 40) + "Dense2(2) }"
        let source =
            "let input = Features(4)\nlet classes = 2\n" + line + "\nlet mpl = MPL(teacher: net, student: net)\n"
        let column = 23 + 40 * 8 + 1
        let shown = String(line.utf8.dropFirst(column - 1 - 100))!
        #expect(
            diagnose(source) == """
                bad.swiftdsl:3:\(column): error: unknown layer `Dense2`; did you mean `Dense`? [E002]
                …\(shown)
                \(String(repeating: " ", count: 101))^

                """)
    }

    @Test func unreadableFileIsADiagnostic() {
        let path = Repository.root + "/Tests/MPLFrontendTests/no-such-file.swiftdsl"
        guard case .failure(let diagnostics) = Frontend.parseFile(path: path) else {
            Issue.record("a missing file parsed")
            return
        }
        #expect(
            Frontend.render(diagnostics, source: "", fileName: "no-such-file.swiftdsl") == """
                no-such-file.swiftdsl:1:1: error: cannot read the model file: No such file or directory [E013]

                """)
        #expect(diagnostics.map(\.id) == ["E013"])
        #expect(diagnostics.first?.location == SourceLocation(file: path, line: 1, column: 1))
    }

    @Test func aDirectoryIsUnreadableToo() {
        guard case .failure(let diagnostics) = Frontend.parseFile(path: Repository.root + "/Examples") else {
            Issue.record("a directory parsed")
            return
        }
        #expect(diagnostics.map(\.id) == ["E013"])
    }

    /// The model's name becomes a directory and a C string: only plain names are accepted, others refused
    /// with E014 naming the file (no control character of the name reaches the terminal).
    @Test(arguments: [
        "..", ".", "", ".hidden", "-o", "a b", "a\"b", "a\\b", "a*", "caf\u{e9}", String(repeating: "n", count: 65),
        "m\"\nint system(const char*); __attribute__((constructor)) static void p(void){system(\"id>PWNED.txt\");}\n#define Q \"",
    ])
    func fileNamesThatCannotNameAModelAreRefused(name: String) {
        let fileName = "dir/" + name + ".swiftdsl"
        guard case .failure(let diagnostics) = Frontend.parse(source: smallModel(), fileName: fileName) else {
            Issue.record("\(fileName) was accepted")
            return
        }
        #expect(diagnostics.map(\.id) == ["E014"])
        let rendered = Frontend.render(diagnostics, source: smallModel(), fileName: fileName)
        #expect(
            rendered.hasPrefix("dir/") && rendered.contains(":1:1: error: the file name gives the model the name `"))
        #expect(rendered.hasSuffix("; rename the file [E014]\n"))
        #expect(rendered.filter { $0 == "\n" }.count == 1, "\(rendered)")
    }

    @Test(arguments: ["fashion_mlp", "two.moons", "a-b", "_x", "9lives", String(repeating: "n", count: 64)])
    func plainFileNamesNameTheModel(name: String) throws {
        let model = try #require(parsedModel(smallModel(), fileName: "/some dir/*/" + name + ".swiftdsl"))
        #expect(model.name == name)
    }

    /// Every per-example tensor (activation, weights, a convolution's windows, a shortcut) is at most 2^32
    /// elements, so that the compiler's size arithmetic stays far from overflow.
    @Test(arguments: [
        (
            "GlobalAvgPool()\n    Dense(100_000)\n    Dense(100_000)\n    Dense(10)",
            "7:5: error: Dense has 100000 × 100000 = 10000000000 weights, more than the 4294967296 (2^32) one tensor may hold"
        ),
        (
            "Conv2D(filters: 1_000_000, kernel: 3, padding: 1)\n    GlobalAvgPool()\n    Dense(10)",
            "5:5: error: Conv2D gives 1000 × 1000 × 1000000 = 1000000000000 values per example, more than"
        ),
        (
            "Conv2D(filters: 8, kernel: 3, padding: 1)\n    Conv2D(filters: 8, kernel: 999, padding: 499)\n    GlobalAvgPool()\n    Dense(10)",
            "6:5: error: Conv2D reads 1000 × 1000 × 999 × 999 × 8 = 7984008000000 window values per image, more than"
        ),
        (
            "GlobalAvgPool()\n    Dense(70_000)\n    Residual {\n        Dense(10)\n        Dense(70_001)\n    }\n    Dense(10)",
            "7:5: error: Residual has 70000 × 70001 = 4900070000 shortcut weights, more than"
        ),
    ])
    func perExampleTensorsAreBounded(layers: String, expected: String) {
        let source = smallModel(layers: layers).replacingOccurrences(
            of: "height: 28, width: 28", with: "height: 1000, width: 1000")
        let rendered = diagnose(source)
        #expect(rendered.contains("bad.swiftdsl:" + expected), "\(rendered)")
        #expect(rendered.filter { $0 == "\n" }.count == 3 && rendered.contains("[E007]"), "\(rendered)")
    }

    @Test func tensorsUpTo2To32ElementsAreAccepted() throws {
        let model = try #require(
            parsedModel(smallModel(layers: "Flatten()\n    Dense(65_536)\n    Dense(65_536)\n    Dense(10)")))
        #expect(model.teacher.layers.count == 4)
    }

    @Test func anImageBeyond2To32ValuesIsOutOfRange() {
        let source = smallModel().replacingOccurrences(
            of: "Image(channels: 1, height: 28, width: 28)", with: "Image(channels: 5, height: 30000, width: 30000)")
        #expect(
            diagnose(source).contains(
                "bad.swiftdsl:1:13: error: Image has 30000 × 30000 × 5 = 4500000000 values per image, more than the 4294967296 (2^32) one tensor may hold [E006]"
            ))
        #expect(
            parsedModel(
                smallModel().replacingOccurrences(
                    of: "Image(channels: 1, height: 28, width: 28)",
                    with: "Image(channels: 4, height: 32768, width: 32768)"
                )
                .replacingOccurrences(of: "Flatten()", with: "GlobalAvgPool()")) != nil)
    }

    @Test func everyKindHasADistinctStableID() {
        let ids = DiagnosticKind.allCases.map(\.rawValue)
        #expect(ids == (1...14).map { "E" + String(repeating: "0", count: $0 < 10 ? 2 : 1) + String($0) })
        #expect(Set(DiagnosticKind.allCases.map(\.title)).count == ids.count)
    }
}
