//! What the shop's fleet measures: the instruments (names, units and
//! kinds after the OpenTelemetry semantic conventions) and, per service
//! instance, its series (attribute sets) and how each behaves. The values
//! themselves are made by [`metrics_workload`](super::metrics_workload).
//!
//! Series that describe the same traffic share a `key`, so their values
//! agree: `app.frontend.requests` counts exactly the requests that
//! `http.server.request.duration` observed, and `process.cpu.time` grows by
//! `process.cpu.utilization` × elapsed time.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use rand::Rng;
use rand::rngs::StdRng;

use super::ids::mix;
use super::semconv::{Service, int, s};

/// How an instrument aggregates, as exported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A gauge of a level; `as_int` when `int`.
    Gauge { int: bool },
    /// A cumulative monotonic sum; `as_int` when `int`.
    Counter { int: bool },
    /// A cumulative non-monotonic `as_int` sum of a level (an up-down counter).
    UpDown,
    /// A cumulative explicit-bucket histogram.
    Histogram { bounds: &'static [f64] },
    /// A delta base-2 exponential histogram with at most `max_size` buckets.
    ExpHistogram { max_scale: i32, max_size: usize },
    /// A cumulative summary with these quantiles, exported every `every` ticks.
    Summary { quantiles: &'static [f64], every: u64 },
}

#[derive(Debug, PartialEq)]
pub struct Instrument {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub kind: Kind,
}

/// How a series' values evolve, per tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behavior {
    /// `base` ± `amplitude` once per pass over the pool, plus ± `noise`.
    Level { base: f64, amplitude: f64, noise: f64 },
    /// Operations per tick (uniform in the range) with log-normal values
    /// (`median`, `sigma`) in the instrument's unit.
    Traffic { per_tick: (u32, u32), median: f64, sigma: f64 },
    /// The integral over time of a [`Behavior::Level`] of the same key (CPU
    /// seconds from a utilization).
    Integral { base: f64, amplitude: f64, noise: f64 },
}

/// One time series of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub attributes: Vec<KeyValue>,
    pub behavior: Behavior,
    /// Seeds the series' per-tick randomness; shared by series that measure the same thing.
    pub key: u64,
}

/// An instrument's series within one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    pub instrument: &'static Instrument,
    pub series: Vec<Series>,
}

/// An instrumentation scope and the metrics it exports.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub scope: InstrumentationScope,
    pub metrics: Vec<MetricSeries>,
}

/// One running process of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub service: Service,
    pub resource: Resource,
    pub groups: Vec<Group>,
}

const HTTP_BOUNDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
const RPC_BOUNDS: [f64; 15] =
    [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0];
const DB_BOUNDS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
const GC_QUANTILES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

pub static HTTP_SERVER_DURATION: Instrument = Instrument {
    name: "http.server.request.duration",
    unit: "s",
    description: "Duration of HTTP server requests.",
    kind: Kind::Histogram { bounds: &HTTP_BOUNDS },
};
pub static HTTP_SERVER_ACTIVE: Instrument = Instrument {
    name: "http.server.active_requests",
    unit: "{request}",
    description: "Number of active HTTP server requests.",
    kind: Kind::UpDown,
};
pub static HTTP_CLIENT_DURATION: Instrument = Instrument {
    name: "http.client.request.duration",
    unit: "s",
    description: "Duration of HTTP client requests.",
    kind: Kind::ExpHistogram { max_scale: 20, max_size: 160 },
};
pub static RPC_SERVER_DURATION: Instrument = Instrument {
    name: "rpc.server.duration",
    unit: "ms",
    description: "Measures the duration of inbound RPC.",
    kind: Kind::Histogram { bounds: &RPC_BOUNDS },
};
pub static RPC_CLIENT_DURATION: Instrument = Instrument {
    name: "rpc.client.duration",
    unit: "ms",
    description: "Measures the duration of outbound RPC.",
    kind: Kind::Histogram { bounds: &RPC_BOUNDS },
};
pub static DB_DURATION: Instrument = Instrument {
    name: "db.client.operation.duration",
    unit: "s",
    description: "Duration of database client operations.",
    kind: Kind::Histogram { bounds: &DB_BOUNDS },
};
pub static DB_CONNECTIONS: Instrument = Instrument {
    name: "db.client.connection.count",
    unit: "{connection}",
    description: "The number of connections that are currently in state described by the state attribute.",
    kind: Kind::UpDown,
};
pub static CPU_TIME: Instrument = Instrument {
    name: "process.cpu.time",
    unit: "s",
    description: "Total CPU seconds broken down by different CPU modes.",
    kind: Kind::Counter { int: false },
};
pub static CPU_UTILIZATION: Instrument = Instrument {
    name: "process.cpu.utilization",
    unit: "1",
    description: "Difference in process.cpu.time since the last measurement, divided by the elapsed time.",
    kind: Kind::Gauge { int: false },
};
pub static MEMORY_USAGE: Instrument = Instrument {
    name: "process.memory.usage",
    unit: "By",
    description: "The amount of physical memory in use.",
    kind: Kind::Gauge { int: true },
};
pub static FRONTEND_REQUESTS: Instrument = Instrument {
    name: "app.frontend.requests",
    unit: "{request}",
    description: "Requests served by the frontend.",
    kind: Kind::Counter { int: true },
};
pub static PAYMENT_TRANSACTIONS: Instrument = Instrument {
    name: "app.payment.transactions",
    unit: "{transaction}",
    description: "Payment transactions charged.",
    kind: Kind::Counter { int: true },
};
pub static GC_DURATION: Instrument = Instrument {
    name: "go_gc_duration_seconds",
    unit: "s",
    description: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.",
    kind: Kind::Summary { quantiles: &GC_QUANTILES, every: 4 },
};

/// A frontend route: method, route, status, requests per tick, median seconds.
type Route = (&'static str, &'static str, i64, (u32, u32), f64);
const FRONTEND_ROUTES: [Route; 7] = [
    ("GET", "/", 200, (10, 40), 0.08),
    ("GET", "/api/products/{productId}", 200, (15, 50), 0.05),
    ("GET", "/api/products/{productId}", 404, (0, 2), 0.01),
    ("POST", "/api/cart", 200, (5, 20), 0.06),
    ("POST", "/api/checkout", 200, (2, 8), 0.35),
    ("POST", "/api/checkout", 500, (0, 1), 0.2),
    ("GET", "/api/recommendations", 200, (8, 30), 0.04),
];

/// A gRPC method served: service, method, status code, calls per tick, median ms.
type Method = (&'static str, &'static str, i64, (u32, u32), f64);

fn served(service: Service) -> &'static [Method] {
    match service {
        Service::Cart => &[
            ("oteldemo.CartService", "AddItem", 0, (3, 12), 4.0),
            ("oteldemo.CartService", "GetCart", 0, (8, 30), 2.0),
            ("oteldemo.CartService", "EmptyCart", 0, (1, 5), 3.0),
        ],
        Service::Checkout => &[
            ("oteldemo.CheckoutService", "PlaceOrder", 0, (1, 5), 180.0),
            ("oteldemo.CheckoutService", "PlaceOrder", 13, (0, 1), 90.0),
        ],
        Service::Payment => &[
            ("oteldemo.PaymentService", "Charge", 0, (2, 8), 40.0),
            ("oteldemo.PaymentService", "Charge", 13, (0, 1), 25.0),
        ],
        Service::Currency => &[
            ("oteldemo.CurrencyService", "Convert", 0, (10, 40), 0.3),
            ("oteldemo.CurrencyService", "Convert", 13, (0, 1), 0.2),
            ("oteldemo.CurrencyService", "GetSupportedCurrencies", 0, (5, 20), 0.1),
        ],
        Service::ProductCatalog => &[
            ("oteldemo.ProductCatalogService", "GetProduct", 0, (15, 50), 1.5),
            ("oteldemo.ProductCatalogService", "ListProducts", 0, (10, 35), 3.0),
        ],
        Service::Recommendation => &[("oteldemo.RecommendationService", "ListRecommendations", 0, (8, 30), 6.0)],
        Service::Shipping => &[
            ("oteldemo.ShippingService", "GetQuote", 0, (2, 8), 2.0),
            ("oteldemo.ShippingService", "ShipOrder", 0, (1, 5), 2.5),
        ],
        Service::Ad => &[("oteldemo.AdService", "GetAds", 0, (8, 30), 3.0)],
        _ => &[],
    }
}

/// gRPC calls made: callee, service, method, calls per tick, median ms.
type Call = (Service, &'static str, &'static str, (u32, u32), f64);

fn calls(service: Service) -> &'static [Call] {
    match service {
        Service::Frontend => &[
            (Service::ProductCatalog, "oteldemo.ProductCatalogService", "GetProduct", (10, 35), 2.5),
            (Service::ProductCatalog, "oteldemo.ProductCatalogService", "ListProducts", (8, 25), 4.0),
            (Service::Currency, "oteldemo.CurrencyService", "Convert", (8, 30), 0.8),
            (Service::Currency, "oteldemo.CurrencyService", "GetSupportedCurrencies", (5, 20), 0.5),
            (Service::Cart, "oteldemo.CartService", "GetCart", (5, 20), 3.0),
            (Service::Cart, "oteldemo.CartService", "AddItem", (3, 12), 5.0),
            (Service::Recommendation, "oteldemo.RecommendationService", "ListRecommendations", (8, 30), 8.0),
            (Service::Ad, "oteldemo.AdService", "GetAds", (8, 30), 4.0),
            (Service::Checkout, "oteldemo.CheckoutService", "PlaceOrder", (1, 5), 200.0),
        ],
        Service::Checkout => &[
            (Service::Cart, "oteldemo.CartService", "GetCart", (1, 5), 3.0),
            (Service::Cart, "oteldemo.CartService", "EmptyCart", (1, 5), 4.0),
            (Service::ProductCatalog, "oteldemo.ProductCatalogService", "GetProduct", (2, 10), 2.5),
            (Service::Currency, "oteldemo.CurrencyService", "Convert", (3, 12), 0.8),
            (Service::Shipping, "oteldemo.ShippingService", "GetQuote", (1, 5), 3.0),
            (Service::Shipping, "oteldemo.ShippingService", "ShipOrder", (1, 5), 3.5),
            (Service::Payment, "oteldemo.PaymentService", "Charge", (1, 5), 45.0),
        ],
        _ => &[],
    }
}

/// HTTP calls made: method, server, port, status, calls per tick, median seconds.
type HttpCall = (&'static str, &'static str, i64, i64, (u32, u32), f64);

fn http_calls(service: Service) -> &'static [HttpCall] {
    match service {
        Service::Frontend => &[
            ("GET", "flagd", 8013, 200, (5, 20), 0.002),
            ("GET", "image-provider", 8081, 200, (10, 40), 0.012),
            ("GET", "image-provider", 8081, 404, (0, 2), 0.004),
        ],
        Service::Checkout => &[("POST", "email", 6060, 200, (1, 5), 0.03), ("POST", "email", 6060, 500, (0, 1), 0.01)],
        _ => &[],
    }
}

/// Database operations: system, namespace, operation, collection, per tick, median seconds.
type DbOp = (&'static str, &'static str, &'static str, &'static str, (u32, u32), f64);

fn db_ops(service: Service) -> &'static [DbOp] {
    match service {
        Service::Cart => &[
            ("redis", "0", "HGET", "cart", (8, 30), 0.0004),
            ("redis", "0", "HSET", "cart", (3, 12), 0.0005),
            ("redis", "0", "EXPIRE", "cart", (3, 12), 0.0003),
            ("redis", "0", "DEL", "cart", (1, 5), 0.0003),
        ],
        Service::ProductCatalog => &[("postgresql", "catalog", "SELECT", "products", (20, 60), 0.002)],
        Service::Accounting => &[
            ("postgresql", "accounting", "INSERT", "order", (1, 5), 0.003),
            ("postgresql", "accounting", "INSERT", "orderitem", (2, 12), 0.002),
            ("postgresql", "accounting", "INSERT", "shipping", (1, 5), 0.002),
        ],
        _ => &[],
    }
}

/// Instances per service.
fn replicas(service: Service) -> usize {
    match service {
        Service::Frontend => 3,
        Service::Cart | Service::Checkout | Service::ProductCatalog => 2,
        _ => 1,
    }
}

/// The fleet: every instance of every service with its series. Pod names
/// and instance IDs come from `rng`.
pub fn fleet(rng: &mut StdRng) -> Vec<Instance> {
    let mut instances = Vec::new();
    for service in Service::ALL {
        for replica in 0..replicas(service) {
            let mut resource = service.resource(rng);
            resource.attributes.push(s("k8s.deployment.name", service.name()));
            resource.attributes.push(s("k8s.node.name", &format!("shop-node-{}", rng.random_range(1..=3))));
            let seed = mix((service.index() as u64) << 8 | replica as u64) ^ rng.random::<u64>();
            instances.push(Instance { service, resource, groups: groups(service, seed) });
        }
    }
    instances
}

/// A key for series `n` of `instrument` in the instance seeded with `seed`.
fn key(seed: u64, family: &str, n: usize) -> u64 {
    let name = family.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    mix(seed ^ mix(name ^ (n as u64 + 1)))
}

fn traffic(per_tick: (u32, u32), median: f64, sigma: f64) -> Behavior {
    Behavior::Traffic { per_tick, median, sigma }
}

fn groups(service: Service, seed: u64) -> Vec<Group> {
    let mut requests = Vec::new();
    let mut app = Vec::new();
    if service == Service::Frontend {
        let (mut durations, mut counts) = (Vec::new(), Vec::new());
        for (n, (method, route, status, per_tick, median)) in FRONTEND_ROUTES.into_iter().enumerate() {
            let key = key(seed, "http.route", n);
            let behavior = traffic(per_tick, median, 0.6);
            let mut attributes = vec![
                s("http.request.method", method),
                s("http.route", route),
                int("http.response.status_code", status),
            ];
            counts.push(Series { attributes: attributes.clone(), behavior, key });
            attributes.extend([s("url.scheme", "http"), s("network.protocol.version", "1.1")]);
            durations.push(Series { attributes, behavior, key });
        }
        requests.push(MetricSeries { instrument: &HTTP_SERVER_DURATION, series: durations });
        app.push(MetricSeries { instrument: &FRONTEND_REQUESTS, series: counts });
    }
    if service == Service::Email {
        let attributes = vec![
            s("http.request.method", "POST"),
            s("http.route", "/send_order_confirmation"),
            int("http.response.status_code", 200),
            s("url.scheme", "http"),
            s("network.protocol.version", "1.1"),
        ];
        let series =
            vec![Series { attributes, behavior: traffic((1, 5), 0.015, 0.5), key: key(seed, "http.route", 0) }];
        requests.push(MetricSeries { instrument: &HTTP_SERVER_DURATION, series });
    }
    if matches!(service, Service::Frontend | Service::Email) {
        let methods: &[(&str, f64)] =
            if service == Service::Email { &[("POST", 1.0)] } else { &[("GET", 6.0), ("POST", 2.0)] };
        let series = methods
            .iter()
            .enumerate()
            .map(|(n, (method, base))| Series {
                attributes: vec![s("http.request.method", method), s("url.scheme", "http")],
                behavior: Behavior::Level { base: *base, amplitude: base * 0.5, noise: 2.0 },
                key: key(seed, "http.server.active_requests", n),
            })
            .collect();
        requests.push(MetricSeries { instrument: &HTTP_SERVER_ACTIVE, series });
    }
    let methods = served(service);
    if !methods.is_empty() {
        let series = methods
            .iter()
            .enumerate()
            .map(|(n, (rpc_service, method, code, per_tick, median))| Series {
                attributes: vec![
                    s("rpc.system", "grpc"),
                    s("rpc.service", rpc_service),
                    s("rpc.method", method),
                    int("rpc.grpc.status_code", *code),
                ],
                behavior: traffic(*per_tick, *median, 0.7),
                key: key(seed, "rpc.server", n),
            })
            .collect();
        requests.push(MetricSeries { instrument: &RPC_SERVER_DURATION, series });
    }
    let outgoing = calls(service);
    if !outgoing.is_empty() {
        let series = outgoing
            .iter()
            .enumerate()
            .map(|(n, (to, rpc_service, method, per_tick, median))| Series {
                attributes: vec![
                    s("rpc.system", "grpc"),
                    s("rpc.service", rpc_service),
                    s("rpc.method", method),
                    int("rpc.grpc.status_code", 0),
                    s("server.address", to.name()),
                    int("server.port", to.port()),
                ],
                behavior: traffic(*per_tick, *median, 0.7),
                key: key(seed, "rpc.client", n),
            })
            .collect();
        requests.push(MetricSeries { instrument: &RPC_CLIENT_DURATION, series });
    }
    let http = http_calls(service);
    if !http.is_empty() {
        let series = http
            .iter()
            .enumerate()
            .map(|(n, (method, server, port, status, per_tick, median))| Series {
                attributes: vec![
                    s("http.request.method", method),
                    s("server.address", server),
                    int("server.port", *port),
                    int("http.response.status_code", *status),
                ],
                behavior: traffic(*per_tick, *median, 0.8),
                key: key(seed, "http.client", n),
            })
            .collect();
        requests.push(MetricSeries { instrument: &HTTP_CLIENT_DURATION, series });
    }
    let ops = db_ops(service);
    if !ops.is_empty() {
        let series = ops
            .iter()
            .enumerate()
            .map(|(n, (system, namespace, op, collection, per_tick, median))| Series {
                attributes: vec![
                    s("db.system.name", system),
                    s("db.namespace", namespace),
                    s("db.operation.name", op),
                    s("db.collection.name", collection),
                    s("server.address", if *system == "redis" { "valkey-cart" } else { "postgresql" }),
                ],
                behavior: traffic(*per_tick, *median, 0.9),
                key: key(seed, "db.client.operation", n),
            })
            .collect();
        requests.push(MetricSeries { instrument: &DB_DURATION, series });
    }
    if matches!(service, Service::ProductCatalog | Service::Accounting) {
        let pool = if service == Service::Accounting { "accounting" } else { "catalog" };
        let series = [("used", 3.0), ("idle", 7.0)]
            .into_iter()
            .enumerate()
            .map(|(n, (state, base))| Series {
                attributes: vec![s("db.client.connection.pool.name", pool), s("db.client.connection.state", state)],
                behavior: Behavior::Level { base, amplitude: 2.0, noise: 1.0 },
                key: key(seed, "db.client.connection.count", n),
            })
            .collect();
        requests.push(MetricSeries { instrument: &DB_CONNECTIONS, series });
    }
    if service == Service::Payment {
        let mut series = Vec::new();
        for currency in super::semconv::CURRENCIES {
            for card in ["visa", "mastercard"] {
                series.push(Series {
                    attributes: vec![s("app.payment.currency", currency), s("app.payment.card_type", card)],
                    behavior: traffic((0, 3), 1.0, 0.0),
                    key: key(seed, "app.payment.transactions", series.len()),
                });
            }
        }
        app.push(MetricSeries { instrument: &PAYMENT_TRANSACTIONS, series });
    }

    let mut groups = Vec::new();
    if !requests.is_empty() {
        groups.push(Group { scope: service.scope(), metrics: requests });
    }
    groups.push(Group { scope: scope("process-metrics", "0.58.0"), metrics: process(seed) });
    if !app.is_empty() {
        groups.push(Group { scope: scope(&format!("shop.{}", service.name()), "2.0.2"), metrics: app });
    }
    if matches!(service, Service::Checkout | Service::ProductCatalog) {
        let series =
            vec![Series { attributes: Vec::new(), behavior: traffic((0, 3), 0.0002, 0.5), key: key(seed, "gc", 0) }];
        let metrics = vec![MetricSeries { instrument: &GC_DURATION, series }];
        groups.push(Group { scope: scope("go.opentelemetry.io/contrib/bridges/prometheus", "0.63.0"), metrics });
    }
    groups
}

/// CPU time and utilization by mode (sharing keys, so they agree) and memory.
fn process(seed: u64) -> Vec<MetricSeries> {
    let modes = [("user", 0.25), ("system", 0.06)];
    let level = |base: f64| (base, base * 0.6, base * 0.3);
    let time = modes
        .iter()
        .enumerate()
        .map(|(n, (mode, base))| {
            let (base, amplitude, noise) = level(*base);
            Series {
                attributes: vec![s("cpu.mode", mode)],
                behavior: Behavior::Integral { base, amplitude, noise },
                key: key(seed, "cpu", n),
            }
        })
        .collect();
    let utilization = modes
        .iter()
        .enumerate()
        .map(|(n, (mode, base))| {
            let (base, amplitude, noise) = level(*base);
            Series {
                attributes: vec![s("cpu.mode", mode)],
                behavior: Behavior::Level { base, amplitude, noise },
                key: key(seed, "cpu", n),
            }
        })
        .collect();
    let memory = vec![Series {
        attributes: Vec::new(),
        behavior: Behavior::Level { base: 260e6, amplitude: 40e6, noise: 8e6 },
        key: key(seed, "memory", 0),
    }];
    vec![
        MetricSeries { instrument: &CPU_TIME, series: time },
        MetricSeries { instrument: &CPU_UTILIZATION, series: utilization },
        MetricSeries { instrument: &MEMORY_USAGE, series: memory },
    ]
}

fn scope(name: &str, version: &str) -> InstrumentationScope {
    InstrumentationScope { name: name.into(), version: version.into(), ..Default::default() }
}
