// Fashion-MNIST's IDX files as the tests read them: gzip or not, as the runner accepts them.

import Foundation

/// Fashion-MNIST as the Debian package installs it (MPLC_TEST_DATA overrides, as for Tests/runner).
public let fashionMNIST = ProcessInfo.processInfo.environment["MPLC_TEST_DATA"] ?? "/usr/share/datasets/fashion-mnist"

public enum FashionMNIST {
    /// The path of an IDX file (`t10k-images-idx3-ubyte`, ...): the .gz if it is there, else the plain file.
    public static func path(_ name: String) throws -> String {
        for candidate in [fashionMNIST + "/" + name + ".gz", fashionMNIST + "/" + name]
        where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw TestFailure("Fashion-MNIST file \(name) not found in \(fashionMNIST) (set MPLC_TEST_DATA)")
    }

    /// The uncompressed bytes of an IDX file, header included.
    public static func bytes(_ name: String) throws -> [UInt8] {
        let path = try path(name)
        guard path.hasSuffix(".gz") else { return Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("gzip -dc \(path) exited \(process.terminationStatus)")
        }
        return Array(data)
    }
}
