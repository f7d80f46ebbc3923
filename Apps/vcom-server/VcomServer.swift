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
        version: "vcom-server \(BuildInfo.version) (commit \(BuildInfo.commit))",
        subcommands: [Run.self, CheckConfig.self, Bootstrap.self, HashPassword.self, Settings.self],
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
    @Argument(parsing: .allUnrecognized, help: "Settings, as listed below (--role primary ...).") var settings: [String] = []

    func run() async throws {
        let resolved: ServerSettings
        do throws(ConfigurationProblems) {
            resolved = try ServerSettings.resolve(file: config, flags: settings)
        } catch {
            FileHandle.standardError.write(Data(error.description.split(separator: "\n").map { "vcom-server: \($0)\n" }.joined().utf8))
            throw ExitCode(error.exitCode)
        }
        let logger = ServerRuntime.standardErrorLogger(level: Logger.Level(rawValue: resolved.log.level) ?? .info, json: resolved.log.json)
        let runtime: ServerRuntime
        do {
            runtime = try await ServerRuntime.start(settings: resolved, logger: logger)
        } catch let error as ServerRuntime.StartError {
            logger.critical("\(error)")
            throw ExitCode(78)
        }
        let hangups = runtime.reloadCertificatesOnHangup()
        defer { hangups.cancel() }
        try runtime.readyLine.write(toFile: readyFile)
        runtime.notifySystemd()
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

/// `vcom-server check-config FILE`: every problem a start would meet, without starting.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Checks a configuration file (and flags) without binding or writing anything.",
        discussion: """
            Every key, type and range; every file a setting names (readable, private keys and the \
            cluster secret not open to other users, certificate and key belong together, issued by \
            the CA, not expired); the licence (this server's, signed by the vendor key, in date); \
            listen addresses that belong to this host and do not collide; the peer address resolves.

            Prints one line per problem, each naming its setting, and exits 78; or "ok" and exits 0. \
            Warnings (an expiry within 30 days) are printed but do not fail the check.
            """
    )

    @Argument(help: "The configuration file (TOML).") var file: String
    @Flag(help: "One JSON object: {\"ok\": Bool, \"problems\": [{\"setting\", \"problem\"}], \"warnings\": [...]}.") var json = false
    @Argument(parsing: .allUnrecognized, help: "Flags over the file's settings, as a start would take them.") var settings: [String] = []

    func run() throws {
        let check = ConfigurationCheck(file: file, flags: settings)
        if json {
            let entry = { (problem: ConfigurationProblem) in ["setting": problem.setting, "problem": problem.problem] }
            let report: [String: Any] = ["ok": check.passed, "problems": check.problems.map(entry), "warnings": check.warnings.map(entry)]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for problem in check.problems { print("\(file): \(problem)") }
            for warning in check.warnings { print("\(file): warning: \(warning)") }
            if check.passed, let settings = check.settings {
                print("\(file): ok (\(settings.role) \(settings.serverId), clients on \(settings.clientListen))")
            }
        }
        if !check.passed { throw ExitCode(check.problems.contains { $0.isUsage } ? 64 : 78) }
    }
}
