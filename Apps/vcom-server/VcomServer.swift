import ArgumentParser
import Foundation
import Logging
import ServerRuntime
import ServiceLifecycle

@main
struct VcomServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-server",
        abstract: "A VCOM intercom server: the primary or the secondary of a failover pair.",
        subcommands: [Run.self, Bootstrap.self, HashPassword.self, Settings.self],
        defaultSubcommand: Run.self
    )

    static func main() async {
        FastCrash.restartIfNeeded()
        await main(nil)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs the server (the default command).",
        discussion: """
            Settings come from the configuration file (--config, TOML) and the flags below, \
            which override it; docs/configuration.md has a complete example pair, and \
            `vcom-server settings` every setting of the file. The cluster secret is read from a \
            file, never from the command line.

            Once listening, the server prints one JSON line to standard output \
            ({"ready": true, "client": "host:port", ...}) and writes it to --ready-file if given. \
            SIGTERM or SIGINT shuts it down gracefully: a server that serves hands its clients \
            over to its peer when that needs no authorization, then exits 0.

            Exit codes: 0 stopped cleanly; 64 bad command line; 78 a missing or invalid setting \
            (the message names it); 1 a runtime failure after start-up.

            SETTINGS:
            \(SettingsTable.helpText)
            """
    )

    @Option(help: "The configuration file (TOML).") var config: String?
    @Option(help: "Also write the ready line to this file.") var readyFile: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"
    @Argument(parsing: .allUnrecognized, help: "Settings, as listed below (--role primary ...).") var settings: [String] = []

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let resolved: ServerSettings
        do throws(ConfigurationProblem) {
            var values = try config.map(SettingValues.load(file:)) ?? SettingValues()
            try values.apply(flags: settings)
            resolved = try ServerSettings(values)
        } catch {
            FileHandle.standardError.write(Data("vcom-server: \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        }
        let logger = ServerRuntime.standardErrorLogger(level: level)
        let runtime: ServerRuntime
        do {
            runtime = try await ServerRuntime.start(settings: resolved, logger: logger)
        } catch let error as ServerRuntime.StartError {
            FileHandle.standardError.write(Data("vcom-server: \(error)\n".utf8))
            throw ExitCode(78)
        }
        let hangups = runtime.reloadCertificatesOnHangup()
        defer { hangups.cancel() }
        try runtime.readyLine.write(toFile: readyFile)
        let group = ServiceGroup(services: [runtime], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        try await group.run()
    }
}

/// `vcom-server settings`: every setting, as docs/configuration.md lists them.
struct Settings: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lists every setting: key, flag, values, default and meaning.")
    @Flag(help: "As the Markdown table of docs/configuration.md.") var markdown = false

    func run() {
        if markdown {
            print(SettingsTable.markdown)
        } else {
            for setting in SettingsTable.all {
                print("\(setting.key)\(setting.flag.map { " (\($0))" } ?? ""): \(setting.valuesText)\(setting.defaultValue.map { ", default \($0)" } ?? "")")
                print("    \(setting.help)")
            }
        }
    }
}
