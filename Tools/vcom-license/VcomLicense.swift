import ArgumentParser
import Foundation
import Licensing
#if canImport(Glibc)
import Glibc
#endif

@main
struct VcomLicense: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcom-license",
        abstract: "Creates vendor keys and issues, inspects and verifies VCOM licences.",
        discussion: """
            Exit codes: 0 valid; 1 a file could not be read or written; 10 malformed, truncated or \
            not UTF-8 text; 11 altered after signing; 12 signed with an untrusted key; 13 expired; \
            14 not yet valid; 15 bound to another server; 16 unknown feature; 17 feature not licensed; \
            18 bad key file; 64 bad command-line arguments; 73 the output file exists (use --force).
            See docs/licensing.md for the formats.
            """,
        subcommands: [Keygen.self, Issue.self, Inspect.self, Verify.self]
    )
}

/// Reads a file or standard input ("-") the same way: bytes that cannot be read are a file
/// error (1); bytes that are not UTF-8 are a malformed licence (10), wherever they came from.
func readText(_ path: String) throws -> String {
    let data: Data
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        guard let contents = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it is not readable" : "no such file"
            throw ToolFailure(message: "cannot read \(path): \(reason)", code: 1)
        }
        data = contents
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw LicenceError.malformed("\(path == "-" ? "standard input" : path) is not UTF-8 text")
    }
    return text
}

/// Creates the file with `mode` in the same call that creates it (O_EXCL: never over an
/// existing file), so a secret key is never readable by others, not even for an instant.
func writeNew(_ text: String, to path: String, mode: mode_t = 0o600) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
    guard fd >= 0 else {
        if errno == EEXIST { throw ToolFailure(message: "\(path) exists; use --force to replace it", code: 73) }
        throw ToolFailure(message: "cannot create \(path): \(String(cString: strerror(errno)))", code: 1)
    }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
        throw ToolFailure(message: "cannot write \(path): \(String(cString: strerror(errno)))", code: 1)
    }
}

/// A calendar day given on the command line, or a usage error naming the option.
func day(_ value: String, option: String) throws -> Date {
    guard let date = LicenceDate.parseDay(value) else { throw ToolFailure(message: "--\(option) '\(value)' is not YYYY-MM-DD", code: 64) }
    return date
}

struct ToolFailure: Error, CustomStringConvertible {
    var message: String
    var code: Int32
    var description: String { message }
}

/// Prints the error to standard error (or as JSON on standard output) and exits with its code.
func fail(_ error: Error, json: Bool = false) -> Never {
    if json {
        let (message, code): (String, Int32) =
            switch error {
            case let error as LicenceError: (error.description, error.exitCode)
            case let error as ToolFailure: (error.message, error.code)
            default: ("\(error)", 1)
            }
        printJSON(["valid": false, "error": message, "exitCode": code])
        Foundation.exit(code)
    }
    switch error {
    case let error as LicenceError:
        FileHandle.standardError.write(Data("vcom-license: \(error)\n".utf8))
        Foundation.exit(error.exitCode)
    case let error as ToolFailure:
        FileHandle.standardError.write(Data("vcom-license: \(error.message)\n".utf8))
        Foundation.exit(error.code)
    default:
        FileHandle.standardError.write(Data("vcom-license: \(error)\n".utf8))
        Foundation.exit(1)
    }
}

func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

func fields(of licence: Licence) -> [String: Any] {
    [
        "licenceId": licence.licenceId, "licensee": licence.licensee, "issued": LicenceDate.format(licence.issued),
        "expires": LicenceDate.format(licence.expires), "maxClients": licence.maxClients,
        "features": licence.features.sorted().map(\.rawValue), "serverId": licence.serverId, "signingKey": licence.signingKey,
    ]
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Creates a vendor key pair: NAME.key (secret, mode 600) and NAME.pub (for servers).")

    @Option(help: "Directory to write the key files into.") var outDir = "."
    @Option(help: "Base name of the key files.") var name = "vendor"
    @Flag(help: "Replace existing key files.") var force = false

    func run() {
        do {
            let key = VendorSigningKey()
            let directory = URL(fileURLWithPath: outDir)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let secret = directory.appendingPathComponent("\(name).key")
            let public_ = directory.appendingPathComponent("\(name).pub")
            for file in [secret, public_] where FileManager.default.fileExists(atPath: file.path) && !force {
                throw ToolFailure(message: "\(file.path) exists; use --force to replace it", code: 73)
            }
            if force {
                try? FileManager.default.removeItem(at: secret)
                try? FileManager.default.removeItem(at: public_)
            }
            try writeNew(key.fileText, to: secret.path)
            try writeNew(key.publicKey.fileText, to: public_.path, mode: 0o644)
            print("wrote \(secret.path) (keep it secret) and \(public_.path); key fingerprint \(key.publicKey.fingerprint)")
        } catch {
            fail(error)
        }
    }
}

struct Issue: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Issues a signed licence.")

    @Option(help: "The vendor signing key file (from keygen).") var key: String
    @Option(help: "Licence identifier, e.g. LIC-2026-0042.") var id: String
    @Option(help: "Who the licence is for.") var licensee: String
    @Option(help: "The primary server this licence is bound to (its server id).") var serverId: String
    @Option(help: "Maximum concurrently logged-in clients, for the pair.") var maxClients: Int
    @Option(help: "Comma-separated features: failover, recording, telephony, radio.") var features = "failover"
    @Option(help: "Days of validity from the issue date.") var days: Int?
    @Option(help: "Expiry day (YYYY-MM-DD, 00:00 UTC); instead of --days.") var expires: String?
    @Option(help: "Issue day (YYYY-MM-DD); default today.") var issued: String?
    @Option(help: "Write the licence here instead of standard output.") var out: String?
    @Flag(help: "Replace the --out file if it exists.") var force = false

    func validate() throws {
        if (days == nil) == (expires == nil) { throw ValidationError("give exactly one of --days and --expires") }
        if let days, !(1...Licence.maximumValidityDays).contains(days) {
            throw ValidationError("--days must be 1 to \(Licence.maximumValidityDays) (100 years)")
        }
        if !(1...1_000_000).contains(maxClients) { throw ValidationError("--max-clients must be 1 to 1000000") }
        if let problem = Licence.licenseeProblem(licensee) { throw ValidationError("--licensee must be \(problem)") }
        do {
            _ = try Licence.identifier(id, field: "id")
            _ = try Licence.identifier(serverId, field: "server-id")
            _ = try Licence.featureSet(features)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() {
        do {
            let signer = try VendorSigningKey(fileText: readText(key))
            let issuedDate = try day(issued ?? String(LicenceDate.format(Date()).prefix(10)), option: "issued")
            let expiry = try expires.map { try day($0, option: "expires") } ?? issuedDate.addingTimeInterval(Double(days!) * 86_400)
            guard expiry > issuedDate, expiry.timeIntervalSince(issuedDate) <= Double(Licence.maximumValidityDays) * 86_400 else {
                throw ToolFailure(message: "--expires must be after the issue day and at most \(Licence.maximumValidityDays) days later", code: 64)
            }
            var licence = Licence(
                licenceId: id, licensee: licensee, issued: issuedDate, expires: expiry, maxClients: maxClients,
                features: try Licence.featureSet(features), serverId: serverId)
            licence = try signer.sign(licence)
            // Issue only what a server would accept: parse the rendered text back.
            let text = licence.text
            _ = try LicenceVerifier(trustedKeys: [signer.publicKey]).verify(text, boundTo: serverId)
            if let out {
                if force { try? FileManager.default.removeItem(atPath: out) }
                try writeNew(text, to: out, mode: 0o644)
                FileHandle.standardError.write(Data("issued licence \(id) for \(serverId) to \(out)\n".utf8))
            } else {
                print(text, terminator: "")
            }
        } catch {
            fail(error)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Shows a licence's fields without checking its signature (use verify for that).")

    @Argument(help: "The licence file, or - for standard input.") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() {
        do {
            let licence = try Licence.parse(readText(file))
            if json {
                var object = fields(of: licence)
                object["signatureChecked"] = false
                printJSON(object)
            } else {
                print(
                    """
                    licence      \(licence.licenceId)
                    licensee     \(licence.licensee)
                    issued       \(LicenceDate.format(licence.issued))
                    expires      \(LicenceDate.format(licence.expires))
                    max clients  \(licence.maxClients) (for the pair)
                    features     \(licence.features.sorted().map(\.rawValue).joined(separator: ", "))
                    server       \(licence.serverId)
                    signed by    key \(licence.signingKey) (not checked; run verify)
                    """)
            }
        } catch {
            fail(error, json: json)
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Checks a licence's signature, binding and dates, as a server would.")

    @Argument(help: "The licence file, or - for standard input.") var file: String
    @Option(help: "The vendor public key file.") var key: String
    @Option(help: "The server it must be bound to (default: the one it names).") var serverId: String?
    @Option(help: "Check validity at this day (YYYY-MM-DD) instead of now.") var at: String?
    @Flag(help: "Print JSON.") var json = false

    func run() {
        do {
            let now = try at.map { try day($0, option: "at") } ?? Date()
            let text = try readText(file)
            let verifier = LicenceVerifier(trustedKeys: [try VendorPublicKey(fileText: readText(key))])
            let bound = try serverId ?? Licence.parse(text).serverId
            let verified = try verifier.verify(text, boundTo: bound)
            let licence = verified.licence
            switch verified.validity(at: now) {
            case .expired: throw LicenceError.expired(licenceId: licence.licenceId, on: licence.expires)
            case .notYetValid: throw LicenceError.notYetValid(licenceId: licence.licenceId, from: licence.issued)
            case .valid: break
            }
            let warning = LicenceEnforcement(licence: verified).expiryWarning(at: now)
            if json {
                var object = fields(of: licence)
                object["valid"] = true
                object["warning"] = warning ?? NSNull()
                printJSON(object)
            } else {
                print("valid: licence \(licence.licenceId) for \(licence.licensee), server \(licence.serverId), until \(LicenceDate.format(licence.expires))")
                if let warning { print("warning: \(warning)") }
            }
        } catch {
            fail(error, json: json)
        }
    }
}
