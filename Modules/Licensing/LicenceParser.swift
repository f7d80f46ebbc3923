import Foundation

extension Licence {
    /// Reads licence text. Checks its form only; `LicenceVerifier` checks the signature.
    ///
    /// Forgiving where a copy and paste would change things (surrounding text, indentation,
    /// blank lines, Windows line ends), strict about anything the signature would not cover.
    public static func parse(_ text: String) throws(LicenceError) -> Licence {
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: beginLine) else {
            throw .malformed("no '\(beginLine)' line")
        }
        guard let end = lines[begin...].firstIndex(of: endLine) else {
            throw .malformed("no '\(endLine)' line: the text is truncated")
        }
        var fields: [String: String] = [:]
        for index in (begin + 1)..<end {
            let line = lines[index]
            let number = index + 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw .malformed("line \(number) is not 'field: value'")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard fieldOrder.contains(name) || name == "signature" else { throw .unknownField(name, line: number) }
            guard fields[name] == nil else { throw .duplicateField(name, line: number) }
            fields[name] = value
        }
        func field(_ name: String) throws(LicenceError) -> String {
            guard let value = fields[name], !value.isEmpty else { throw .missingField(name) }
            return value
        }
        guard try field("format") == String(formatVersion) else {
            throw .invalidValue(field: "format", value: fields["format"] ?? "", expected: "\(formatVersion)")
        }
        let licenceId = try identifier(field("licence-id"), field: "licence-id")
        let licensee = try field("licensee")
        if let problem = licenseeProblem(licensee) { throw .invalidValue(field: "licensee", value: String(licensee.prefix(40)), expected: problem) }
        let issued = try date(field("issued"), field: "issued")
        let expires = try date(field("expires"), field: "expires")
        guard expires > issued else {
            throw .invalidValue(field: "expires", value: fields["expires"]!, expected: "a time after 'issued'")
        }
        guard expires.timeIntervalSince(issued) <= maximumValidity else {
            throw .invalidValue(field: "expires", value: fields["expires"]!, expected: "at most \(maximumValidityDays) days after 'issued'")
        }
        let maxClientsText = try field("max-clients")
        guard let maxClients = Int(maxClientsText), (1...1_000_000).contains(maxClients) else {
            throw .invalidValue(field: "max-clients", value: maxClientsText, expected: "a whole number from 1 to 1000000")
        }
        let features = try featureSet(fields["features"] ?? "")
        let serverId = try identifier(field("server-id"), field: "server-id")
        let signingKey = try field("signing-key")
        guard signingKey.count == 32, signingKey.allSatisfy(\.isHexDigit) else {
            throw .invalidValue(field: "signing-key", value: signingKey, expected: "a 32-digit hexadecimal key fingerprint")
        }
        let signatureText = try field("signature")
        guard let signature = Data(base64Encoded: signatureText), signature.count == 64 else {
            throw .invalidValue(field: "signature", value: signatureText, expected: "a base64 Ed25519 signature (64 bytes)")
        }
        return Licence(
            licenceId: licenceId, licensee: licensee, issued: issued, expires: expires, maxClients: maxClients,
            features: features, serverId: serverId, signingKey: signingKey.lowercased(), signature: signature)
    }

    /// The longest validity a licence may have: 100 years.
    public static let maximumValidityDays = 36_525
    static var maximumValidity: TimeInterval { Double(maximumValidityDays) * 86_400 }
    /// The licensee's limit in UTF-8 bytes (the text crosses the peer link whole).
    public static let licenseeBytes = 200

    /// Why a licensee name cannot be signed, or nil: printable text (no control or format
    /// characters, so no terminal escapes reach `inspect`), no surrounding spaces (the parser
    /// trims lines, so they would not survive the round trip), at most 200 UTF-8 bytes.
    public static func licenseeProblem(_ value: String) -> String? {
        if value.isEmpty { return "a name" }
        if value.utf8.count > licenseeBytes { return "at most \(licenseeBytes) bytes of UTF-8 text" }
        if value.unicodeScalars.contains(where: { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: true
            default: false
            }
        }) {
            return "printable text (no control characters)"
        }
        if value.first?.isWhitespace == true || value.last?.isWhitespace == true { return "no spaces at the start or end" }
        return nil
    }

    /// Letters, digits, '.', '_' and '-', 1 to 64 of them: safe in logs, file names and commands.
    public static func identifier(_ value: String, field: String) throws(LicenceError) -> String {
        let allowed = value.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
        guard allowed, (1...64).contains(value.count) else {
            throw .invalidValue(field: field, value: value, expected: "1 to 64 letters, digits, '.', '_' or '-'")
        }
        return value
    }

    static func date(_ value: String, field: String) throws(LicenceError) -> Date {
        guard let date = LicenceDate.parse(value) else {
            throw .invalidValue(field: field, value: value, expected: "a UTC time such as 2027-11-25T00:00:00Z")
        }
        return date
    }

    public static func featureSet(_ list: String) throws(LicenceError) -> Set<Feature> {
        var features: Set<Feature> = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
            guard let feature = Feature(rawValue: name) else { throw .unknownFeature(name) }
            features.insert(feature)
        }
        return features
    }
}
