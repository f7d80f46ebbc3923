import PairModel
import HealthMonitor
import Testing

@Suite struct ClientCensusTests {
    func ms(_ value: Int64) -> MonotonicTime { .milliseconds(value) }

    func census(clients: Int) -> ClientCensus {
        var census = ClientCensus()  // window 4 s, majority > 50 %, large share ≥ 30 %, minimum 10
        for _ in 0..<clients { census.clientJoined(at: ms(0)) }
        return census
    }

    @Test func aBurstFiresLargeShareThenMajority() {
        var census = census(clients: 40)
        var fired: [(Int, ClientCensus.Report)] = []
        for n in 1...25 {
            for report in census.clientLost(at: ms(1000 + Int64(n) * 50)) { fired.append((n, report)) }
        }
        #expect(fired.map(\.0) == [12, 21])
        #expect(fired.map(\.1) == [.largeShareLost(lost: 12, population: 40), .majorityLost(lost: 21, population: 40)])
    }

    @Test func logoutsAndRedirectsNeverCount() {
        var census = census(clients: 40)
        for n in 0..<30 { census.clientLeft(at: ms(1000 + Int64(n))) }
        #expect(census.connected == 10)
        #expect(census.clientLost(at: ms(2000)) == [], "1 of 10 is not a large share")
    }

    @Test func aSlowTrickleNeverFires() {
        var census = census(clients: 40)
        for n in 0..<35 {
            // One loss every 4.5 s: never two inside one 4 s window.
            #expect(census.clientLost(at: ms(Int64(n) * 4500)) == [])
        }
    }

    @Test func aServerWithAlmostNoClientsNeverFires() {
        var census = census(clients: 9)
        for n in 0..<9 { #expect(census.clientLost(at: ms(1000 + Int64(n))) == []) }
    }

    @Test func eachLevelFiresOncePerEpisodeAndAgainInTheNext() {
        var census = census(clients: 100)
        var count = 0
        for n in 0..<60 { count += census.clientLost(at: ms(1000 + Int64(n))).count }
        #expect(count == 2)
        for _ in 0..<60 { census.clientJoined(at: ms(2000)) }
        // The window empties (4 s after the last loss): a new episode can fire again.
        census.tick(at: ms(6000))
        #expect(census.recentLosses == 0)
        var second = 0
        for n in 0..<60 { second += census.clientLost(at: ms(7000 + Int64(n))).count }
        #expect(second == 2)
    }

    @Test func theWindowSlides() {
        var census = census(clients: 40)
        for n in 0..<11 { _ = census.clientLost(at: ms(Int64(n) * 100)) }
        // 11 losses in the window; at 5 s they have all left it.
        census.tick(at: ms(5100))
        #expect(census.recentLosses == 0)
        #expect(census.nextDeadline == nil)
        // 11 more: 11 of 29 is 38 %, a large share of the population that was there.
        var reports: [ClientCensus.Report] = []
        for n in 0..<11 { reports += census.clientLost(at: ms(6000 + Int64(n))) }
        #expect(reports == [.largeShareLost(lost: 9, population: 29)])
    }

    @Test func allLeftEndsTheEpisodeWithoutALoss() {
        var census = census(clients: 40)
        _ = census.clientLost(at: ms(0))
        census.allLeft(at: ms(10))
        #expect(census.connected == 0)
        #expect(census.recentLosses == 0)
        #expect(census.clientLost(at: ms(20)) == [], "nobody is left to lose")
    }

    /// Issue 9, item 7: after an earlier majority loss, one flaky client lost about every
    /// 2 s keeps the window from emptying; a real partition later must still be reported.
    @Test func aTrickleAfterAnEpisodeDoesNotKeepTheNextOneFromFiring() {
        var census = census(clients: 40)
        var reports: [ClientCensus.Report] = []
        for n in 0..<25 { reports += census.clientLost(at: ms(1000 + Int64(n) * 10)) }
        #expect(reports.count == 2)
        for _ in 0..<25 { census.clientJoined(at: ms(2000)) }  // they come back
        var trickle: [ClientCensus.Report] = []
        var t: Int64 = 2000
        for _ in 0..<15 {
            t += 2000
            trickle += census.clientLost(at: ms(t))
            census.clientJoined(at: ms(t + 500))  // the flaky client returns
        }
        #expect(trickle.isEmpty, "a trickle is not a network event")
        #expect(census.recentLosses > 0, "the window never emptied")
        var partition: [ClientCensus.Report] = []
        for n in 0..<30 { partition += census.clientLost(at: ms(t + 1000 + Int64(n) * 20)) }
        #expect(partition.contains { if case .majorityLost = $0 { true } else { false } }, "\(partition)")
    }
}
