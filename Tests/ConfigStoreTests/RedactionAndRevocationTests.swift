import ConfigModel
import ConfigStore
import Foundation
import NIOCore
import Testing
import PairModel
import Wire

/// Issue 24, 8: the configuration as read below the admin role carries no hash, and what is
/// written back from such a read keeps the stored one. Issue 24, 5: revoked session chains,
/// recorded, replicated by snapshot and reloaded, and pruned once expired.
@Suite struct RedactionAndRevocationTests {
    @Test func aRedactedReadHoldsNoHash_andWritesFromItKeepTheStoredOne() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let stored = temporary.store.configuration
        let redacted = stored.redactingSecrets()
        #expect(redacted.sortedOperators.allSatisfy { $0.passwordHash == SystemConfiguration.redactedSecret })
        #expect(redacted.sortedAdmins.allSatisfy { $0.passwordHash == SystemConfiguration.redactedSecret })
        var disabled = try #require(redacted.operator("ann"))
        disabled.enabled = false
        let restored = try ConfigChange.putOperator(disabled).restoringSecrets(from: stored)
        try temporary.store.write([restored])
        #expect(temporary.store.configuration.operator("ann")?.passwordHash == sampleHash)
        #expect(temporary.store.configuration.operator("ann")?.enabled == false)
        let newcomer = Operator(username: "cid", displayName: "Cid", passwordHash: SystemConfiguration.redactedSecret)
        #expect(throws: ConfigError.self) { try ConfigChange.putOperator(newcomer).restoringSecrets(from: stored) }
        #expect(throws: ConfigError.self, "the marker is never a stored hash") { try temporary.store.write([.putOperator(newcomer)]) }
    }

    @Test func aRedactedExportSaysSo_andImportingItBelowTheAdminRoleChangesNothing() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let redacted = temporary.store.configuration.redactingSecrets()
        let export = ConfigDocument.export(redacted, revision: 5)
        #expect(export.contains("\"secrets\" : \"redacted\"") && !export.contains("$scrypt$"))
        #expect(ConfigDocument.export(temporary.store.configuration, revision: 5).contains("\"secrets\" : \"included\""))
        let parsed = try ConfigDocument.parse(export, current: redacted)
        #expect(parsed.changes(from: redacted).isEmpty, "\(parsed.differences(from: redacted))")
        // An administrator's export (real hashes) imported by an operator: the hashes cannot be
        // compared, and stay as stored.
        let full = ConfigDocument.export(temporary.store.configuration, revision: 5)
        #expect(try ConfigDocument.parse(full, current: redacted).changes(from: redacted).isEmpty)
    }

    @Test func revokedSessionsAreRecordedReloadedSnapshottedAndPrunedOnceExpired() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let old = RevokedSession(username: "ann", issuedAtMs: 1_000, expiresAtMs: 5_000, revokedAtMs: 2_000)
        try temporary.store.write([.revokeSession(old)])
        #expect(temporary.store.configuration.isRevoked(username: "ANN", issuedAtMs: 1_000))
        #expect(!temporary.store.configuration.isRevoked(username: "ann", issuedAtMs: 1_001))
        #expect(try temporary.reopen().configuration.isRevoked(username: "ann", issuedAtMs: 1_000), "durable")
        var buffer = ByteBuffer()
        try temporary.store.configuration.write(to: &buffer)
        #expect(try SystemConfiguration(wire: &buffer).isRevoked(username: "ann", issuedAtMs: 1_000), "in a snapshot")
        // Recording a revocation at 6,000 drops the one whose tokens expired at 5,000.
        try temporary.store.write([.revokeSession(RevokedSession(username: "bob", issuedAtMs: 5_500, expiresAtMs: 9_000, revokedAtMs: 6_000))])
        #expect(!temporary.store.configuration.isRevoked(username: "ann", issuedAtMs: 1_000))
        #expect(temporary.store.configuration.revokedSessions.count == 1)
        #expect(try temporary.reopen().configuration.revokedSessions.count == 1, "pruned on disk the same way")
    }
}
