import Foundation
import Testing

/// `vcom-license` end to end: the built binary, real files, its exit codes.
@Suite struct LicenceToolTests {
    /// The tool sits next to the test bundle in the build folder.
    static let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vcom-license")

    struct Run {
        var status: Int32
        var output: String
        var errors: String
    }

    func run(_ arguments: [String], input: String? = nil) throws -> Run {
        // A missing tool is a failure, not a skip: `swift build --build-tests` (make test) builds it.
        try #require(FileManager.default.isExecutableFile(atPath: Self.tool.path), "\(Self.tool.path) is not built")
        let process = Process()
        process.executableURL = Self.tool
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: output, errors: errors)
    }

    func withKeys(_ body: (URL) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-license-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try run(["keygen", "--out-dir", directory.path]).status == 0)
        let issued = try run([
            "issue", "--key", directory.appendingPathComponent("vendor.key").path, "--id", "LIC-7", "--licensee", "Harbour Ops",
            "--server-id", "vcom-primary-01", "--max-clients", "250", "--features", "failover,radio", "--days", "30",
            "--out", directory.appendingPathComponent("licence.txt").path,
        ])
        #expect(issued.status == 0, "\(issued.errors)")
        try body(directory)
    }

    @Test
    func keygenIssueVerifyAndInspect() throws {
        try withKeys { directory in
            let secret = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("vendor.key").path)
            #expect((secret[.posixPermissions] as? Int) == 0o600, "the signing key is private")
            let pub = directory.appendingPathComponent("vendor.pub").path
            let licence = directory.appendingPathComponent("licence.txt").path
            let verified = try run(["verify", licence, "--key", pub])
            #expect(verified.status == 0)
            #expect(verified.output.hasPrefix("valid: licence LIC-7 for Harbour Ops"))
            #expect(verified.output.contains("warning: licence LIC-7 expires in"), "30 days left is within the warning period")
            let json = try run(["verify", licence, "--key", pub, "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
            #expect(object?["valid"] as? Bool == true)
            #expect(object?["maxClients"] as? Int == 250)
            let inspected = try run(["inspect", licence, "--json"])
            let fields = try JSONSerialization.jsonObject(with: Data(inspected.output.utf8)) as? [String: Any]
            #expect(fields?["features"] as? [String] == ["failover", "radio"])
            #expect(fields?["signatureChecked"] as? Bool == false)
        }
    }

    @Test
    func everyKindOfBadLicenceHasItsOwnExitCodeAndMessage() throws {
        try withKeys { directory in
            let pub = directory.appendingPathComponent("vendor.pub").path
            let text = try String(contentsOf: directory.appendingPathComponent("licence.txt"), encoding: .utf8)
            func verify(_ licence: String, _ extra: [String] = []) throws -> Run { try run(["verify", "-", "--key", pub] + extra, input: licence) }

            let tampered = try verify(text.replacingOccurrences(of: "max-clients: 250", with: "max-clients: 2500"))
            #expect(tampered.status == 11)
            #expect(tampered.errors.contains("altered after it was signed"))

            #expect(try run(["keygen", "--out-dir", directory.path, "--name", "other"]).status == 0)
            let foreign = try run(["verify", "-", "--key", directory.appendingPathComponent("other.pub").path], input: text)
            #expect(foreign.status == 12)
            #expect(foreign.errors.contains("which this server does not trust"))

            let expired = try verify(text, ["--at", "2099-01-01"])
            #expect(expired.status == 13)
            #expect(expired.errors.contains("expired on"))

            let early = try verify(text, ["--at", "2000-01-01"])
            #expect(early.status == 14)

            let otherServer = try verify(text, ["--server-id", "vcom-primary-02"])
            #expect(otherServer.status == 15)
            #expect(otherServer.errors.contains("bound to server 'vcom-primary-01', not to 'vcom-primary-02'"))

            let unknownFeature = try verify(text.replacingOccurrences(of: "features: failover, radio", with: "features: failover, warp"))
            #expect(unknownFeature.status == 16)
            #expect(unknownFeature.errors.contains("unknown feature 'warp'"))

            let truncated = try verify(String(text.prefix(text.count / 2)))
            #expect(truncated.status == 10)
            #expect(truncated.errors.contains("truncated"))

            let garbage = try verify("hello")
            #expect(garbage.status == 10)

            let wrongKeyFile = try run(["verify", "-", "--key", directory.appendingPathComponent("vendor.key").path], input: text)
            #expect(wrongKeyFile.status == 18)

            let missing = try run(["verify", "/nonexistent/licence.txt", "--key", pub])
            #expect(missing.status == 1)
            #expect(missing.errors.contains("cannot read /nonexistent/licence.txt"))
        }
    }

    @Test
    func issueRefusesBadInputWithoutWritingAnything() throws {
        try withKeys { directory in
            let out = directory.appendingPathComponent("bad.txt").path
            let key = directory.appendingPathComponent("vendor.key").path
            let base = ["issue", "--key", key, "--id", "LIC-8", "--licensee", "X", "--server-id", "s1", "--max-clients", "5", "--out", out]
            let noExpiry = try run(base)
            #expect(noExpiry.status != 0 && noExpiry.errors.contains("give exactly one of --days and --expires"))
            let badFeature = try run(base + ["--days", "10", "--features", "failover,warp"])
            #expect(badFeature.status == 64 && badFeature.errors.contains("unknown feature 'warp'"))
            let badSeats = try run(base.map { $0 == "5" ? "0" : $0 } + ["--days", "10"])
            #expect(badSeats.status == 64 && badSeats.errors.contains("--max-clients must be 1 to 1000000"))
            #expect(!FileManager.default.fileExists(atPath: out))
            let existing = try run(["keygen", "--out-dir", directory.path])
            #expect(existing.status == 73 && existing.errors.contains("use --force"), "keygen never overwrites a key silently")
        }
    }

    /// Issue 8, item 18: one exit code per kind of failure, errors that name the real
    /// problem, sane bounds, no silent overwrite.
    @Test
    func theToolNamesTheRealProblemWithOneExitCodePerKind() throws {
        try withKeys { directory in
            let key = directory.appendingPathComponent("vendor.key").path
            let pub = directory.appendingPathComponent("vendor.pub").path
            let licence = directory.appendingPathComponent("licence.txt").path
            // The same undecodable bytes from a file or from standard input: malformed, 10.
            let binary = directory.appendingPathComponent("binary.txt")
            try Data([0xFF, 0xFE, 0x00, 0x80]).write(to: binary)
            let fromFile = try run(["verify", binary.path, "--key", pub])
            #expect(fromFile.status == 10 && fromFile.errors.contains("is not UTF-8 text"), "\(fromFile.errors)")
            let process = try run(["verify", "-", "--key", pub], input: String(decoding: [0xFF, 0xFE, 0x00, 0x80] as [UInt8], as: UTF8.self))
            #expect(process.status == 10)
            // --json means JSON, even for a file that cannot be read.
            let unreadable = try run(["verify", "/nonexistent", "--key", pub, "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(unreadable.output.utf8)) as? [String: Any]
            #expect(unreadable.status == 1 && object?["exitCode"] as? Int == 1 && object?["valid"] as? Bool == false)
            let inspectJSON = try run(["inspect", "/nonexistent", "--json"])
            #expect((try? JSONSerialization.jsonObject(with: Data(inspectJSON.output.utf8))) != nil)

            let base = ["issue", "--key", key, "--id", "LIC-9", "--server-id", "s1", "--max-clients", "5"]
            for (licensee, words) in [(" Metro", "no spaces at the start or end"), ("Metro\nmax-clients: 9", "printable text"), ("\u{1B}[31mRed", "printable text")] {
                let result = try run(base + ["--licensee", licensee, "--days", "10"])
                #expect(result.status == 64 && result.errors.contains(words), "\(licensee.debugDescription): \(result.errors)")
            }
            let longName = try run(base + ["--licensee", String(repeating: "é", count: 101), "--days", "10"])
            #expect(longName.status == 64 && longName.errors.contains("at most 200 bytes"))
            let forever = try run(base + ["--licensee", "Metro", "--days", "100000000"])
            #expect(forever.status == 64 && forever.errors.contains("--days must be 1 to 36525"))
            let farExpiry = try run(base + ["--licensee", "Metro", "--expires", "9999-01-01"])
            #expect(farExpiry.status == 64)
            // No silent overwrite of an issued licence.
            let before = try String(contentsOfFile: licence, encoding: .utf8)
            let again = try run(base + ["--licensee", "Metro", "--days", "10", "--out", licence])
            #expect(again.status == 73 && again.errors.contains("use --force"))
            #expect(try String(contentsOfFile: licence, encoding: .utf8) == before)
            #expect(try run(base + ["--licensee", "Metro", "--days", "10", "--out", licence, "--force"]).status == 0)
        }
    }
}
