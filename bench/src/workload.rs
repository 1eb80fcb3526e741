//! The trace generator: requests from a small online shop (frontend, cart,
//! checkout, payment, currency, product catalog, ...), deterministic from a
//! seed. A trace is one user action (browse a product, view the home page,
//! add to cart, check out, or process an order from Kafka) of 5–30 spans
//! with client/server pairs for every call, database spans, ~10 attributes
//! per span, occasional message events, errors with exception events, and
//! links from order consumers to the checkout that published the order.
//!
//! IDs come from [`IdScheme`] with epoch 0, so `pool` can rewrite them per
//! send; trace `n` (from 1) and span `n` of the request use local number `n`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use rand::Rng;
use rand::rngs::StdRng;

use super::ids::IdScheme;
use super::semconv::{self, CURRENCIES, PRODUCTS, Service, int, s};

const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";
const MIN_TRACE_SPANS: usize = 5;
const MAX_TRACE_SPANS: usize = 30;
/// Spans of a checkout of one item that reaches the Kafka publish.
const CHECKOUT_SPANS: usize = 25;
/// W3C trace flags: sampled, with "is remote" known (bit 8) and set (bit 9).
const FLAGS_LOCAL: u32 = 0x101;
const FLAGS_REMOTE: u32 = 0x301;

/// Builds one export request holding exactly `spans` spans (whole traces,
/// except that the last may be cut short), grouped by service as an
/// OpenTelemetry Collector would send them. Traces start within the two
/// seconds before `now_ns`.
pub fn generate_request(rng: &mut StdRng, ids: &IdScheme, spans: usize, now_ns: u64) -> ExportTraceServiceRequest {
    let mut builder = Builder {
        rng,
        ids,
        by_service: vec![Vec::new(); Service::ALL.len()],
        traces: 0,
        spans: 0,
        trace_id: [0; 16],
        budget: 0,
        last_publish: None,
    };
    let mut remaining = spans;
    while remaining > 0 {
        let start = now_ns.saturating_sub(builder.rng.random_range(1_000_000..2_000_000_000));
        remaining -= builder.trace(remaining, start);
    }
    let Builder { rng, by_service, .. } = builder;
    let resource_spans = Service::ALL
        .into_iter()
        .zip(by_service)
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(service, spans)| ResourceSpans {
            resource: Some(service.resource(rng)),
            scope_spans: vec![ScopeSpans { scope: Some(service.scope()), spans, schema_url: SCHEMA_URL.into() }],
            schema_url: SCHEMA_URL.into(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Where a call ended and whether it failed.
#[derive(Debug, Clone, Copy)]
struct Done {
    end: u64,
    failed: bool,
}

impl Done {
    fn at(end: u64) -> Self {
        Self { end, failed: false }
    }

    /// Continues after `next` if it happened (it is skipped when the trace
    /// is out of span budget).
    fn then(self, next: Option<Done>) -> Done {
        next.map_or(self, |d| Done { end: d.end, failed: self.failed || d.failed })
    }
}

/// An injected failure of the server side of a call.
#[derive(Debug, Clone, Copy)]
struct Failure {
    rate: f64,
    kind: &'static str,
    message: &'static str,
    frames: &'static [&'static str],
}

const CHARGE_FAILED: Failure = Failure {
    rate: 0.08,
    kind: "Error",
    message: "Payment request failed. Invalid token. app.loyalty.level=gold",
    frames: &[
        "Object.charge (/usr/src/app/charge.js:37:13)",
        "process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    ],
};

const CONVERT_FAILED: Failure = Failure {
    rate: 0.01,
    kind: "std::runtime_error",
    message: "conversion rates are unavailable",
    frames: &["CurrencyService::Convert(grpc::ServerContext*) server.cpp:171"],
};

/// One call between services.
struct Call<'c> {
    from: Service,
    to: Service,
    /// gRPC service and method, or HTTP method and route.
    protocol: Protocol<'c>,
    /// The server's own time, in microseconds.
    work_us: (u64, u64),
    failure: Option<Failure>,
    /// Application attributes on the server span.
    extra: Vec<KeyValue>,
}

enum Protocol<'c> {
    Grpc { service: &'c str, method: &'c str },
    Http { method: &'c str, route: &'c str },
}

struct Builder<'a> {
    rng: &'a mut StdRng,
    ids: &'a IdScheme,
    by_service: Vec<Vec<Span>>,
    traces: u32,
    spans: u32,
    /// The trace being built and the spans it may still add.
    trace_id: [u8; 16],
    budget: usize,
    /// The last `orders publish` span, for consumers to link to.
    last_publish: Option<([u8; 16], [u8; 8])>,
}

impl Builder<'_> {
    /// Adds one trace of at most `budget` spans; returns how many it has.
    /// Adds one trace of 5–30 spans (fewer only when the request has fewer
    /// than that left); returns how many spans it has.
    fn trace(&mut self, room: usize, start: u64) -> usize {
        self.traces += 1;
        self.trace_id = self.ids.trace_id(0, self.traces);
        let scenario = self.rng.random_range(0..100);
        // A whole checkout needs 25 spans or more; smaller budgets would cut
        // off its last steps (and the Kafka publish that consumers link to).
        let min = if (75..90).contains(&scenario) { CHECKOUT_SPANS } else { MIN_TRACE_SPANS };
        let budget = self.rng.random_range(min..=MAX_TRACE_SPANS).min(room);
        self.budget = budget;
        match scenario {
            0..35 => self.browse(start),
            35..55 => self.home(start),
            55..75 => self.add_to_cart(start),
            75..90 => self.checkout(start),
            _ => self.process_order(start),
        }
        budget - self.budget
    }

    fn reserve(&mut self, spans: usize) -> bool {
        let ok = self.budget >= spans;
        if ok {
            self.budget -= spans;
        }
        ok
    }

    fn next_span_id(&mut self) -> [u8; 8] {
        self.spans += 1;
        self.ids.span_id(0, self.spans)
    }

    fn micros(&mut self, range: (u64, u64)) -> u64 {
        self.rng.random_range(range.0..=range.1) * 1000
    }

    fn product(&mut self) -> &'static str {
        PRODUCTS[self.rng.random_range(0..PRODUCTS.len())]
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        id: [u8; 8],
        parent: Option<[u8; 8]>,
        name: String,
        kind: SpanKind,
        start: u64,
        end: u64,
        attributes: Vec<KeyValue>,
        failed: bool,
    ) -> Span {
        let status =
            if failed { Status { code: StatusCode::Error as i32, message: String::new() } } else { Status::default() };
        Span {
            trace_id: self.trace_id.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: if kind == SpanKind::Server { FLAGS_REMOTE } else { FLAGS_LOCAL },
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            status: Some(status),
            ..Default::default()
        }
    }

    fn push(&mut self, service: Service, span: Span) {
        self.by_service[service.index()].push(span);
    }

    /// The frontend's server span for a user request; `inner` makes its calls.
    fn http_root(
        &mut self,
        start: u64,
        method: &str,
        route: &str,
        path: &str,
        inner: impl FnOnce(&mut Self, [u8; 8], u64) -> Done,
    ) {
        if !self.reserve(1) {
            return;
        }
        let id = self.next_span_id();
        let first = start + self.micros((100, 800));
        let done = inner(self, id, first);
        let end = done.end + self.micros((200, 3000));
        let status = if done.failed { 500 } else { 200 };
        let attributes = semconv::http_server(self.rng, method, route, path, status);
        let span =
            self.span(id, None, format!("{method} {route}"), SpanKind::Server, start, end, attributes, done.failed);
        self.push(Service::Frontend, span);
    }

    /// A client span in `from` and a server span in `to`; `inner` makes the
    /// server's own calls. With room for one span only, just the client
    /// span is kept (as when the callee is not instrumented); with none, the
    /// call is skipped (None).
    fn call(
        &mut self,
        parent: [u8; 8],
        start: u64,
        call: Call<'_>,
        inner: impl FnOnce(&mut Self, [u8; 8], u64) -> Done,
    ) -> Option<Done> {
        let with_server = match self.budget {
            0 => return None,
            1 => false,
            _ => true,
        };
        self.budget -= if with_server { 2 } else { 1 };
        let client_id = self.next_span_id();
        let server_id = if with_server { self.next_span_id() } else { [0; 8] };
        let server_start = start + self.micros((50, 400));
        let first = server_start + self.micros((10, 100));
        let done = if with_server { inner(self, server_id, first) } else { Done::at(first) };
        let server_end = done.end + self.micros(call.work_us);
        let client_end = server_end + self.micros((50, 400));
        let injected = call.failure.filter(|f| self.rng.random_bool(f.rate));
        let failed = done.failed || injected.is_some();

        let (client_name, server_name, mut client_attrs) = match call.protocol {
            Protocol::Grpc { service, method } => {
                let code = if failed { 13 } else { 0 };
                let name = format!("{service}/{method}");
                (name.clone(), name, semconv::rpc(self.rng, call.to, service, method, code))
            }
            Protocol::Http { method, route } => {
                let status = if failed { 500 } else { 200 };
                (
                    method.to_owned(),
                    format!("{method} {route}"),
                    semconv::http_call(self.rng, call.to, method, route, status),
                )
            }
        };
        let mut server_attrs = client_attrs.clone();
        server_attrs.extend(call.extra);
        let mut server = self.span(
            server_id,
            Some(client_id),
            server_name,
            SpanKind::Server,
            server_start,
            server_end,
            server_attrs,
            failed,
        );
        if let Some(failure) = injected {
            server.status = Some(Status { code: StatusCode::Error as i32, message: failure.message.into() });
            server.events.push(Event {
                time_unix_nano: server_end.saturating_sub(20_000),
                name: "exception".into(),
                attributes: semconv::exception(failure.kind, failure.message, failure.frames),
                dropped_attributes_count: 0,
            });
        }
        client_attrs.truncate(10);
        let mut client =
            self.span(client_id, Some(parent), client_name, SpanKind::Client, start, client_end, client_attrs, failed);
        if matches!(call.protocol, Protocol::Grpc { .. }) && self.rng.random_bool(0.1) {
            client.events = self.message_events(start, client_end);
        }
        if with_server {
            self.push(call.to, server);
        }
        self.push(call.from, client);
        Some(Done { end: client_end, failed })
    }

    /// gRPC message events (SENT then RECEIVED), as the Java/Go SDKs record them.
    fn message_events(&mut self, start: u64, end: u64) -> Vec<Event> {
        ["SENT", "RECEIVED"]
            .into_iter()
            .zip([start + 10_000, end.saturating_sub(10_000)])
            .map(|(kind, time)| Event {
                time_unix_nano: time,
                name: "message".into(),
                attributes: vec![
                    s("rpc.message.type", kind),
                    int("rpc.message.id", 1),
                    int("rpc.message.uncompressed_size", self.rng.random_range(20..2000)),
                ],
                dropped_attributes_count: 0,
            })
            .collect()
    }

    /// One database query as a client span.
    fn db(
        &mut self,
        parent: [u8; 8],
        start: u64,
        service: Service,
        op: &str,
        table: &str,
        query: &str,
    ) -> Option<Done> {
        if !self.reserve(1) {
            return None;
        }
        let id = self.next_span_id();
        let redis = table.starts_with("cart");
        let (system, namespace, name, took) = if redis {
            ("redis", "0", op.to_owned(), (30, 900))
        } else {
            (
                "postgresql",
                if service == Service::Accounting { "accounting" } else { "catalog" },
                format!("{op} {table}"),
                (200, 6000),
            )
        };
        let end = start + self.micros(took);
        let attributes = semconv::db(self.rng, system, namespace, op, table, query);
        let span = self.span(id, Some(parent), name, SpanKind::Client, start, end, attributes, false);
        self.push(service, span);
        Some(Done::at(end))
    }

    fn grpc(
        &self,
        from: Service,
        to: Service,
        service: &'static str,
        method: &'static str,
        work_us: (u64, u64),
    ) -> Call<'static> {
        Call { from, to, protocol: Protocol::Grpc { service, method }, work_us, failure: None, extra: Vec::new() }
    }

    fn get_product(&mut self, from: Service, parent: [u8; 8], start: u64) -> Option<Done> {
        let product = self.product();
        let mut call =
            self.grpc(from, Service::ProductCatalog, "oteldemo.ProductCatalogService", "GetProduct", (100, 1500));
        call.extra.push(s("app.product.id", product));
        self.call(parent, start, call, |b, server, at| {
            Done::at(at).then(b.db(server, at, Service::ProductCatalog, "SELECT", "products", "SELECT id, name, description, picture, price_currency_code, price_units, price_nanos, categories FROM catalog.products WHERE id = $1"))
        })
    }

    fn list_products(&mut self, from: Service, parent: [u8; 8], start: u64) -> Option<Done> {
        let call =
            self.grpc(from, Service::ProductCatalog, "oteldemo.ProductCatalogService", "ListProducts", (300, 3000));
        self.call(parent, start, call, |b, server, at| {
            Done::at(at).then(b.db(server, at, Service::ProductCatalog, "SELECT", "products", "SELECT id, name, description, picture, price_currency_code, price_units, price_nanos, categories FROM catalog.products"))
        })
    }

    fn convert(&mut self, from: Service, parent: [u8; 8], start: u64) -> Option<Done> {
        let currency = CURRENCIES[self.rng.random_range(0..CURRENCIES.len())];
        let mut call = self.grpc(from, Service::Currency, "oteldemo.CurrencyService", "Convert", (20, 400));
        call.failure = Some(CONVERT_FAILED);
        call.extra.push(s("app.currency.conversion.to", currency));
        self.call(parent, start, call, |_, _, at| Done::at(at))
    }

    fn cart_op(
        &mut self,
        from: Service,
        parent: [u8; 8],
        start: u64,
        method: &'static str,
        redis: &'static [&'static str],
    ) -> Option<Done> {
        let user = semconv::hex_id(self.rng, 16);
        let mut call = self.grpc(from, Service::Cart, "oteldemo.CartService", method, (100, 1200));
        call.extra.push(s("app.user.id", &user));
        self.call(parent, start, call, |b, server, at| {
            let mut done = Done::at(at);
            for op in redis {
                done = done.then(b.db(server, done.end, Service::Cart, op, "cart", &format!("{op} cart:{user}")));
            }
            done
        })
    }

    fn get_ads(&mut self, parent: [u8; 8], start: u64) -> Option<Done> {
        let call = self.grpc(Service::Frontend, Service::Ad, "oteldemo.AdService", "GetAds", (500, 8000));
        self.call(parent, start, call, |_, _, at| Done::at(at))
    }

    fn browse(&mut self, start: u64) {
        let product = self.product();
        let path = format!("/api/products/{product}");
        self.http_root(start, "GET", "/api/products/{productId}", &path, |b, root, at| {
            let mut done = Done::at(at).then(b.get_product(Service::Frontend, root, at));
            done = done.then(b.convert(Service::Frontend, root, done.end));
            let call = b.grpc(
                Service::Frontend,
                Service::Recommendation,
                "oteldemo.RecommendationService",
                "ListRecommendations",
                (500, 5000),
            );
            done = done.then(b.call(root, done.end, call, |b, server, at| {
                Done::at(at).then(b.list_products(Service::Recommendation, server, at))
            }));
            if b.rng.random_bool(0.7) {
                done = done.then(b.get_ads(root, done.end));
            }
            done
        });
    }

    fn home(&mut self, start: u64) {
        self.http_root(start, "GET", "/", "/", |b, root, at| {
            let mut done = Done::at(at).then(b.list_products(Service::Frontend, root, at));
            let call = b.grpc(
                Service::Frontend,
                Service::Currency,
                "oteldemo.CurrencyService",
                "GetSupportedCurrencies",
                (20, 200),
            );
            done = done.then(b.call(root, done.end, call, |_, _, at| Done::at(at)));
            done = done.then(b.cart_op(Service::Frontend, root, done.end, "GetCart", &["HGET"]));
            done.then(b.get_ads(root, done.end))
        });
    }

    fn add_to_cart(&mut self, start: u64) {
        self.http_root(start, "POST", "/api/cart", "/api/cart", |b, root, at| {
            let done = Done::at(at).then(b.get_product(Service::Frontend, root, at));
            done.then(b.cart_op(Service::Frontend, root, done.end, "AddItem", &["HGET", "HSET", "EXPIRE"]))
        });
    }

    fn checkout(&mut self, start: u64) {
        let items = self.rng.random_range(1..=3);
        self.http_root(start, "POST", "/api/checkout", "/api/checkout", |b, root, at| {
            let order_id = semconv::hex_id(b.rng, 16);
            let mut call =
                b.grpc(Service::Frontend, Service::Checkout, "oteldemo.CheckoutService", "PlaceOrder", (500, 4000));
            call.extra.push(s("app.order.id", &order_id));
            call.extra.push(int("app.order.items.count", items));
            let placed = b.call(root, at, call, |b, server, at| b.place_order(server, at, items, &order_id));
            Done::at(at).then(placed)
        });
    }

    fn place_order(&mut self, server: [u8; 8], at: u64, items: i64, order_id: &str) -> Done {
        let checkout = Service::Checkout;
        let mut done = Done::at(at).then(self.cart_op(checkout, server, at, "GetCart", &["HGET"]));
        for _ in 0..items {
            done = done.then(self.get_product(checkout, server, done.end));
            done = done.then(self.convert(checkout, server, done.end));
        }
        let quote = self.grpc(checkout, Service::Shipping, "oteldemo.ShippingService", "GetQuote", (200, 3000));
        done = done.then(self.call(server, done.end, quote, |_, _, at| Done::at(at)));
        done = done.then(self.convert(checkout, server, done.end));
        let amount = self.rng.random_range(10.0..900.0f64);
        let mut charge = self.grpc(checkout, Service::Payment, "oteldemo.PaymentService", "Charge", (5_000, 80_000));
        charge.failure = Some(CHARGE_FAILED);
        charge.extra.push(semconv::kv(
            "app.payment.amount",
            opentelemetry_proto::tonic::common::v1::any_value::Value::DoubleValue((amount * 100.0).round() / 100.0),
        ));
        charge.extra.push(s("app.payment.card_type", if self.rng.random_bool(0.6) { "visa" } else { "mastercard" }));
        done = done.then(self.call(server, done.end, charge, |_, _, at| Done::at(at)));
        if done.failed {
            return done;
        }
        let ship = self.grpc(checkout, Service::Shipping, "oteldemo.ShippingService", "ShipOrder", (200, 2000));
        done = done.then(self.call(server, done.end, ship, |_, _, at| Done::at(at)));
        done = done.then(self.cart_op(checkout, server, done.end, "EmptyCart", &["DEL"]));
        let email = Call {
            from: checkout,
            to: Service::Email,
            protocol: Protocol::Http { method: "POST", route: "/send_order_confirmation" },
            work_us: (2_000, 20_000),
            failure: None,
            extra: vec![s("app.order.id", order_id)],
        };
        done = done.then(self.call(server, done.end, email, |_, _, at| Done::at(at)));
        done.then(self.publish(server, done.end, order_id))
    }

    /// Checkout's Kafka producer span; remembered for a later consumer's link.
    fn publish(&mut self, parent: [u8; 8], start: u64, order_id: &str) -> Option<Done> {
        if !self.reserve(1) {
            return None;
        }
        let id = self.next_span_id();
        let end = start + self.micros((100, 2000));
        let attributes = semconv::messaging(self.rng, "publish", order_id);
        let span =
            self.span(id, Some(parent), "publish orders".into(), SpanKind::Producer, start, end, attributes, false);
        self.push(Service::Checkout, span);
        self.last_publish = Some((self.trace_id, id));
        Some(Done::at(end))
    }

    /// Accounting consumes an order: a new trace linked to the publisher.
    fn process_order(&mut self, start: u64) {
        if !self.reserve(1) {
            return;
        }
        let id = self.next_span_id();
        let order_id = semconv::hex_id(self.rng, 16);
        let accounting = Service::Accounting;
        let mut done = Done::at(start + self.micros((50, 500)));
        let inserts = [("order", 1), ("orderitem", self.rng.random_range(2..=4)), ("shipping", 1)];
        for (table, rows) in inserts {
            for _ in 0..rows {
                let query = format!("INSERT INTO accounting.{table} VALUES ($1, $2, $3)");
                done = done.then(self.db(id, done.end, accounting, "INSERT", table, &query));
            }
        }
        let end = done.end + self.micros((100, 1500));
        let attributes = semconv::messaging(self.rng, "process", &order_id);
        let mut span = self.span(id, None, "process orders".into(), SpanKind::Consumer, start, end, attributes, false);
        if let Some((trace_id, span_id)) = self.last_publish {
            span.links.push(Link {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                flags: FLAGS_LOCAL,
                attributes: vec![s("messaging.operation.type", "send")],
                ..Default::default()
            });
        }
        self.push(accounting, span);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rand::SeedableRng;
    use skein_model::{ConvertLimits, spans_to_arrow};

    use super::*;

    const NOW: u64 = 1_750_000_000_000_000_000;

    fn spans(request: &ExportTraceServiceRequest) -> Vec<&Span> {
        request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect()
    }

    #[test]
    fn requests_hold_exactly_the_asked_spans_and_are_deterministic() {
        let ids = IdScheme::new(7);
        for size in [1, 4, 5, 31, 512] {
            let a = generate_request(&mut StdRng::seed_from_u64(3), &ids, size, NOW);
            let b = generate_request(&mut StdRng::seed_from_u64(3), &ids, size, NOW);
            assert_eq!(spans(&a).len(), size);
            assert_eq!(a, b, "same seed, same request");
        }
        let other = generate_request(&mut StdRng::seed_from_u64(4), &ids, 64, NOW);
        assert_ne!(generate_request(&mut StdRng::seed_from_u64(3), &ids, 64, NOW), other);
    }

    #[test]
    fn traces_are_well_formed_and_realistic() {
        let ids = IdScheme::new(7);
        let request = generate_request(&mut StdRng::seed_from_u64(11), &ids, 4096, NOW);
        let all = spans(&request);
        let mut by_trace: HashMap<&[u8], Vec<&Span>> = HashMap::new();
        for span in &all {
            by_trace.entry(span.trace_id.as_slice()).or_default().push(span);
        }
        let span_ids: HashSet<&[u8]> = all.iter().map(|s| s.span_id.as_slice()).collect();
        assert_eq!(span_ids.len(), all.len(), "span IDs are unique");
        let sizes: Vec<usize> = by_trace.values().map(Vec::len).collect();
        let small = sizes.iter().filter(|n| **n < MIN_TRACE_SPANS).count();
        assert!(small <= 1, "only the last trace may be cut short: {sizes:?}");
        assert!(sizes.iter().all(|n| *n <= MAX_TRACE_SPANS), "{sizes:?}");
        for spans in by_trace.values() {
            let ids: HashSet<&[u8]> = spans.iter().map(|s| s.span_id.as_slice()).collect();
            let roots = spans.iter().filter(|s| s.parent_span_id.is_empty()).count();
            assert_eq!(roots, 1, "one root per trace");
            for span in spans {
                assert!(
                    span.parent_span_id.is_empty() || ids.contains(span.parent_span_id.as_slice()),
                    "parent in trace"
                );
                assert!(
                    span.start_time_unix_nano <= span.end_time_unix_nano
                        && span.end_time_unix_nano > NOW - 3_000_000_000
                );
            }
        }
        let attrs = all.iter().map(|s| s.attributes.len()).sum::<usize>() as f64 / all.len() as f64;
        assert!((9.0..=12.0).contains(&attrs), "about ten attributes per span, got {attrs}");
        let errors =
            all.iter().filter(|s| s.status.as_ref().is_some_and(|st| st.code == StatusCode::Error as i32)).count();
        let with_events = all.iter().filter(|s| !s.events.is_empty()).count();
        let with_links = all.iter().filter(|s| !s.links.is_empty()).count();
        assert!(
            errors > 0 && with_events > 0 && with_links > 0,
            "errors {errors}, events {with_events}, links {with_links}"
        );
        assert!(errors * 10 < all.len(), "errors are occasional: {errors} of {}", all.len());
        let services: HashSet<&str> = request
            .resource_spans
            .iter()
            .filter_map(|r| r.resource.as_ref())
            .flat_map(|r| &r.attributes)
            .filter(|kv| kv.key == "service.name")
            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        for expected in ["frontend", "cart", "checkout", "payment", "currency", "product-catalog"] {
            assert!(services.contains(expected), "{expected} missing from {services:?}");
        }
    }

    #[test]
    fn skein_accepts_every_generated_span() {
        let ids = IdScheme::new(1);
        let request = generate_request(&mut StdRng::seed_from_u64(5), &ids, 1000, NOW);
        let converted = spans_to_arrow(&request, &ConvertLimits::default(), 4).expect("converts");
        assert_eq!(converted.rejected, 0, "{:?}", converted.first_error);
        assert_eq!(converted.batch.num_rows(), 1000);
    }
}
