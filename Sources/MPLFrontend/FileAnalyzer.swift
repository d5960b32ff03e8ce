import MPLModel
import SwiftSyntax

/// Checks one parsed file and assembles the Model. Every problem is reported to `diagnostics`;
/// the Model is returned only when there are none.
struct FileAnalyzer {
    let tree: SourceFileSyntax
    let modelName: String
    /// Whether the parser or the screen found errors: a declaration may then have been lost.
    let hasSyntaxErrors: Bool
    let diagnostics: DiagnosticCollector

    private var input: InputSpec?
    private var classes: Int?
    private var networks: [String: CheckedNetwork] = [:]
    private var training: TrainingDeclaration?
    /// Every name declared so far, with its declaration, to report duplicates.
    private var declared: [String: TokenSyntax] = [:]
    /// Names whose declarations have syntax errors: references to them are not reported.
    private var brokenNames: Set<String> = []
    /// Which required declarations were seen, even if their values were invalid.
    private var seenInput = false
    private var seenClasses = false
    /// False if some top-level item could not be read as a declaration; it may have been meant
    /// as a required one, so "missing" is not reported.
    private var readEveryItem = true

    init(tree: SourceFileSyntax, modelName: String, hasSyntaxErrors: Bool, diagnostics: DiagnosticCollector) {
        self.tree = tree
        self.modelName = modelName
        self.hasSyntaxErrors = hasSyntaxErrors
        self.diagnostics = diagnostics
    }

    mutating func run() -> Model? {
        for item in tree.statements {
            var declaredName: String?
            if let declaration = Declaration(item, diagnostics: diagnostics, declaredName: &declaredName) {
                read(declaration)
            } else {
                readEveryItem = false
                if let declaredName {
                    brokenNames.insert(declaredName)
                }
            }
        }
        checkShapes()
        let roles = resolveRoles()
        // A syntax error may have swallowed a declaration; "missing" would then be misleading.
        if !hasSyntaxErrors && readEveryItem {
            reportMissingDeclarations()
        }
        guard diagnostics.isEmpty, let input, let classes, let roles, let training else { return nil }
        return Model(
            name: modelName, input: input, classes: classes, teacher: roles.teacher, student: roles.student,
            recipe: training.recipe)
    }

    // MARK: Declarations

    private mutating func read(_ declaration: Declaration) {
        if let first = declared[declaration.name] {
            diagnostics.error(
                .duplicate, "`\(declaration.name)` is already declared at line \(diagnostics.line(of: first))",
                at: declaration.nameNode)
            return
        }
        declared[declaration.name] = declaration.nameNode
        switch declaration.name {
        case "input":
            seenInput = true
            input = InputReader(diagnostics: diagnostics).read(declaration.value)
        case "classes":
            seenClasses = true
            classes = ValueReader(diagnostics: diagnostics).integer(
                declaration.value, "classes", in: .between(2, IntegerRange.maxSize))
        default:
            readNamedValue(declaration)
        }
    }

    /// Any other name is a network or the training setup, told apart by what it calls.
    private mutating func readNamedValue(_ declaration: Declaration) {
        let call = Call(declaration.value)
        switch call?.name {
        case "Sequential"?:
            networks[declaration.name] = NetworkReader(diagnostics: diagnostics).read(
                name: declaration.name, call: call!)
        case "MPL"?:
            readTraining(declaration, call!)
        case "Image"?, "Features"?:
            diagnostics.error(
                .unsupported, "the input must be declared as `let input = \(call!.name)(...)`", at: declaration.nameNode
            )
        default:
            diagnostics.error(
                .unsupported,
                "`\(declaration.name)` must be a network (`Sequential { ... }`) or the training setup (`MPL(...) { ... }`); got `\(declaration.value.snippet)`",
                at: declaration.value)
        }
    }

    private mutating func readTraining(_ declaration: Declaration, _ call: Call) {
        if let first = training {
            diagnostics.error(
                .duplicate,
                "only one MPL declaration is allowed; the first is at line \(diagnostics.line(of: first.nameNode))",
                at: call.nameNode)
            return
        }
        training = TrainingReader(diagnostics: diagnostics).read(declaration, call)
    }

    // MARK: Checks across declarations

    private func checkShapes() {
        guard let input else { return }
        let checker = ShapeChecker(diagnostics: diagnostics)
        // With Reduced MPL the teacher reads a class distribution, not the image.
        let distributionReader =
            training?.recipe.teacherInput == .cachedPredictions ? training?.teacher?.baseName.text : nil
        if let distributionReader, let student = training?.student, student.baseName.text == distributionReader {
            diagnostics.error(
                .shapeMismatch,
                "with teacherInput(.cachedPredictions) the teacher reads class distributions and the student reads images: they must be different networks",
                at: student)
            return
        }
        for network in networks.values.sorted(by: { $0.call.syntax.position < $1.call.syntax.position })
        where network.isComplete {
            if network.network.name == distributionReader {
                guard let classes else { continue }
                checker.check(network, input: .vector(classes), classes: classes)
            } else {
                checker.check(network, input: input.featureShape, classes: classes)
            }
        }
    }

    /// The teacher and student networks, or nil after reporting a reference that is not a network.
    private func resolveRoles() -> (teacher: Network, student: Network)? {
        guard let training else { return nil }
        let teacher = training.teacher.flatMap { resolve($0, role: "teacher") }
        let student = training.student.flatMap { resolve($0, role: "student") }
        guard let teacher, let student else { return nil }
        return (teacher, student)
    }

    private func resolve(_ reference: DeclReferenceExprSyntax, role: String) -> Network? {
        let name = reference.baseName.text
        if let network = networks[name] {
            return network.network
        }
        if brokenNames.contains(name) {
            return nil
        }
        if declared[name] != nil {
            diagnostics.error(.wrongType, "MPL \(role) must be a network; `\(name)` is not one", at: reference)
        } else {
            let hint = closestName(to: name, in: Array(networks.keys).sorted()).map { "; did you mean `\($0)`?" } ?? ""
            diagnostics.error(.undefinedName, "undefined network `\(name)`\(hint)", at: reference)
        }
        return nil
    }

    private func reportMissingDeclarations() {
        if !seenInput {
            diagnostics.errorAtStartOfFile(
                .missingDeclaration, "missing `let input = Image(channels:height:width:)` or `let input = Features(n)`")
        }
        if !seenClasses {
            diagnostics.errorAtStartOfFile(.missingDeclaration, "missing `let classes = K`")
        }
        if training == nil {
            diagnostics.errorAtStartOfFile(
                .missingDeclaration, "missing the training setup `let mpl = MPL(teacher: NAME, student: NAME) { ... }`")
        }
    }
}

/// Reads `let input = Image(channels: C, height: H, width: W)` or `let input = Features(D)`.
struct InputReader {
    let diagnostics: DiagnosticCollector

    func read(_ value: ExprSyntax) -> InputSpec? {
        guard let call = Call(value), call.name == "Image" || call.name == "Features" else {
            diagnostics.error(
                .wrongType, "input must be Image(channels:height:width:) or Features(n); got `\(value.snippet)`",
                at: value)
            return nil
        }
        let hasBlock = call.rejectBlocks(diagnostics)
        let input = call.name == "Image" ? image(call) : features(call)
        return hasBlock ? nil : input
    }

    private func image(_ call: Call) -> InputSpec? {
        let arguments = Arguments(
            call.arguments,
            parameters: [
                .labeled("channels", required: true), .labeled("height", required: true),
                .labeled("width", required: true),
            ],
            callee: "Image", at: call.syntax, diagnostics: diagnostics)
        let channels = arguments.integer("channels", in: .size)
        let height = arguments.integer("height", in: .size)
        let width = arguments.integer("width", in: .size)
        guard arguments.isComplete, let channels, let height, let width else { return nil }
        let size = height * width * channels  // each at most IntegerRange.maxSize, so at most 10^18
        guard size <= FeatureShape.maxElements else {
            diagnostics.error(
                .outOfRange,
                "Image has \(height) × \(width) × \(channels) = \(size) values per image, more than the "
                    + "\(FeatureShape.maxElements) (2^32) one tensor may hold", at: call.syntax)
            return nil
        }
        return .image(channels: channels, height: height, width: width)
    }

    private func features(_ call: Call) -> InputSpec? {
        let arguments = Arguments(
            call.arguments, parameters: [.unlabeled("count")], callee: "Features", at: call.syntax,
            diagnostics: diagnostics)
        let count = arguments.integer("count", in: .size)
        guard arguments.isComplete, let count else { return nil }
        return .features(count)
    }
}

/// The `MPL(teacher:student:) { settings }` declaration: which networks play which role, and the recipe.
struct TrainingDeclaration {
    var nameNode: TokenSyntax
    var teacher: DeclReferenceExprSyntax?
    var student: DeclReferenceExprSyntax?
    var recipe: Recipe
}

struct TrainingReader {
    let diagnostics: DiagnosticCollector

    func read(_ declaration: Declaration, _ call: Call) -> TrainingDeclaration {
        let arguments = Arguments(
            call.arguments, parameters: [.labeled("teacher", required: true), .labeled("student", required: true)],
            callee: "MPL", at: call.syntax, diagnostics: diagnostics)
        let teacher = arguments["teacher"].flatMap { networkReference($0, role: "teacher") }
        let student = arguments["student"].flatMap { networkReference($0, role: "student") }
        if let extra = call.syntax.additionalTrailingClosures.first {
            diagnostics.error(.unsupported, "MPL takes one `{ ... }` block of settings", at: extra)
        }
        var recipe = RecipeReader(diagnostics: diagnostics)
        if let block = call.block {
            recipe.read(block)
        }
        return TrainingDeclaration(
            nameNode: declaration.nameNode, teacher: teacher, student: student, recipe: recipe.recipe)
    }

    private func networkReference(_ expression: ExprSyntax, role: String) -> DeclReferenceExprSyntax? {
        guard let reference = expression.as(DeclReferenceExprSyntax.self), reference.argumentNames == nil else {
            diagnostics.error(
                .wrongType, "MPL \(role) must be the name of a network; got `\(expression.snippet)`", at: expression)
            return nil
        }
        return reference
    }
}
