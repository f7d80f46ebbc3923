// swift-tools-version: 6.1
// Benchmarks, kept out of the main package so the default build and CI never pay for the
// benchmark framework. Run them through `make bench-*`.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which is whatever the checkout is called.
let rootIdentity = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "vcom-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Bare zlib in C, the yardstick Wire's compressed frames are measured against.
        .target(name: "ZlibBaseline", linkerSettings: [.linkedLibrary("z")]),
        .executableTarget(
            name: "WireBenchmarks",
            dependencies: [
                .product(name: "Wire", package: rootIdentity),
                .product(name: "Benchmark", package: "benchmark"),
                "ZlibBaseline",
            ],
            path: "Benchmarks/WireBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Replication over real sockets on loopback: lag at a steady write rate, and catch-up.
        .executableTarget(
            name: "replication-bench",
            dependencies: [
                .product(name: "ConfigModel", package: rootIdentity),
                .product(name: "ConfigStore", package: rootIdentity),
                .product(name: "Wire", package: rootIdentity),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ]
)
