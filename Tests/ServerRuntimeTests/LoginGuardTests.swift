import Foundation
import Testing

@testable import ServerRuntime

/// The admin port's login guard, with the time given.
@Suite struct LoginGuardTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func fiveFailuresLockTheAccountForAMinute_doublingAfterwards() {
        var guardState = LoginGuard()
        for second in 0..<4 { guardState.failed(source: "10.0.0.9", account: "root", at: t0 + Double(second)) }
        #expect(guardState.refusal(source: "10.0.0.9", account: "root", at: t0 + 5) == nil, "four failures: still allowed")
        guardState.failed(source: "10.0.0.9", account: "root", at: t0 + 5)
        #expect(guardState.refusal(source: "10.0.0.9", account: "root", at: t0 + 6) == 59)
        #expect(guardState.refusal(source: "10.0.0.7", account: "Root", at: t0 + 6) != nil, "the account, from anywhere, any case")
        #expect(guardState.refusal(source: "10.0.0.9", account: "ops", at: t0 + 6) == nil, "another account from that address is not locked")
        #expect(guardState.refusal(source: "10.0.0.9", account: "root", at: t0 + 66) == nil, "a minute later")
        for second in 0..<5 { guardState.failed(source: "10.0.0.9", account: "root", at: t0 + 70 + Double(second)) }
        #expect(guardState.refusal(source: "10.0.0.9", account: "root", at: t0 + 75) == 119, "the second lock lasts two minutes")
    }

    @Test func twentyFailuresFromOneAddressLockTheAddress_aSuccessClearsOnlyTheAccount() {
        var guardState = LoginGuard()
        for n in 0..<20 { guardState.failed(source: "10.0.0.9", account: "guess\(n)", at: t0 + Double(n) / 10) }
        #expect(guardState.refusal(source: "10.0.0.9", account: "root", at: t0 + 3) != nil, "a spray of names locks the address")
        #expect(guardState.refusal(source: "10.0.0.8", account: "root", at: t0 + 3) == nil)
        var other = LoginGuard()
        for n in 0..<3 { other.failed(source: "10.0.0.9", account: "root", at: t0 + Double(n)) }
        other.succeeded(account: "root")
        for n in 0..<4 { other.failed(source: "10.0.0.9", account: "root", at: t0 + 10 + Double(n)) }
        #expect(other.refusal(source: "10.0.0.9", account: "root", at: t0 + 15) == nil, "the success reset the account's count")
    }
}
