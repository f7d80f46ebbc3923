import Foundation

/// A crashed server must let go of its sockets at once: the secondary activates within
/// milliseconds of the peer link's close, and every client sees its own close and logs in
/// there. The Swift runtime's backtracer, by default, holds the crashed process with every
/// socket open while it symbolicates: 8.5 s measured here for a release vcom-server (3.6 s
/// with `symbolicate=fast`), during which the crash looks like a hung server to everyone
/// (the slower "silent" path of docs/failover-policy.md, and a supervisor cannot restart it).
/// `symbolicate=off` reports in 65 ms and still prints every thread's addresses and the loaded
/// images with their build ids, enough to symbolicate offline.
///
/// The runtime reads SWIFT_BACKTRACE once, before `main`, so setting it means running the
/// binary again: once, at start-up, before anything is opened. An operator's own setting is
/// kept as it is.
public enum FastCrash {
    static let variable = "SWIFT_BACKTRACE"
    static let setting = "symbolicate=off"

    public static func restartIfNeeded() {
        guard getenv(variable) == nil else { return }
        setenv(variable, setting, 1)
        // The binary's own path, not /proc/self/exe: the process is named after the file it runs
        // (ps, pgrep and the crash report would say "exe").
        let reason: String
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            execv(path, CommandLine.unsafeArgv)
            reason = String(cString: strerror(errno))
        } else {
            reason = "/proc/self/exe cannot be read"
        }
        // Still here: exec failed. Run as we are; only a crash's report is slower.
        FileHandle.standardError.write(
            Data("vcom-server: could not restart with \(variable)=\(setting) (\(reason)); a crash will hold the sockets while it is reported\n".utf8))
    }
}
