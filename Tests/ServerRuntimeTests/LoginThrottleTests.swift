import Foundation
import Testing

@testable import ServerRuntime

/// The login throttle of both ports, with the time given: per (account, source) and per
/// source, never per account alone (issue 24, 3 and 10).
@Suite struct LoginThrottleTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func fiveFailuresLockTheAccountFromThatSourceOnly_doublingAfterwards() {
        var throttle = LoginThrottle()
        for second in 0..<4 { throttle.failed(account: "root", source: "10.0.0.9", at: t0 + Double(second)) }
        #expect(throttle.refusal(account: "root", source: "10.0.0.9", at: t0 + 5) == nil, "four failures: still allowed")
        let locked = throttle.failed(account: "root", source: "10.0.0.9", at: t0 + 5)
        #expect(locked, "the fifth locks")
        #expect(throttle.refusal(account: "Root", source: "10.0.0.9", at: t0 + 6) == 59, "any case of the name")
        #expect(throttle.refusal(account: "root", source: "10.0.0.7", at: t0 + 6) == nil, "a stranger cannot lock root out of another address")
        #expect(throttle.refusal(account: "ops", source: "10.0.0.9", at: t0 + 6) == nil, "another account from that address is not locked")
        #expect(throttle.refusal(account: "root", source: "10.0.0.9", at: t0 + 66) == nil, "a minute later")
        for second in 0..<5 { throttle.failed(account: "root", source: "10.0.0.9", at: t0 + 70 + Double(second)) }
        #expect(throttle.refusal(account: "root", source: "10.0.0.9", at: t0 + 75) == 119, "the second lock lasts two minutes")
    }

    @Test func aSprayOfNamesLocksTheSource_aSuccessClearsOnlyItsPair() {
        var throttle = LoginThrottle(rules: .init(failuresPerAccountAndSource: 5, failuresPerSource: 20))
        for n in 0..<20 { throttle.failed(account: "guess\(n)", source: "10.0.0.9", at: t0 + Double(n) / 10) }
        #expect(throttle.refusal(account: "root", source: "10.0.0.9", at: t0 + 3) != nil, "a spray of names locks the address")
        #expect(throttle.refusal(account: "root", source: "10.0.0.8", at: t0 + 3) == nil)
        var other = LoginThrottle()
        for n in 0..<3 { other.failed(account: "root", source: "10.0.0.9", at: t0 + Double(n)) }
        other.succeeded(account: "root", source: "10.0.0.9")
        for n in 0..<4 { other.failed(account: "root", source: "10.0.0.9", at: t0 + 10 + Double(n)) }
        #expect(other.refusal(account: "root", source: "10.0.0.9", at: t0 + 15) == nil, "the success reset the pair's count")
    }

    @Test func ipv6SourcesCountByTheir64Prefix() {
        #expect(ipv6SourceKey("2001:db8:1:2::1") == ipv6SourceKey("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        #expect(ipv6SourceKey("2001:db8:1:2::1") != ipv6SourceKey("2001:db8:1:3::1"))
        #expect(ipv6SourceKey("::ffff:10.1.2.3") == "10.1.2.3", "an IPv4-mapped address counts as its IPv4 address")
    }
}

/// What a stranger may write to the audit log: a row per refusal up to the budget, then one
/// summary row per source and minute.
@Suite struct RefusalSummaryTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func refusalsBeyondTheBudgetBecomeOneSummaryRow() {
        var summaries = RefusalSummaries(perSource: 10, overall: 100)
        var written = 0
        var rows: [String] = []
        for n in 0..<500 {
            let (write, summary) = summaries.note(source: "10.0.0.9", at: t0 + Double(n) / 100)
            written += write ? 1 : 0
            rows += summary.map(\.result)
        }
        #expect(written == 10 && rows.isEmpty, "ten rows, the rest counted")
        #expect(summaries.note(source: "10.0.0.8", at: t0 + 5).write, "another source has its own budget")
        rows += summaries.flush(at: t0 + 61).map(\.result)
        #expect(rows.count == 1 && rows[0].hasPrefix("490 more refused attempts"), "\(rows)")
        #expect(summaries.note(source: "10.0.0.9", at: t0 + 62).write, "a new minute, a new budget")
    }

    @Test func manySourcesShareAnOverallBudget() {
        var summaries = RefusalSummaries(perSource: 10, overall: 100)
        let written = (0..<1000).filter { summaries.note(source: "10.0.\($0 / 250).\($0 % 250)", at: t0).write }.count
        #expect(written == 100)
        #expect(summaries.flush(at: t0 + 60).count == 900, "each source that lost a row gets its summary")
    }
}
