import NIOCore
import PropertyBased
import PairModel
import Wire

/// Random values for every message of every conversation, for round-trip properties.
/// Strings mix ASCII with multi-byte scalars so UTF-8 lengths differ from character counts.
struct RandomMessages {
    var rng: any SeededRandomNumberGenerator

    mutating func int<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        // Bias towards the edges, where length and sign bugs live.
        switch Int.random(in: 0..<8, using: &rng) {
        case 0: return 0
        case 1: return T.max
        case 2: return T.min
        default: return T.random(in: T.min...T.max, using: &rng)
        }
    }

    mutating func bool() -> Bool { Bool.random(using: &rng) }

    mutating func string(maxLength: Int = 40) -> String {
        let alphabet: [Character] = ["a", "Z", "0", " ", "-", "é", "ß", "中", "文", "🎙", "🔊", "\u{0}", "\n"]
        let count = Int.random(in: 0...maxLength, using: &rng)
        return String((0..<count).map { _ in alphabet.randomElement(using: &rng)! })
    }

    mutating func bytes(maxLength: Int = 64) -> ByteBuffer {
        let count = Int.random(in: 0...maxLength, using: &rng)
        return ByteBuffer(bytes: (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    mutating func chain() -> ChainHash { ChainHash((0..<ChainHash.size).map { _ in UInt8.random(in: 0...255, using: &rng) })! }
    mutating func endpoint() -> Endpoint { Endpoint(host: string(maxLength: 20), port: int()) }
    mutating func optionalEndpoint() -> Endpoint? { bool() ? endpoint() : nil }
    mutating func hello() -> Hello {
        Hello(versions: min(int(UInt8.self), 200)...200, nodeId: string(), software: string())
    }
    mutating func goodbye() -> Goodbye { Goodbye(reason: GoodbyeReason(rawValue: int()), detail: string(maxLength: 200)) }
    mutating func refused() -> LoginRefused {
        LoginRefused(reason: RefusalReason(rawValue: int()), detail: string(), alternateServer: optionalEndpoint(), epoch: int())
    }
    mutating func element<T: CaseIterable>(_: T.Type) -> T { T.allCases.randomElement(using: &rng)! }

    static let clientCases = 13
    mutating func clientMessage(_ index: Int) -> ClientMessage {
        switch index {
        case 0: return .hello(hello())
        case 1: return .goodbye(goodbye())
        case 2:
            let credential: Credential = bool() ? .password(string()) : .sessionToken(bytes())
            let keys = (0..<Int(int() as UInt8 % 4)).map { _ in
                KeyChange(action: element(KeyAction.self), target: bool() ? .partyLine(int()) : .user(int()), pressed: true)
            }
            return .login(LoginRequest(username: string(), credential: credential, clientInstance: string(), pressedKeys: keys))
        case 3:
            return .loginAccepted(
                LoginAccepted(
                    sessionId: int(), epoch: int(), serverRole: element(ServerRole.self), alternateServer: optionalEndpoint(),
                    sessionToken: bytes(), heartbeatIntervalMs: int()))
        case 4: return .loginRefused(refused())
        case 5: return .heartbeat(Heartbeat(sequence: int()))
        case 6:
            let target: KeyTarget = bool() ? .partyLine(int()) : .user(int())
            return .keyChange(KeyChange(action: element(KeyAction.self), target: target, pressed: bool()))
        case 7:
            return .media(MediaFrame(streamId: int(), sequence: int(), timestamp: int(), audio: bytes(maxLength: 2000)))
        case 8: return .redirect(Redirect(target: endpoint(), reason: RedirectReason(rawValue: int()), epoch: int()))
        case 10: return .watch(Watch(sessionToken: bytes(), epoch: int(), wantsWarnings: bool()))
        case 11: return .activated(Activated(epoch: int()))
        case 12: return .takeoverWarning(TakeoverWarning(epoch: int()))
        default: return .logout
        }
    }

    static let peerCases = 14
    mutating func peerMessage(_ index: Int) -> PeerMessage {
        switch index {
        case 0:
            return .hello(PeerHello(hello: hello(), role: element(ServerRole.self), epoch: int(), nonce: bytes(maxLength: 32)))
        case 1: return .goodbye(goodbye())
        case 2: return .auth(PeerAuth(proof: bytes(maxLength: 32), clientEndpoint: optionalEndpoint()))
        case 3: return .heartbeat(PeerHeartbeat(sequence: int()))
        case 4: return .licence(LicenceTransfer(text: string(maxLength: 3000)))
        case 5:
            let history = (0..<Int.random(in: 0...3, using: &rng)).map { _ in EpochStart(epoch: int(), startRevision: int()) }
            return .configSnapshot(
                ConfigSnapshot(
                    epoch: int(), revision: int(), chain: chain(), totalLength: int(), offset: int(), epochHistory: history,
                    body: bytes(maxLength: 5000)))
        case 6:
            return .configChange(ReplicatedChange(revision: int(), epoch: int(), committedAtMs: int(), chain: chain(), body: bytes(maxLength: 1500)))
        case 7: return .configAck(ConfigAck(revision: int()))
        case 8: return .catchUpRequest(CatchUpRequest(lastRevision: int(), lastEpoch: int(), lastChain: bool() ? chain() : nil))
        case 9:
            return .activationRequest(
                ActivationRequest(requestId: int(), epoch: int(), reason: ActivationReason(rawValue: int()), timeoutMs: int()))
        case 10: return .clientCountReport(ClientCountReport(requestId: int(), loggedInClients: int(), epoch: int()))
        case 12: return .configDivergence(ConfigDivergence(revision: int(), epoch: int(), chain: bool() ? chain() : nil))
        case 13: return .licenceReceipt(LicenceReceipt(accepted: bool(), licenceId: string(), detail: string(maxLength: 300)))
        default:
            return .stateAnnouncement(
                StateAnnouncement(
                    role: element(ServerRole.self), state: element(ServerState.self), epoch: int(), loggedInClients: int(),
                    configRevision: int(), canActivate: bool(), settleRound: int()))
        }
    }

    static let adminCases = 9
    mutating func adminMessage(_ index: Int) -> AdminMessage {
        switch index {
        case 0: return .hello(hello())
        case 1: return .goodbye(goodbye())
        case 2: return .authStart(AdminAuthStart(username: string(), clientNonce: string()))
        case 3:
            return .loginAccepted(
                AdminLoginAccepted(
                    role: element(AdminRole.self), serverRole: element(ServerRole.self), serverState: element(ServerState.self),
                    epoch: int(), serverSignature: bytes()))
        case 4: return .loginRefused(refused())
        case 5: return .request(AdminRequest(requestId: int(), command: int(), body: bytes(maxLength: 3000)))
        case 7: return .authChallenge(AdminAuthChallenge(nonce: string(), salt: bytes(), iterations: int()))
        case 8: return .authProof(AdminAuthProof(proof: bytes()))
        default: return .reply(AdminReply(requestId: int(), status: int(), body: bytes(maxLength: 3000)))
        }
    }
}

/// A property-based generator drawing messages from `RandomMessages`.
func randomMessages<M>(_ make: @escaping @Sendable (inout RandomMessages) -> M) -> Generator<M, Shrink.None<M>> {
    Generator { rng in
        var random = RandomMessages(rng: rng)
        let message = make(&random)
        rng = random.rng
        return message
    }
}
