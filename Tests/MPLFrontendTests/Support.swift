import MPLFrontend
import MPLModel
@_exported import MPLTestSupport

/// The rendered diagnostics of `source`, or "" if it is a valid model.
func diagnose(_ source: String, fileName: String = "bad.swiftdsl") -> String {
    switch Frontend.parse(source: source, fileName: fileName) {
    case .success: return ""
    case .failure(let diagnostics): return Frontend.render(diagnostics, source: source, fileName: fileName)
    }
}

/// The model of `source`, or nil; failures are printed to help when a test fails.
func parsedModel(_ source: String, fileName: String = "test.swiftdsl") -> Model? {
    switch Frontend.parse(source: source, fileName: fileName) {
    case .success(let model): return model
    case .failure(let diagnostics):
        print(Frontend.render(diagnostics, source: source, fileName: fileName))
        return nil
    }
}

/// A small valid model: tests change one thing in it.
func smallModel(layers: String = "Flatten()\n    Dense(10)", settings: String = "") -> String {
    """
    let input = Image(channels: 1, height: 28, width: 28)
    let classes = 10

    let net = Sequential {
        \(layers)
    }

    let mpl = MPL(teacher: net, student: net) {
        \(settings)
    }

    """
}
