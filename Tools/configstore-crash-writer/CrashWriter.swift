import ConfigModel
import ConfigStore
import Foundation

/// Test helper for the kill -9 durability test (Tests/ConfigStoreTests/CrashTests.swift):
/// writes changes as fast as it can and prints `ack <revision> <name>` after each write
/// returned, so every printed line is a change the store acknowledged.
///
/// Usage: configstore-crash-writer DATABASE EPOCH TAG
@main
struct CrashWriter {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, let epoch = UInt64(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: configstore-crash-writer DATABASE EPOCH TAG\n".utf8))
            exit(64)
        }
        let store = try ConfigStore(path: arguments[1])
        try store.setWriteEpoch(epoch)
        let hash = "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$" + Data(repeating: 7, count: 32).base64EncodedString()
        if store.configuration.partyLine("Crash-Line") == nil {
            try store.write([.putPartyLine(PartyLine(name: "Crash-Line"))])
        }
        var n = 0
        while true {
            n += 1
            let name = "\(arguments[3])-\(n)"
            // Every third write is two changes in one transaction: they must survive together.
            var changes: [ConfigChange] = [.putOperator(Operator(username: name, displayName: "Writer \(n)", passwordHash: hash))]
            if n % 3 == 0 {
                changes.append(.setKeys(username: name, keys: [PanelKey(slot: 1, talk: true, listen: true, target: .partyLine("Crash-Line"), latching: false)]))
            }
            let records = try store.write(changes)
            // Unbuffered, straight to the file descriptor: no line is held in a buffer a kill would lose.
            let line = "ack \(records.last!.revision) \(name) \(changes.count)\n"
            _ = line.withCString { write(1, $0, strlen($0)) }
        }
    }
}
