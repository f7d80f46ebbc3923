import Testing
import PairModel
import Wire

/// "host:port" as configuration files and command lines give it, parsed in one place.
@Suite struct EndpointParsingTests {
    @Test func addressesParse_andMalformedOnesDoNot() {
        #expect(Endpoint(parsing: "10.0.0.1:7300") == Endpoint(host: "10.0.0.1", port: 7300))
        #expect(Endpoint(parsing: " [::1]:7 ") == Endpoint(host: "::1", port: 7))
        #expect(Endpoint(parsing: "vcom-a.example:1") == Endpoint(host: "vcom-a.example", port: 1))
        for bad in ["no-port", ":7300", "host:", "host:70000", "host:x", ""] {
            #expect(Endpoint(parsing: bad) == nil, "\(bad)")
        }
    }
}
