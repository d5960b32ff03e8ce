// swift-tools-version:6.0
import PackageDescription

// Dependencies flow one way: MPLModel is the leaf (MPLIR takes only its overflow-checked product); each stage
// imports the stage whose output it consumes; only the `mplc` executable wires all of them together.
let package = Package(
    name: "mplc",
    products: [
        .executable(name: "mplc", targets: ["mplc"])
    ],
    dependencies: [
        .package(url: "https://github.com/swiftlang/swift-syntax.git", exact: "603.0.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
    ],
    targets: [
        .target(name: "MPLModel"),
        .target(
            name: "MPLFrontend",
            dependencies: [
                "MPLModel",
                .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftParser", package: "swift-syntax"),
                .product(name: "SwiftDiagnostics", package: "swift-syntax"),
                .product(name: "SwiftParserDiagnostics", package: "swift-syntax"),
            ]),
        // The Double interpreter runs whole training steps in the tests; -O makes that ~10x faster in debug builds.
        .target(name: "MPLIR", dependencies: ["MPLModel"], swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "MPLAutodiff", dependencies: ["MPLIR"]),
        .target(name: "MPLStep", dependencies: ["MPLModel", "MPLIR", "MPLAutodiff"]),
        // Lowering and emitting with -O: every test that compiles a model runs them (a debug mplc took 7.2 s of CPU
        // for WRN-28-2, 0.9 s with these two optimised; the model hash's SHA-256 of the generated C was half of it).
        .target(name: "MPLLower", dependencies: ["MPLIR"], swiftSettings: [.unsafeFlags(["-O"])]),
        .target(
            name: "MPLEmitC",
            dependencies: ["MPLIR", "MPLLower", .product(name: "Mustache", package: "swift-mustache")],
            swiftSettings: [.unsafeFlags(["-O"])]),
        .target(
            name: "MPLCompiler",
            dependencies: ["MPLModel", "MPLFrontend", "MPLIR", "MPLAutodiff", "MPLStep", "MPLLower", "MPLEmitC"]),
        // `mplc fuzz`: seeded mutants of model files and a supervisor that survives crashing inputs.
        .target(name: "MPLFuzz", dependencies: ["MPLCompiler", "MPLFrontend", "MPLIR", "MPLModel"]),
        .executableTarget(
            name: "mplc",
            dependencies: [
                "MPLCompiler", "MPLFuzz", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // What the test targets share: running commands, the checkout's paths, Fashion-MNIST, building runners.
        .target(name: "MPLTestSupport", dependencies: ["MPLCompiler", "MPLModel"], path: "Tests/MPLTestSupport"),
        .testTarget(
            name: "MPLFrontendTests", dependencies: ["MPLFrontend", "MPLIR", "MPLModel", "MPLFuzz", "MPLTestSupport"]),
        .testTarget(name: "MPLIRTests", dependencies: ["MPLIR", "MPLAutodiff"]),
        .testTarget(name: "MPLStepTests", dependencies: ["MPLStep", "MPLModel", "MPLIR", "MPLAutodiff"]),
        .testTarget(name: "MPLCodegenTests", dependencies: ["MPLIR", "MPLLower", "MPLEmitC", "MPLTestSupport"]),
        // Depends on `mplc` so that the binary the determinism test runs twice is built first.
        .testTarget(
            name: "MPLEndToEndTests",
            dependencies: [
                "mplc", "MPLCompiler", "MPLStep", "MPLLower", "MPLEmitC", "MPLIR", "MPLAutodiff", "MPLTestSupport",
            ]),
        // Fuzzing, sanitizers, crash-safe checkpoints, NaN stops and resource limits (docs/RELIABILITY.md).
        // Depends on `mplc` so that the binary it runs (`mplc fuzz`) is built first.
        .testTarget(
            name: "MPLReliabilityTests",
            dependencies: ["mplc", "MPLCompiler", "MPLFrontend", "MPLIR", "MPLModel", "MPLFuzz", "MPLTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
