import ArgumentParser
import Wire

@main
struct VcomAdmin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-admin",
        abstract: "Administers a VCOM failover pair: status, configuration, switchover.",
        discussion: "No server speaks the admin protocol yet; the command exits with status 2."
    )

    func run() throws {
        print("vcom-admin: the admin protocol is not implemented yet (wire protocol version \(WireProtocol.currentVersion) only)")
        throw ExitCode(2)
    }
}
