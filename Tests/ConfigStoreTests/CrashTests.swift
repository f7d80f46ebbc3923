import ConfigModel
import ConfigStore
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// kill -9 in the middle of writing never corrupts the store and never loses an
/// acknowledged change.
@Suite struct CrashTests {
    static let writer = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("configstore-crash-writer")

    struct Ack: Hashable {
        var revision: UInt64
        var name: String
        var changes: Int
    }

    @Test func killingTheWriterRepeatedlyLosesNoAcknowledgedChange() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.writer.path), "\(Self.writer.path) is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vcom-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("config.sqlite").path

        var acks: [Ack] = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<10 {
            let output = directory.appendingPathComponent("round-\(round).out")
            #expect(FileManager.default.createFile(atPath: output.path, contents: nil))
            let process = Process()
            process.executableURL = Self.writer
            process.arguments = [database, "2", "r\(round)"]
            process.standardOutput = try FileHandle(forWritingTo: output)
            try process.run()
            // Kill at a random moment: between commits, inside one, during an fsync.
            Thread.sleep(forTimeInterval: Double.random(in: 0.15...0.45, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            let text = try String(contentsOf: output, encoding: .utf8)
            // Only complete lines count: a line cut by the kill was never fully acknowledged.
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                let parts = line.split(separator: " ")
                guard parts.count == 4, parts[0] == "ack", let revision = UInt64(parts[1]), let changes = Int(parts[3]) else {
                    Issue.record("unreadable ack line '\(line)'")
                    continue
                }
                acks.append(Ack(revision: revision, name: String(parts[2]), changes: changes))
            }
        }
        #expect(acks.count > 50, "the writer made progress between kills (\(acks.count) acks)")
        #expect(zip(acks, acks.dropFirst()).allSatisfy { $0.revision < $1.revision }, "revisions only grow, across restarts too")

        let store = try ConfigStore(path: database)
        #expect(try store.integrityCheck() == "ok")
        #expect(store.position.revision >= acks.last?.revision ?? 0)
        let log = try store.records(after: 0, limit: 1_000_000)
        let byRevision = Dictionary(uniqueKeysWithValues: log.map { ($0.revision, $0) })
        var missing: [Ack] = []
        for ack in acks {
            guard let record = byRevision[ack.revision], case .putOperator(let value) = (ack.changes == 1 ? record.change : byRevision[ack.revision - 1]?.change),
                value.username == ack.name, store.configuration.operator(ack.name) != nil
            else {
                missing.append(ack)
                continue
            }
            if ack.changes == 2 {
                #expect(store.configuration.keys(of: ack.name).count == 1, "both changes of one transaction survived")
            }
        }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(5))")
    }
}
