import NIOCore
import NIOHTTP1
import NIOPosix

/// `GET /metrics` over plain HTTP/1.1 for Prometheus, and `/health/active` and
/// `/health/ready` for load balancers and checks (200 or 503, a short JSON body); every other
/// path is 404. Every
/// connection is a stranger for its whole life: capped per source and in all, closed when it
/// sends nothing for 5 s or lives 30 s (`ConnectionLimits.metrics`), and answered once.
enum MetricsServer {
    static func start(
        on endpoint: (host: String, port: Int), group: EventLoopGroup, metrics: RuntimeMetrics, health: HealthState, strangers: Strangers
    ) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard try strangers.admit(channel) != nil else { return }
                    // NIO's decoder bounds a request head (llhttp's 80 KiB); with the caps above a
                    // stranger holds at most 32 of them, for 30 s.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics, health: health))
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
    private var path = ""

    init(metrics: RuntimeMetrics, health: HealthState) {
        self.metrics = metrics
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.method == .GET ? String(head.uri.split(separator: "?").first ?? "") : ""
        case .body:
            break
        case .end:
            let status: HTTPResponseStatus
            let body: String
            var headers = HTTPHeaders()
            if path == "/metrics" {
                status = .ok
                body = metrics.exposition()
                headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            } else if let answer = health.answer(path: path) {
                status = answer.ok ? .ok : .serviceUnavailable
                body = answer.body
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Cache-Control", value: "no-store")
            } else {
                status = .notFound
                body = "not found: /metrics, /health/active, /health/ready\n"
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            }
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
