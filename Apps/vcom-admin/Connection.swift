import AdminProtocol
import ArgumentParser
import Foundation
import TransportSecurity
import PairModel
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Where the servers are and who logs in: flags, then the environment, then a prompt.
/// The password never comes from the command line (it would sit in the shell's history and
/// in every process listing).
struct Connection: ParsableArguments {
    @Option(help: "The servers' admin ports, host:port[,host:port] (or VCOM_ADMIN_SERVERS).")
    var servers: String?
    @Option(help: "The administrator's name (or VCOM_ADMIN_USER).")
    var user: String?
    @Option(help: "A file holding the password (else VCOM_ADMIN_PASSWORD, else a prompt).")
    var passwordFile: String?
    @Option(help: "The pair's CA certificate, to verify the servers (or VCOM_ADMIN_CA; vcom-admin pki init writes ca.pem).")
    var ca: String?
    @Option(help: "Trust exactly this server certificate instead: sha256:HEX from `vcom-admin pki show` (or VCOM_ADMIN_PIN).")
    var pin: String?
    @Flag(help: "Speak to servers started with --plaintext (no TLS); never on a network you do not control.")
    var plaintext = false
    @Option(help: "Seconds to wait for each server.")
    var timeout: Double = 5
    @Flag(help: "Print JSON (one object) instead of text.")
    var json = false

    func endpoints() throws -> [Endpoint] {
        guard let text = servers ?? ProcessInfo.processInfo.environment["VCOM_ADMIN_SERVERS"], !text.isEmpty else {
            throw ValidationError("give --servers host:port[,host:port] (or set VCOM_ADMIN_SERVERS)")
        }
        var list: [Endpoint] = []
        for part in text.split(separator: ",") {
            guard let endpoint = Endpoint(parsing: String(part)) else { throw ValidationError("--servers: '\(part)' is not host:port") }
            list.append(endpoint)
        }
        guard (1...2).contains(list.count) else { throw ValidationError("--servers takes one or two admin ports") }
        return list
    }

    func username() throws -> String {
        guard let name = user ?? ProcessInfo.processInfo.environment["VCOM_ADMIN_USER"], !name.isEmpty else {
            throw ValidationError("give --user NAME (or set VCOM_ADMIN_USER)")
        }
        return name
    }

    func password() throws -> String {
        if let file = passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("--password-file: cannot read \(file)") }
            let password = text.trimmingCharacters(in: .newlines)
            guard !password.isEmpty else { throw ValidationError("--password-file: \(file) is empty") }
            return password
        }
        if let password = ProcessInfo.processInfo.environment["VCOM_ADMIN_PASSWORD"], !password.isEmpty { return password }
        guard isatty(STDIN_FILENO) == 1, let typed = getpass("Password for \(try username()): ") else {
            throw ValidationError("no password: give --password-file, set VCOM_ADMIN_PASSWORD, or run on a terminal to be asked")
        }
        let password = String(cString: typed)
        guard !password.isEmpty else { throw ValidationError("the password is empty") }
        return password
    }

    var wait: Duration { .milliseconds(Int64(max(0.1, timeout) * 1000)) }

    /// How the servers are recognised: the CA, a pin, or (asked for by name) no TLS.
    func transport() throws -> ClientTLS? {
        let environment = ProcessInfo.processInfo.environment
        if plaintext || environment["VCOM_ADMIN_PLAINTEXT"] == "1" { return nil }
        let trust: ServerTrust
        if let pin = pin ?? environment["VCOM_ADMIN_PIN"], !pin.isEmpty {
            trust = .pinned(fingerprint: pin)
        } else if let ca = ca ?? environment["VCOM_ADMIN_CA"], !ca.isEmpty {
            trust = .authority(file: ca)
        } else {
            throw ValidationError(
                "the admin port speaks TLS: give --ca with the pair's CA (ca.pem) or --pin sha256:... (vcom-admin pki show), or VCOM_ADMIN_CA / VCOM_ADMIN_PIN; --plaintext only for servers started with --plaintext"
            )
        }
        do {
            return try ClientTLS(trust: trust)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// Runs `body` in a session with each server (in parallel); each result or failure.
    func eachServer<T: Sendable>(_ body: @escaping @Sendable (inout AdminClient) async throws -> T) async throws -> [(Endpoint, Result<T, AdminFailure>)] {
        let endpoints = try endpoints()
        let user = try username()
        let password = try password()
        let tls = try transport()
        let wait = wait
        return await withTaskGroup(of: (Int, Result<T, AdminFailure>).self) { group in
            for (index, endpoint) in endpoints.enumerated() {
                group.addTask {
                    do {
                        return (index, .success(try await AdminClient.with(endpoint, tls: tls, user: user, password: password, timeout: wait, body)))
                    } catch let failure as AdminFailure {
                        return (index, .failure(failure))
                    } catch {
                        return (index, .failure(.unreachable("\(endpoint): \(error)")))
                    }
                }
            }
            var results: [(Int, Result<T, AdminFailure>)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map { (endpoints[$0.0], $0.1) }
        }
    }
}

/// Prints a JSON object (sorted keys) on one line.
func printJSON(_ object: Any) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
    print(String(decoding: data, as: UTF8.self))
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data("vcom-admin: \(text)\n".utf8))
}

/// The worst failure's exit code (refused beats unreachable: the server answered).
func worstExit<T>(_ results: [(Endpoint, Result<T, AdminFailure>)], allowPartial: Bool) -> Int32 {
    let failures = results.compactMap { if case .failure(let failure) = $0.1 { failure } else { nil } }
    if failures.isEmpty || (allowPartial && failures.count < results.count) { return 0 }
    return failures.contains { if case .refused = $0 { true } else { false } } ? 1 : 2
}

func formatTime(_ ms: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}
