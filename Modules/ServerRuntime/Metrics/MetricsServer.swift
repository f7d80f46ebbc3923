import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// What the metrics port serves besides `/metrics` and the health paths.
struct StatusPageSource: Sendable {
    /// `/status.json`'s body, from the control loop (nil while the server stops).
    var document: @Sendable () async -> String?
    /// `metrics.read-token-file`'s token: when set, everything but the health paths needs it
    /// (`Authorization: Bearer TOKEN`, or `?token=TOKEN` for a browser).
    var readToken: String?
    /// Lets the control loop act on every deadline already due before a state is read (see
    /// `Controller.catchUp`).
    var catchUp: @Sendable () async -> Void = {}
}

/// `GET /metrics` over plain HTTP/1.1 for Prometheus, `/health/active` and `/health/ready`
/// for load balancers and checks (200 or 503, a short JSON body), and the status page (`/`,
/// `/status.json`); every other path is 404. Every
/// connection is a stranger for its whole life: capped per source and in all, closed when it
/// sends nothing for 5 s or lives 30 s (`ConnectionLimits.metrics`), and answered once.
enum MetricsServer {
    static func start(
        on endpoint: (host: String, port: Int), group: EventLoopGroup, metrics: RuntimeMetrics, health: HealthState, status: StatusPageSource,
        strangers: Strangers
    ) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard try strangers.admit(channel) != nil else { return }
                    // NIO's decoder bounds a request head (llhttp's 80 KiB); with the caps above a
                    // stranger holds at most 32 of them, for 30 s.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics, health: health, status: status))
                }
            }
            .bind(host: endpoint.host, port: endpoint.port).get()
    }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: RuntimeMetrics
    let health: HealthState
    let status: StatusPageSource
    private var path = ""
    private var authorized = false

    init(metrics: RuntimeMetrics, health: HealthState, status: StatusPageSource) {
        self.metrics = metrics
        self.health = health
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let parts = head.uri.split(separator: "?", maxSplits: 1)
            path = head.method == .GET ? String(parts.first ?? "") : ""
            authorized = status.readToken.map { token in
                head.headers["Authorization"].contains("Bearer \(token)")
                    || (parts.count > 1 && parts[1].split(separator: "&").contains { $0 == "token=\(token)" })
            } ?? true
        case .body:
            break
        case .end:
            // The state /metrics and the health paths read is first brought up to date by the
            // control loop (/status.json's is, by `status()` itself).
            guard (path == "/metrics" && authorized) || path.hasPrefix("/health/") else { return answer(context) }
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.completeWithTask(status.catchUp)
            promise.futureResult.assumeIsolated().whenComplete { _ in self.answer(context) }
        }
    }

    private func answer(_ context: ChannelHandlerContext) {
        if let answer = health.answer(path: path) {
            respond(context, answer.ok ? .ok : .serviceUnavailable, answer.body, type: "application/json")
        } else if !authorized, ["/metrics", "/", "/status.json"].contains(path) {
            respond(context, .unauthorized, "this port needs metrics.read-token: Authorization: Bearer TOKEN, or ?token=TOKEN\n", type: "text/plain; charset=utf-8")
        } else if path == "/metrics" {
            respond(context, .ok, metrics.exposition(), type: "text/plain; version=0.0.4; charset=utf-8")
        } else if path == "/" {
            respond(context, .ok, StatusPageHTML.page, type: "text/html; charset=utf-8")
        } else if path == "/status.json" {
            let promise = context.eventLoop.makePromise(of: String?.self)
            let document = status.document
            promise.completeWithTask { await document() }
            promise.futureResult.assumeIsolated().whenSuccess { body in
                guard let body else { return self.respond(context, .serviceUnavailable, "{\"error\":\"stopping\"}\n", type: "application/json") }
                self.respond(context, .ok, body, type: "application/json")
            }
        } else {
            respond(context, .notFound, "not found: /, /status.json, /metrics, /health/active, /health/ready\n", type: "text/plain; charset=utf-8")
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: String, type: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "Connection", value: "close")
        // The page loads nothing from anywhere else, and nothing may frame it.
        if type.hasPrefix("text/html") {
            headers.add(name: "Content-Security-Policy", value: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
