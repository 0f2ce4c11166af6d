// swift-tools-version:6.1
//
// libFuzzer harnesses for AdapterDrop's parsers (its own package so the library never sees fuzzing flags).
// Build and run with ../scripts/fuzz.sh; the flags (-sanitize=fuzzer,address -parse-as-library) are passed on
// the command line there, never as unsafeFlags here.
import PackageDescription

let package = Package(
    name: "adapterdrop-fuzz",
    dependencies: [.package(name: "adapterdrop-swift", path: "..")],
    targets: [
        // One binary for every target (one link on a busy machine); FUZZ_TARGET selects the harness.
        .executableTarget(
            name: "AdapterDropFuzz",
            dependencies: [.product(name: "AdapterDrop", package: "adapterdrop-swift")]
        ),
    ]
)
