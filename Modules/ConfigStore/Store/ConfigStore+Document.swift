import ConfigModel

extension ConfigStore {
    /// Replaces the configuration with the document's, as one atomic write. Nothing changes
    /// when the document has any problem; all of them are reported.
    @discardableResult
    public func importDocument(_ text: String) throws(ConfigError) -> [ChangeRecord] {
        let current = configuration
        let target = try ConfigDocument.parse(text, current: current)
        return try write(target.changes(from: current))
    }

    public func exportDocument() -> String {
        ConfigDocument.export(configuration, revision: position.revision)
    }
}
