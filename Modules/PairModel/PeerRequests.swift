/// "Activate and tell me how many clients reach you within the timeout."
public struct ActivationRequest: Equatable, Sendable {
    public var requestId: UInt32
    public var epoch: UInt64
    public var reason: ActivationReason
    public var timeoutMs: UInt32

    public init(requestId: UInt32, epoch: UInt64, reason: ActivationReason, timeoutMs: UInt32) {
        self.requestId = requestId
        self.epoch = epoch
        self.reason = reason
        self.timeoutMs = timeoutMs
    }
}

/// The answer to an activation request: how many clients logged in on the sender.
public struct ClientCountReport: Equatable, Sendable {
    public var requestId: UInt32
    public var loggedInClients: UInt32
    public var epoch: UInt64

    public init(requestId: UInt32, loggedInClients: UInt32, epoch: UInt64) {
        self.requestId = requestId
        self.loggedInClients = loggedInClients
        self.epoch = epoch
    }
}
