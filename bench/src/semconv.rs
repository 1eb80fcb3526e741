//! Span attributes that follow the OpenTelemetry semantic conventions
//! (http.*, rpc.*, db.*, messaging.*), about ten per span, and the shop's
//! services with their resources.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use rand::Rng;
use rand::rngs::StdRng;

/// The shop's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Frontend,
    Cart,
    Checkout,
    Payment,
    Currency,
    ProductCatalog,
    Recommendation,
    Shipping,
    Email,
    Ad,
    Accounting,
}

impl Service {
    pub const ALL: [Service; 11] = [
        Service::Frontend,
        Service::Cart,
        Service::Checkout,
        Service::Payment,
        Service::Currency,
        Service::ProductCatalog,
        Service::Recommendation,
        Service::Shipping,
        Service::Email,
        Service::Ad,
        Service::Accounting,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Frontend => "frontend",
            Service::Cart => "cart",
            Service::Checkout => "checkout",
            Service::Payment => "payment",
            Service::Currency => "currency",
            Service::ProductCatalog => "product-catalog",
            Service::Recommendation => "recommendation",
            Service::Shipping => "shipping",
            Service::Email => "email",
            Service::Ad => "ad",
            Service::Accounting => "accounting",
        }
    }

    /// The language of the service's SDK, and its instrumentation scope.
    fn sdk(self) -> (&'static str, &'static str) {
        match self {
            Service::Frontend | Service::Payment => ("nodejs", "@opentelemetry/instrumentation-http"),
            Service::Cart | Service::Accounting => ("dotnet", "OpenTelemetry.Instrumentation.AspNetCore"),
            Service::Checkout | Service::ProductCatalog => ("go", "go.opentelemetry.io/contrib/instrumentation/grpc"),
            Service::Currency => ("cpp", "opentelemetry-cpp/grpc"),
            Service::Recommendation => ("python", "opentelemetry.instrumentation.grpc"),
            Service::Shipping => ("rust", "opentelemetry-instrumentation-tonic"),
            Service::Email => ("ruby", "OpenTelemetry::Instrumentation::Sinatra"),
            Service::Ad => ("java", "io.opentelemetry.grpc-1.6"),
        }
    }

    pub fn port(self) -> i64 {
        match self {
            Service::Frontend => 8080,
            Service::Cart => 7070,
            Service::Email => 6060,
            _ => 50051,
        }
    }

    pub fn resource(self, rng: &mut StdRng) -> Resource {
        let (language, _) = self.sdk();
        let pod = format!("{}-{:08x}-{:05x}", self.name(), rng.random::<u32>(), rng.random_range(0..0xfffff));
        Resource {
            attributes: vec![
                s("service.name", self.name()),
                s("service.namespace", "shop"),
                s("service.version", "2.0.2"),
                s("service.instance.id", &hex_id(rng, 16)),
                s("deployment.environment.name", "production"),
                s("host.name", &pod),
                s("k8s.pod.name", &pod),
                s("k8s.namespace.name", "shop"),
                s("telemetry.sdk.language", language),
                s("telemetry.sdk.name", "opentelemetry"),
                s("telemetry.sdk.version", "1.38.0"),
            ],
            ..Default::default()
        }
    }

    pub fn scope(self) -> InstrumentationScope {
        InstrumentationScope { name: self.sdk().1.into(), version: "0.58.0".into(), ..Default::default() }
    }
}

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), key_strindex: 0 }
}

pub fn s(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

pub fn int(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

pub fn hex_id(rng: &mut StdRng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
    skein_model::ids::hex_lower(&raw)
}

pub fn ip(rng: &mut StdRng) -> String {
    format!("10.{}.{}.{}", rng.random_range(0..4), rng.random_range(0..=255), rng.random_range(1..255))
}

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "python-requests/2.32.3",
];

/// The root span of a page or API request, as seen by the frontend.
pub fn http_server(rng: &mut StdRng, method: &str, route: &str, path: &str, status: i64) -> Vec<KeyValue> {
    vec![
        s("http.request.method", method),
        s("http.route", route),
        s("url.path", path),
        s("url.scheme", "http"),
        int("http.response.status_code", status),
        s("server.address", "frontend-proxy"),
        int("server.port", Service::Frontend.port()),
        s("client.address", &ip(rng)),
        s("user_agent.original", USER_AGENTS[rng.random_range(0..USER_AGENTS.len())]),
        s("network.protocol.version", "1.1"),
        s("app.session.id", &hex_id(rng, 8)),
    ]
}

/// An HTTP call from one service to another (client or server side).
pub fn http_call(rng: &mut StdRng, to: Service, method: &str, route: &str, status: i64) -> Vec<KeyValue> {
    vec![
        s("http.request.method", method),
        s("http.route", route),
        s("url.full", &format!("http://{}:{}{route}", to.name(), to.port())),
        int("http.response.status_code", status),
        s("server.address", to.name()),
        int("server.port", to.port()),
        s("network.peer.address", &ip(rng)),
        s("network.protocol.version", "1.1"),
        s("network.transport", "tcp"),
        int("http.request.body.size", rng.random_range(200..4000)),
    ]
}

/// A gRPC call (client or server side); `grpc_code` 0 is OK.
pub fn rpc(rng: &mut StdRng, to: Service, rpc_service: &str, method: &str, grpc_code: i64) -> Vec<KeyValue> {
    vec![
        s("rpc.system", "grpc"),
        s("rpc.service", rpc_service),
        s("rpc.method", method),
        int("rpc.grpc.status_code", grpc_code),
        s("server.address", to.name()),
        int("server.port", to.port()),
        s("network.peer.address", &ip(rng)),
        int("network.peer.port", rng.random_range(32768..61000)),
        s("network.transport", "tcp"),
        s("network.type", "ipv4"),
    ]
}

/// A database query.
pub fn db(rng: &mut StdRng, system: &str, namespace: &str, operation: &str, table: &str, query: &str) -> Vec<KeyValue> {
    let (address, port) = if system == "redis" { ("valkey-cart", 6379) } else { ("postgresql", 5432) };
    vec![
        s("db.system.name", system),
        s("db.namespace", namespace),
        s("db.operation.name", operation),
        s("db.collection.name", table),
        s("db.query.text", query),
        s("server.address", address),
        int("server.port", port),
        s("network.peer.address", &ip(rng)),
        int("network.peer.port", port),
        int("db.response.returned_rows", rng.random_range(0..25)),
    ]
}

/// A Kafka publish or process span.
pub fn messaging(rng: &mut StdRng, operation: &str, order_id: &str) -> Vec<KeyValue> {
    let kind = if operation == "publish" { "send" } else { "process" };
    vec![
        s("messaging.system", "kafka"),
        s("messaging.destination.name", "orders"),
        s("messaging.operation.type", kind),
        s("messaging.operation.name", operation),
        s("messaging.client.id", &format!("{}-{}", if kind == "send" { "checkout" } else { "accounting" }, 1)),
        s("messaging.kafka.message.key", order_id),
        int("messaging.kafka.offset", rng.random_range(0..10_000_000)),
        s("messaging.destination.partition.id", &rng.random_range(0..6).to_string()),
        s("server.address", "kafka"),
        int("server.port", 9092),
    ]
}

/// An exception event's attributes.
pub fn exception(kind: &str, message: &str, frames: &[&str]) -> Vec<KeyValue> {
    let stack: String = frames.iter().map(|f| format!("    at {f}\n")).collect();
    vec![
        s("exception.type", kind),
        s("exception.message", message),
        s("exception.stacktrace", &format!("{kind}: {message}\n{stack}")),
        kv("exception.escaped", Value::BoolValue(false)),
    ]
}

/// The demo shop's catalogue, for product IDs in attributes and routes.
pub const PRODUCTS: [&str; 10] = [
    "OLJCESPC7Z",
    "66VCHSJNUP",
    "1YMWWN1N4O",
    "L9ECAV7KIM",
    "2ZYFJ3GM2N",
    "0PUK6V6EV0",
    "LS4PSXUNUM",
    "9SIQT8TOJO",
    "6E92ZMYYFZ",
    "HQTGWGPNH4",
];

pub const CURRENCIES: [&str; 6] = ["USD", "EUR", "CAD", "JPY", "GBP", "TRY"];
