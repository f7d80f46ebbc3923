// swift-tools-version: 6.1
// The VCOM failover pair: library modules under Modules/, thin executables under Apps/,
// tools under Tools/. PairModel (the vocabulary) sits at the bottom of the graph, the Apps at the
// top; nothing imports an App, and the decision modules link no I/O library.
// Benchmarks and fuzz targets live in their own packages (Tools/Benchmarks, Tools/Fuzz)
// so the default build and CI do not pay for them.
import PackageDescription

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]

let package = Package(
    name: "vcom-failover",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Licensing", targets: ["Licensing"]),
        .library(name: "ConfigModel", targets: ["ConfigModel"]),
        .library(name: "ConfigStore", targets: ["ConfigStore"]),
        .library(name: "HealthMonitor", targets: ["HealthMonitor"]),
        .library(name: "ActivationPolicy", targets: ["ActivationPolicy"]),
        .library(name: "PairNode", targets: ["PairNode"]),
        .library(name: "AdminProtocol", targets: ["AdminProtocol"]),
        .library(name: "ServerRuntime", targets: ["ServerRuntime"]),
        .library(name: "ClientRuntime", targets: ["ClientRuntime"]),
        .library(name: "TransportSecurity", targets: ["TransportSecurity"]),
        .executable(name: "vcom-server", targets: ["vcom-server"]),
        .executable(name: "vcom-admin", targets: ["vcom-admin"]),
        .executable(name: "vcom-client-sim", targets: ["vcom-client-sim"]),
        .executable(name: "vcom-license", targets: ["vcom-license"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // MARK: Modules, bottom up (each depends only on those above it)
        // Layer 0, the pair's vocabulary (roles, states, endpoints, reasons, time): depends on nothing.
        .target(name: "PairModel", path: "Modules/PairModel"),
        // Layer 1, pure decisions: they link neither NIO nor zlib. The policy, the link monitor and the
        // census, and PairNode, one server's decisions as one value (what the runtime carries out and
        // the simulator drives); the licence's rules.
        .target(name: "HealthMonitor", dependencies: ["PairModel"], path: "Modules/HealthMonitor"),
        .target(name: "ActivationPolicy", dependencies: ["PairModel", "HealthMonitor"], path: "Modules/ActivationPolicy"),
        .target(name: "PairNode", dependencies: ["PairModel", "HealthMonitor", "ActivationPolicy"], path: "Modules/PairNode"),
        .target(
            name: "Licensing", dependencies: ["PairModel", .product(name: "Crypto", package: "swift-crypto")], path: "Modules/Licensing"),
        // Layer 1, the wire format. The system zlib (zlib1g-dev) through a shim of our own rather than
        // compress-nio: the codec must give inflate an exact output cap and read zlib's status codes to
        // reject decompression bombs and truncated streams, which compress-nio does not expose.
        .target(name: "CZlib", path: "Modules/CZlib", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "Wire", dependencies: nio + ["PairModel", "CZlib"], path: "Modules/Wire"),
        // Layer 1, TLS for every port: contexts from PEM files (reloadable), the pair's PKI (swift-certificates),
        // identity and pin checks. Depends on neither Wire nor the server: the client library and
        // vcom-admin use it too.
        .target(
            name: "TransportSecurity",
            dependencies: nio + [
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Modules/TransportSecurity"),
        // Layer 2, the configuration as values: the model, its rules, its binary and document forms, and the
        // pure replication machines. What vcom-admin needs; no SQLite.
        .target(
            name: "ConfigModel",
            dependencies: [
                "PairModel", "Wire", .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "HashTreeCollections", package: "swift-collections"),
            ],
            path: "Modules/ConfigModel"
        ),
        // Layer 3, the configuration persisted in SQLite (GRDB), behind the model.
        .target(
            name: "ConfigStore",
            dependencies: [
                "ConfigModel", "PairModel", "Wire", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "HashTreeCollections", package: "swift-collections"),
            ],
            path: "Modules/ConfigStore"
        ),
        // Layer 3, the admin port's protocol and its client (SCRAM, the request loop).
        .target(
            name: "AdminProtocol",
            dependencies: nio + [
                "PairModel", "Wire", "ConfigModel", "TransportSecurity", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Modules/AdminProtocol"),
        // Layer 3, the library every client program uses: a pure connection machine and its NIO shell.
        .target(
            name: "ClientRuntime",
            dependencies: nio + ["PairModel", "Wire", "HealthMonitor", "TransportSecurity", .product(name: "Logging", package: "swift-log")],
            path: "Modules/ClientRuntime"
        ),
        // Layer 3, the witness's client (issue 29): etcd's v3 API through its JSON gateway, with
        // AsyncHTTPClient. It carries out PairNode's witness requests and classifies the answers.
        .target(
            name: "WitnessClient",
            dependencies: nio + [
                "PairModel", "PairNode", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Modules/WitnessClient"),

        // Layer 4, composition: the server as a library tests start in-process; the apps stay thin.
        .target(
            name: "ServerRuntime",
            dependencies: nio + [
                "PairModel", "PairNode", "Wire", "Licensing", "ConfigModel", "ConfigStore", "HealthMonitor", "ActivationPolicy", "AdminProtocol",
                "TransportSecurity", "WitnessClient",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            path: "Modules/ServerRuntime"
        ),

        // MARK: Apps (thin: parse arguments, wire modules together)
        .executableTarget(
            name: "vcom-server",
            dependencies: [
                "ServerRuntime", "AdminProtocol", "ConfigModel", "Wire", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Apps/vcom-server"
        ),
        .executableTarget(
            name: "vcom-admin",
            dependencies: [
                "PairModel", "Wire", "AdminProtocol", "ConfigModel", "TransportSecurity", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Apps/vcom-admin"
        ),
        // The chaos suite's judge: reads what the processes reported, shares no code with them.
        .executableTarget(
            name: "chaos-check", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/chaos-check"),
        // The chaos suite's peer-link delay and stalls, where the kernel has no netem.
        .executableTarget(
            name: "chaos-relay",
            dependencies: nio + [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/chaos-relay"),
        .executableTarget(
            name: "vcom-client-sim",
            dependencies: [
                "PairModel", "Wire", "ClientRuntime", "HealthMonitor", "TransportSecurity",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Apps/vcom-client-sim"
        ),

        // MARK: Tools
        // The deterministic failover simulator: a library (the per-row tests script it) and
        // the `make simulate` runner.
        .target(
            name: "FailoverSimulator",
            dependencies: ["PairModel", "PairNode", "ActivationPolicy", "HealthMonitor"],
            path: "Tools/FailoverSimulator"
        ),
        .executableTarget(
            name: "vcom-license",
            dependencies: ["Licensing", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/vcom-license"
        ),
        // Test helper: writes and acknowledges configuration changes until killed.
        .executableTarget(name: "configstore-crash-writer", dependencies: ["ConfigModel", "ConfigStore"], path: "Tools/configstore-crash-writer"),
        .executableTarget(
            name: "failover-sim",
            dependencies: ["FailoverSimulator", "ActivationPolicy", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/failover-sim"
        ),

        // MARK: Tests (one target per module)
        .testTarget(
            name: "WireTests",
            dependencies: [
                "PairModel", "Wire",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/WireTests"
        ),
        .testTarget(
            name: "LicensingTests", dependencies: ["Licensing", "PairModel", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/LicensingTests"),
        .testTarget(
            name: "ConfigStoreTests",
            dependencies: [
                "ConfigModel", "ConfigStore", "PairModel", .product(name: "NIOCore", package: "swift-nio"), .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/ConfigStoreTests"),
        .testTarget(
            name: "TransportSecurityTests",
            dependencies: ["TransportSecurity", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")],
            path: "Tests/TransportSecurityTests"),
        .testTarget(name: "HealthMonitorTests", dependencies: ["HealthMonitor", "PairModel"], path: "Tests/HealthMonitorTests"),
        .testTarget(
            name: "ActivationPolicyTests", dependencies: ["ActivationPolicy", "PairModel", "FailoverSimulator"], path: "Tests/ActivationPolicyTests"),
        // PairNode's scenarios (two nodes joined by an exact link) and maintenance mode.
        .testTarget(
            name: "PairNodeTests", dependencies: ["PairNode", "ActivationPolicy", "HealthMonitor", "PairModel", "FailoverSimulator"],
            path: "Tests/PairNodeTests"),
        .testTarget(name: "AdminProtocolTests", dependencies: ["AdminProtocol", "PairModel", "ConfigModel"], path: "Tests/AdminProtocolTests"),
        .testTarget(
            name: "ServerRuntimeTests",
            dependencies: [
                "ServerRuntime", "PairModel", "ClientRuntime", "ConfigModel", "ConfigStore", "Licensing", .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/ServerRuntimeTests"),
        .testTarget(
            name: "ClientRuntimeTests", dependencies: ["ClientRuntime", "PairModel", "HealthMonitor", "Wire", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Tests/ClientRuntimeTests"),
        // What several test targets start: a real etcd (Debian's etcd-server) on free loopback ports.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // The witness's client against a real etcd, started by the tests.
        .testTarget(
            name: "WitnessClientTests", dependencies: ["WitnessClient", "PairNode", "TestSupport", .product(name: "NIOPosix", package: "swift-nio")],
            path: "Tests/WitnessClientTests"),
        // Real vcom-server processes on loopback, driven through the client library.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "ClientRuntime", "PairModel", "ConfigModel", "ConfigStore", "Licensing", "Wire", "AdminProtocol", "TransportSecurity", "TestSupport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], path: "Tests/EndToEndTests"),
    ]
)
