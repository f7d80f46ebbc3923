import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import ServerRuntime

/// A login storm with one password pays one slow hash, not one per login.
@Suite struct VerifiedPasswordsTests {
    @Test func concurrentLoginsWithOnePasswordShareOneCheck_andTheNextOneIsFromMemory() async throws {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let calls = NIOLockedValueBox(0)
        let gate = DispatchSemaphore(value: 0)
        let check: @Sendable (String, String) -> Bool = { password, _ in
            calls.withLockedValue { $0 += 1 }
            gate.wait()  // still running while the others ask
            return password == "right"
        }
        let verified = VerifiedPasswords()
        let now = Date()
        let futures = (0..<50).map { _ in verified.verify("right", against: "stored", at: now, pool: pool, on: loop, check: check) }
        gate.signal()
        for future in futures { #expect(try await future.get()) }
        #expect(calls.withLockedValue { $0 } == 1)
        #expect(try await verified.verify("right", against: "stored", at: now, pool: pool, on: loop, check: check).get())
        #expect(calls.withLockedValue { $0 } == 1, "a matched password is remembered")

        // A wrong password is checked (and coalesced) but never remembered.
        let wrong = (0..<10).map { _ in verified.verify("wrong", against: "stored", at: now, pool: pool, on: loop, check: check) }
        gate.signal()
        for future in wrong { #expect(try await future.get() == false) }
        #expect(calls.withLockedValue { $0 } == 2)
        let again = verified.verify("wrong", against: "stored", at: now, pool: pool, on: loop, check: check)
        gate.signal()
        #expect(try await again.get() == false)
        #expect(calls.withLockedValue { $0 } == 3)
        // Another stored hash (a changed password) misses the memory.
        let changed = verified.verify("right", against: "other", at: now, pool: pool, on: loop, check: check)
        gate.signal()
        #expect(try await changed.get())
        #expect(calls.withLockedValue { $0 } == 4)
        try await pool.shutdownGracefully()
    }
}
