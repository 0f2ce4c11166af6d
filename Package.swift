// swift-tools-version:6.1
//
// AdapterDrop for Swift: adapters, AdapterFusion and AdapterDrop for BERT-family encoders on the CPU.
// No unsafeFlags anywhere: SIMD code uses function-level target attributes and run-time dispatch.
import PackageDescription

let package = Package(
    name: "adapterdrop-swift",
    products: [
        .library(name: "AdapterCore", targets: ["AdapterCore"]),
        .library(name: "AdapterDrop", targets: ["AdapterDrop"]),
        .executable(name: "adapterdrop", targets: ["AdapterDropCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Documentation only (`swift package generate-documentation`): a plugin, nothing is linked.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Hand-tuned C kernels (internal: not a product). Links the system CBLAS as a baseline backend.
        .target(
            name: "CKernels",
            cSettings: [.headerSearchPath("src")],
            linkerSettings: [.linkedLibrary("blas"), .linkedLibrary("m")]
        ),
        .target(name: "AdapterCore", dependencies: ["CKernels"]),
        .target(
            name: "AdapterDrop",
            dependencies: ["AdapterCore", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "AdapterDropCLI",
            dependencies: [
                "AdapterDrop", "AdapterCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", dependencies: ["AdapterCore"], path: "Tests/TestSupport"),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "TestSupport"]),
        .testTarget(name: "AdapterCoreTests", dependencies: ["AdapterCore", "TestSupport"]),
        .testTarget(name: "AdapterDropTests", dependencies: ["AdapterDrop", "TestSupport"]),
    ]
)
