import ArgumentParser
import Wire

@main
struct VcomClientSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-client-sim",
        abstract: "Simulates VCOM client panels logging in, talking and failing over.",
        discussion: "No server accepts clients yet; the command exits with status 2."
    )

    func run() throws {
        print("vcom-client-sim: no server to connect to yet (wire protocol version \(WireProtocol.currentVersion) only)")
        throw ExitCode(2)
    }
}
