import Foundation
import PairModel
import TOMLKit

/// A setting that is missing or wrong: the message names it. A start refuses it with exit code
/// 78 (EX_CONFIG), as `vcom-server check-config` does.
public struct ConfigurationProblem: Error, CustomStringConvertible, Equatable {
    public var setting: String
    public var problem: String
    /// A command line that cannot be read (an unknown option, a missing value): exit 64.
    public var isUsage = false
    public var description: String { "\(setting): \(problem)" }

    public init(setting: String, problem: String, isUsage: Bool = false) {
        self.setting = setting
        self.problem = problem
        self.isUsage = isUsage
    }

    /// EX_USAGE or EX_CONFIG.
    public var exitCode: Int32 { isUsage ? 64 : 78 }
}

/// Every problem a configuration has, not just the first: an operator fixing a file before a
/// start (`vcom-server check-config`) wants the whole list at once.
public struct ConfigurationProblems: Error, CustomStringConvertible, Equatable {
    public var all: [ConfigurationProblem]

    public init(_ all: [ConfigurationProblem]) { self.all = all }

    /// One line per problem, each naming its setting.
    public var description: String { all.map(\.description).joined(separator: "\n") }
    /// EX_USAGE when the command line itself cannot be read, EX_CONFIG otherwise.
    public var exitCode: Int32 { all.contains { $0.isUsage } ? 64 : 78 }

    public func contains(setting: String) -> Bool { all.contains { $0.setting == setting } }
}

/// Collects problems while a check goes on past the first one.
struct ProblemList {
    private(set) var problems: [ConfigurationProblem] = []

    mutating func add(_ setting: String, _ problem: String) {
        problems.append(ConfigurationProblem(setting: setting, problem: problem))
    }

    mutating func add(_ problem: ConfigurationProblem) { problems.append(problem) }

    /// The body's value, or nil with its problem noted.
    mutating func attempt<T>(_ body: () throws(ConfigurationProblem) -> T) -> T? {
        do {
            return try body()
        } catch {
            problems.append(error)
            return nil
        }
    }

    func throwIfAny() throws(ConfigurationProblems) {
        if !problems.isEmpty { throw ConfigurationProblems(problems) }
    }
}

/// The settings as given: the configuration file's values, then the flags over them, every
/// key and value checked against `SettingsTable` (unknown keys are errors: a typo must not
/// silently drop a setting). Typed reads take the table's default when a setting is absent.
public struct SettingValues: Sendable, Equatable {
    public private(set) var values: [String: String] = [:]

    public init() {}

    public init(_ values: [String: String]) throws(ConfigurationProblem) {
        for (key, value) in values { try set(key, value) }
    }

    /// Sets one value after checking it against the table.
    public mutating func set(_ key: String, _ value: String) throws(ConfigurationProblem) {
        guard let setting = SettingsTable.byKey[key] else {
            throw ConfigurationProblem(setting: key, problem: "unknown setting (vcom-server settings lists them; docs/configuration.md)")
        }
        if let problem = setting.problem(with: value) { throw ConfigurationProblem(setting: key, problem: problem) }
        values[key] = value
    }

    /// Reads a TOML file (sections of keys: `[server] role = "primary"` is `server.role`); every
    /// unknown key and bad value is reported, not only the first.
    public static func load(file path: String) throws(ConfigurationProblems) -> SettingValues {
        var problems = ProblemList()
        let values = try load(file: path, problems: &problems)
        try problems.throwIfAny()
        return values
    }

    /// The file's good values, its bad ones noted in `problems` (a check goes on with the rest);
    /// throws only when the file cannot be read as TOML at all.
    static func load(file path: String, problems: inout ProblemList) throws(ConfigurationProblems) -> SettingValues {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationProblems([ConfigurationProblem(setting: "--config", problem: "cannot read \(path): \(error.localizedDescription)")])
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationProblems([
                ConfigurationProblem(
                    setting: path, problem: "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
            ])
        } catch {
            throw ConfigurationProblems([ConfigurationProblem(setting: path, problem: "not valid TOML: \(error)")])
        }
        var values = SettingValues()
        for (section, value) in table.sorted(by: { $0.0 < $1.0 }) {
            guard let inner = value.table else {
                problems.add(section, "expected a [\(section)] section")
                continue
            }
            for (key, item) in inner.sorted(by: { $0.0 < $1.0 }) {
                let name = "\(section).\(key)"
                let text: String
                if let string = item.string {
                    text = string
                } else if let int = item.int {
                    text = String(int)
                } else if let bool = item.bool {
                    text = String(bool)
                } else if let array = item.array, array.allSatisfy({ $0.string != nil }) {
                    text = array.compactMap(\.string).joined(separator: ",")  // a list of strings (witness.etcd)
                } else {
                    problems.add(name, "must be a string, a whole number, true or false")
                    continue
                }
                problems.attempt { () throws(ConfigurationProblem) in try values.set(name, text) }
            }
        }
        return values
    }

    /// Applies command-line settings (`--flag value`, or a flag that sets a value by itself)
    /// over these values.
    public mutating func apply(flags: [String]) throws(ConfigurationProblem) {
        var remaining = flags[...]
        while let flag = remaining.popFirst() {
            let name = flag.split(separator: "=", maxSplits: 1).first.map(String.init) ?? flag
            guard let setting = SettingsTable.byFlag[name] else {
                throw ConfigurationProblem(setting: flag, problem: "unknown option (vcom-server --help lists them)", isUsage: true)
            }
            if let value = setting.flagSets {
                try set(setting.key, value)
                continue
            }
            let value: String
            if flag.contains("=") {
                value = String(flag.drop { $0 != "=" }.dropFirst())
            } else if let next = remaining.popFirst() {
                value = next
            } else {
                throw ConfigurationProblem(setting: "\(flag) (\(setting.key))", problem: "needs a value: \(setting.valuesText)", isUsage: true)
            }
            do {
                try set(setting.key, value)
            } catch {
                throw ConfigurationProblem(setting: setting.key, problem: "\(error.problem) (\(name))")
            }
        }
    }

    public func string(_ key: String) -> String? { values[key] }

    /// A required text value; the problem names the setting (and its flag) when it is absent.
    public func require(_ key: String) throws(ConfigurationProblem) -> String {
        guard let value = values[key] else {
            let flag = SettingsTable.byKey[key]?.flag.map { " or \($0)" } ?? ""
            throw ConfigurationProblem(setting: key, problem: "missing (in the configuration file\(flag))")
        }
        return value
    }

    public func endpoint(_ key: String) -> Endpoint? { values[key].flatMap(Endpoint.init(parsing:)) }

    /// The value, or the table's default (every integer setting with a default has one there).
    public func integer(_ key: String) -> Int {
        if let value = values[key], let number = Int(value) { return number }
        return SettingsTable.byKey[key]?.defaultValue.flatMap { Int($0) } ?? 0
    }

    public func milliseconds(_ key: String) -> Duration { .milliseconds(integer(key)) }

    public func boolean(_ key: String) -> Bool {
        (values[key] ?? SettingsTable.byKey[key]?.defaultValue) == "true"
    }

    public func isSet(_ key: String) -> Bool { values[key] != nil }
}
