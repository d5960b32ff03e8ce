// Paths of this checkout, found from this source file so that tests run from any directory.

import Foundation

/// The repository root (this file is Tests/MPLTestSupport/Repository.swift).
public let repositoryRoot: String = {
    var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)
    return components.joined(separator: "/")
}()

public enum Repository {
    public static var root: String { repositoryRoot }
    /// The path of an example model file, by file name.
    public static func example(_ name: String) -> String { repositoryRoot + "/Examples/" + name }
}

public let exampleMLP = Repository.example("fashion_mlp.swiftdsl")
public let exampleCNN = Repository.example("fashion_cnn.swiftdsl")
