import ArgumentParser
import Wire

@main
struct VcomServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-server",
        abstract: "A VCOM intercom server, primary or secondary of a failover pair.",
        discussion: """
            The server runtime (peer link, client sessions, admin port) is not built yet: \
            this build has the Wire protocol only, and the command exits with status 2.
            """
    )

    func run() throws {
        print("vcom-server: the server runtime is not implemented yet (wire protocol version \(WireProtocol.currentVersion) only)")
        throw ExitCode(2)
    }
}
