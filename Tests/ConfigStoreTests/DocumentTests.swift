import ConfigModel
import ConfigStore
import Foundation
import Testing
import PairModel
import Wire

@Suite struct DocumentTests {
    @Test func exportThenImportReproducesTheConfiguration() throws {
        let source = try TemporaryStore()
        try seed(source.store)
        let text = source.store.exportDocument()
        #expect(text.contains("\"format\" : \"vcom-config\""))
        let target = try TemporaryStore()
        try target.store.importDocument(text)
        #expect(target.store.configuration == source.store.configuration)
        #expect(try target.store.importDocument(text).isEmpty, "importing the same document again changes nothing")
    }

    @Test func anImportIsOneAtomicSetOfChanges() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        var edited = temporary.store.configuration
        let text = temporary.store.exportDocument()
            .replacingOccurrences(of: "\"name\" : \"Police\"", with: "\"name\" : \"Police-North\"")
            .replacingOccurrences(of: "Metro Dispatch", with: "Metro Dispatch Centre")
        let records = try temporary.store.importDocument(text)
        #expect(records.count == 3, "add Police-North, remove Police, change a setting")
        edited = temporary.store.configuration
        #expect(edited.partyLine("Police") == nil && edited.partyLine("Police-North") != nil)
    }

    @Test func aSyntaxErrorIsReportedWithItsLineAndColumnAndChangesNothing() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let before = temporary.store.configuration
        let text = "{\n  \"format\": \"vcom-config\",\n  \"version\": 1,,\n}"
        #expect(throws: ConfigError.importProblems([ImportProblem(location: "line 3, column 16", message: "not valid JSON")])) {
            try temporary.store.importDocument(text)
        }
        #expect(temporary.store.configuration == before)
    }

    @Test func everyProblemIsReportedWithItsLocation() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let before = temporary.store.configuration
        let text = """
            {
              "format": "vcom-config", "version": 2, "colour": "blue",
              "partyLines": [ { "name": "Fire-Ops" }, { "name": "fire-ops" } ],
              "operators": [
                { "username": "ann", "displayName": "Ann", "passwordHash": "plain", "keys": [ { "slot": 1, "talk": true, "partyLine": "Nowhere" } ] },
                { "username": "bob", "passwordHash": "\(sampleHash)", "enabled": "yes" },
                { "username": "cy", "displayName": "Cy", "passwordHash": "\(sampleHash)", "keys": [ { "slot": 1, "listen": true, "partyLine": "Fire-Ops", "operator": "ann" } ] },
                { "username": "dee", "displayName": "Dee", "passwordHash": "\(sampleHash)", "keys": [ { "slot": 1, "talk": true, "partyLine": "Nowhere" }, { "slot": "one", "talk": 1 } ] }
              ],
              "admins": [ { "username": "root", "passwordHash": "\(sampleHash)", "role": "superuser" } ],
              "settings": { "Bad Key": "x" }
            }
            """
        do throws(ConfigError) {
            try temporary.store.importDocument(text)
            Issue.record("the import must be refused")
        } catch {
            guard case .importProblems(let problems) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            let lines = problems.map(\.description)
            #expect(lines.contains("version: is 2; this build reads version 1"))
            #expect(lines.contains { $0.hasPrefix("document.colour: unknown field") })
            #expect(lines.contains("partyLines[1].name: party line 'fire-ops' appears twice"))
            #expect(lines.contains("operators[1].displayName: is missing"))
            #expect(lines.contains("operators[1].enabled: must be true or false"))
            #expect(lines.contains("operators[2].keys[0]: give exactly one of \"partyLine\" and \"operator\""))
            #expect(lines.contains("admins[0].role: 'superuser' is not one of viewer, operator, admin"))
            #expect(lines.contains("operators[0]: the password of operator 'ann' is not a stored hash"))
            #expect(lines.contains("operators[3].keys: key 1 of 'dee': party line 'Nowhere' does not exist"))
            #expect(lines.contains("operators[3].keys[1].slot: must be a whole number"))
            #expect(lines.contains("operators[3].keys[1].talk: must be true or false"), "1 is not true")
            #expect(!lines.contains { $0.contains("operator 'ann' does not exist") }, "no cascade from ann's refused entry")
            #expect(lines.contains("settings.Bad Key: setting name 'Bad Key' must be 1 to 64 lower-case letters, digits, '.', '_' or '-'"))
        }
        #expect(temporary.store.configuration == before, "nothing changed")
    }

    @Test func differencesReadLikeAChangeList() throws {
        let temporary = try TemporaryStore()
        try seed(temporary.store)
        let before = temporary.store.configuration
        try temporary.store.write([
            .putPartyLine(PartyLine(name: "Tower")),
            .putOperator(Operator(username: "ann", displayName: "Ann S.", passwordHash: sampleHash, enabled: false)),
            .setKeys(username: "bob", keys: [talkListen(1, .partyLine("Tower"))]),
            .removePartyLine(name: "Police"),
            .setSetting(key: "site.name", value: "Harbour"),
        ])
        #expect(
            temporary.store.configuration.differences(from: before) == [
                "+ party line Tower",
                "~ operator ann: display name 'Ann Smith' → 'Ann S.', disabled",
                "~ keys of bob: 1 → 1 keys (1: talk+listen party line Tower)",
                "- party line Police",
                "~ setting site.name: Metro Dispatch → Harbour",
            ])
        #expect(before.differences(from: before).isEmpty)
    }
}
