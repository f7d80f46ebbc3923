import Foundation
import GRDB
import Testing

@testable import ConfigStore

@Suite struct CheckpointTests {
    /// Commits never checkpoint (that is what kept the lag tail down), so pages reach the
    /// main database file only through the background checkpointer: the file grows with no
    /// checkpoint from this test.
    @Test func theBackgroundCheckpointerCopiesTheLogIntoTheDatabaseFile() throws {
        let temporary = try TemporaryStore()
        func size() -> Int { ((try? FileManager.default.attributesOfItem(atPath: temporary.path))?[.size] as? Int) ?? 0 }
        let before = size()
        for n in 0..<300 { try temporary.store.write([.setSetting(key: "n\(n)", value: String(repeating: "x", count: 200))]) }
        // Bounded wait: a few checkpoint intervals.
        let deadline = Date().addingTimeInterval(5)
        while size() < before + 60_000, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(size() >= before + 60_000, "main file \(size()) bytes, was \(before)")
        let autocheckpoint = try temporary.store.database.read { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
        #expect(autocheckpoint == 0, "commits never run a checkpoint themselves")
    }
}
