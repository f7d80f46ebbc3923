// swift-tools-version: 6.1
// libFuzzer targets, kept out of the main package: a fuzz executable has no main of its
// own (libFuzzer supplies it), so it cannot link in an ordinary build. Run `make fuzz`.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which is whatever the checkout is called.
let rootIdentity = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "vcom-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(
            name: "wire-fuzz",
            dependencies: [.product(name: "Wire", package: rootIdentity)]
        )
    ]
)
