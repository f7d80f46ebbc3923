import Foundation

/// Progress and the summary, for a person (a live line on a terminal, plain lines in a pipe)
/// or for a program (`--json`: one object per line).
final class Output: @unchecked Sendable {
    let json: Bool
    let live: Bool
    private var lastLogins = 0
    private var lastTime: Duration = .zero

    init(json: Bool, live: Bool) {
        self.json = json
        self.live = live
    }

    func progress(_ counts: SimulationRun.Counts, at elapsed: Duration) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let interval = max(0.001, seconds - (Double(lastTime.components.seconds) + Double(lastTime.components.attoseconds) / 1e18))
        let rate = Int(Double(counts.logins - lastLogins) / interval)
        lastLogins = counts.logins
        lastTime = elapsed
        let servers = counts.on.sorted { $0.key.description < $1.key.description }
        if json {
            emit([
                "type": "progress", "t_s": (seconds * 10).rounded() / 10, "started": counts.started, "logged_in": counts.loggedIn,
                "in_outage": counts.inOutage, "logins_per_s": rate, "refusals": counts.refusals,
                "on": Dictionary(uniqueKeysWithValues: servers.map { ($0.key.description, $0.value) }),
            ])
            return
        }
        let perServer = servers.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = String(format: "t=%5.1fs", seconds) + " logged in \(counts.loggedIn)/\(counts.started) [\(perServer)] in outage \(counts.inOutage) logins/s \(rate)"
        if live {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + line).utf8))
        } else {
            print(line)
            fflush(nil)  // into a file or a pipe too: the benchmarks read the progress live
        }
    }

    func note(_ text: String) {
        if json {
            emit(["type": "note", "text": text])
        } else {
            if live { FileHandle.standardOutput.write(Data("\n".utf8)) }
            print("vcom-client-sim: \(text)")
            fflush(nil)
        }
    }

    func summary(_ summary: Summary) {
        if json {
            emit([
                "type": "summary", "clients": summary.clients, "ever_logged_in": summary.everLoggedIn, "never_back": summary.neverBack,
                "not_logged_in_at_end": summary.notLoggedInAtEnd, "fault_marked": summary.marked, "login": summary.login.json,
                "outages": summary.outages.json, "relogin": summary.relogin.json, "loss_noticed": summary.lossNoticed.json, "media_gap": summary.mediaGap.json,
                "on_at_end": summary.onAtEnd, "refusals": summary.refusals,
            ])
            return
        }
        if live { FileHandle.standardOutput.write(Data("\n".utf8)) }
        func row(_ name: String, _ figures: Summary.Figures) -> String {
            String(format: "  %-22@ %6d   p50 %8.1f   p90 %8.1f   p99 %8.1f   max %8.1f ms", name as NSString, figures.count, figures.p50, figures.p90, figures.p99, figures.max)
        }
        print("vcom-client-sim: \(summary.clients) clients, \(summary.everLoggedIn) ever logged in, \(summary.notLoggedInAtEnd) not logged in at the end")
        print(row("first login", summary.login))
        print(row("outages", summary.outages))
        if summary.marked {
            print(row("loss noticed", summary.lossNoticed))
            print(row("back after the fault", summary.relogin))
            print(row("media gap (listeners)", summary.mediaGap))
            print("  never came back after the fault: \(summary.neverBack)")
        }
        print("  at the end: " + summary.onAtEnd.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// Why sessions ended or logins were refused, the most frequent first.
    func reasons(_ counts: [String: Int]) {
        guard !counts.isEmpty else { return }
        let sorted = counts.sorted { $0.value > $1.value }.prefix(8)
        if json {
            emit(["type": "reasons", "reasons": Dictionary(uniqueKeysWithValues: sorted.map { ($0.key, $0.value) })])
            return
        }
        print("  sessions lost and logins refused, by reason:")
        for (reason, count) in sorted { print(String(format: "  %8d  ", count) + reason) }
    }

    private func emit(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
