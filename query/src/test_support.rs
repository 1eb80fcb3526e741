//! Test fixtures: three traces and a small set of metrics over two
//! in-memory shards, built from OTLP requests with
//! `skein_model::spans_to_arrow` and `skein_model::metrics_to_arrow`
//! exactly as ingest does.
//!
//! Spans:
//! - T1 (oldest): `checkout` root `POST /checkout` (server, ok, 500 ms,
//!   `http.route=/checkout`, `http.status_code=200`) and its child
//!   `charge` in `payments` (client, error, 300 ms). Resources are `prod`.
//! - T2: `cart` root `GET /cart` (server, unset, 50 ms, `http.route=/cart`),
//!   resource `deployment.environment=staging`; the only trace of shard B.
//! - T3 (newest): no root received: `checkout` spans `process` (2 s, parent
//!   missing) and its child `process.step` (500 ms).
//!
//! Metrics (see [`metric_request`]): points every 10 s from `BASE` to
//! `BASE + 60 s`, from hosts `host-a`, `host-b` (service `api`, `prod`) and
//! `host-c` (service `worker`, `staging`), of every point type.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{SchemaRef, TimestampNanosecondType};
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::error::Result as DataFusionResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use skein_model::{ConvertLimits, metric_schema, metrics_to_arrow, span_schema, spans_to_arrow};
use tower::ServiceExt;

use crate::{QueryConfig, QueryEngine, Tables};

pub(crate) const T1: &str = "11111111111111111111111111111111";
pub(crate) const T2: &str = "22222222222222222222222222222222";
pub(crate) const T3: &str = "33333333333333333333333333333333";
/// 2023-11-14T22:13:20Z in unix nanoseconds.
pub(crate) const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn resource(service: &str, environment: &str) -> Resource {
    Resource {
        attributes: vec![text("service.name", service), text("deployment.environment", environment)],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, kind: i32, start: u64, duration_ms: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration_ms * MS,
        ..Default::default()
    }
}

fn resource_spans(resource: Resource, scope: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope { name: scope.into(), version: "1.0.0".into(), ..Default::default() }),
            spans,
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
        schema_url: String::new(),
    }
}

/// The OTLP requests whose spans the two shards hold.
pub(crate) fn shard_requests() -> (ExportTraceServiceRequest, ExportTraceServiceRequest) {
    let root = Span {
        attributes: vec![text("http.route", "/checkout"), kv("http.status_code", Value::IntValue(200))],
        status: Some(Status { code: 1, message: String::new() }),
        ..span(0x11, 1, None, "POST /checkout", 2, BASE, 500)
    };
    let charge = Span {
        attributes: vec![text("payment.provider", "stripe")],
        status: Some(Status { code: 2, message: "card declined".into() }),
        ..span(0x11, 2, Some(1), "charge", 3, BASE + 100 * MS, 300)
    };
    let cart = Span {
        attributes: vec![text("http.route", "/cart")],
        ..span(0x22, 3, None, "GET /cart", 2, BASE + 10_000 * MS, 50)
    };
    let process = span(0x33, 4, Some(9), "process", 1, BASE + 20_000 * MS, 2000);
    let step = Span {
        attributes: vec![kv("step.index", Value::IntValue(1))],
        ..span(0x33, 5, Some(4), "process.step", 1, BASE + 21_000 * MS, 500)
    };
    let shard_a = ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(resource("checkout", "prod"), "http", vec![root, process, step]),
            resource_spans(resource("payments", "prod"), "payments-sdk", vec![charge]),
        ],
    };
    let shard_b = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(resource("cart", "staging"), "http", vec![cart])],
    };
    (shard_a, shard_b)
}

/// The span batches of shard A and shard B.
pub(crate) fn sample_spans() -> (RecordBatch, RecordBatch) {
    let (a, b) = shard_requests();
    let convert = |request| spans_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts").batch;
    (convert(a), convert(b))
}

/// Two in-memory shards holding the spans of [`shard_requests`], each
/// trace on the shard its ID hashes to (trace lookups ask only that one).
pub(crate) fn mem_shards() -> Vec<Arc<dyn TableProvider>> {
    shard_batches()
        .into_iter()
        .map(|batches| {
            Arc::new(MemTable::try_new(span_schema(), vec![batches]).expect("mem table")) as Arc<dyn TableProvider>
        })
        .collect()
}

/// The span metrics of [`mem_shards`], derived per shard as storage does.
pub(crate) fn span_metric_shards() -> Vec<Arc<dyn TableProvider>> {
    shard_batches()
        .into_iter()
        .map(|batches| {
            let derived = skein_model::span_metrics::derive(&batches).expect("derives");
            Arc::new(MemTable::try_new(skein_model::span_metrics_schema(), vec![vec![derived]]).expect("mem table"))
                as Arc<dyn TableProvider>
        })
        .collect()
}

/// The trace parts of [`mem_shards`], one part per batch (as if each batch
/// were a file), so summaries merge parts as they do over storage.
pub(crate) fn trace_part_shards() -> Vec<Arc<dyn TableProvider>> {
    shard_batches()
        .into_iter()
        .map(|batches| {
            let parts = parts_per_batch(&batches);
            Arc::new(MemTable::try_new(skein_model::trace_parts_schema(), vec![parts]).expect("mem table"))
                as Arc<dyn TableProvider>
        })
        .collect()
}

/// The span links of [`mem_shards`], derived per shard as storage does.
pub(crate) fn span_link_shards() -> Vec<Arc<dyn TableProvider>> {
    shard_batches()
        .into_iter()
        .map(|batches| {
            let links = skein_model::span_links::derive(&batches).expect("derives");
            Arc::new(MemTable::try_new(skein_model::span_links_schema(), vec![vec![links]]).expect("mem table"))
                as Arc<dyn TableProvider>
        })
        .collect()
}

/// The trace parts of span batches: one part per trace and batch, as
/// storage has one per trace and file.
fn parts_per_batch(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    batches
        .iter()
        .map(|batch| skein_model::trace_parts::derive(std::slice::from_ref(batch)).expect("derives"))
        .collect()
}

fn shard_batches() -> Vec<Vec<RecordBatch>> {
    let (a, b) = shard_requests();
    let mut shards: Vec<Vec<RecordBatch>> = vec![Vec::new(), Vec::new()];
    for request in [a, b] {
        let converted = spans_to_arrow(&request, &ConvertLimits::default(), 2).expect("converts");
        for (shard, batch) in converted.split_by_shard(2).expect("splits") {
            shards[shard].push(batch);
        }
    }
    shards
}

/// Only the spans of one trace, with empty scopes and resources removed.
pub(crate) fn only_trace(requests: &[ExportTraceServiceRequest], trace_hex: &str) -> ExportTraceServiceRequest {
    let trace = const_hex::decode(trace_hex).expect("hex trace id");
    let mut resource_spans = Vec::new();
    for request in requests {
        for rs in &request.resource_spans {
            let mut rs = rs.clone();
            for ss in &mut rs.scope_spans {
                ss.spans.retain(|s| s.trace_id == trace);
            }
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
            if !rs.scope_spans.is_empty() {
                resource_spans.push(rs);
            }
        }
    }
    ExportTraceServiceRequest { resource_spans }
}

/// What one scan asked for: projection, filters, limit.
pub(crate) type SeenScan = (Option<Vec<usize>>, Vec<Expr>, Option<usize>);

/// A shard that records what the federation asked of it, around a real
/// in-memory table that does the actual scanning.
#[derive(Debug)]
pub(crate) struct RecordingShard {
    inner: MemTable,
    pushdown: TableProviderFilterPushDown,
    /// What `statistics` reports (storage reports bounds of some columns).
    statistics: Option<Statistics>,
    pub(crate) seen: Mutex<Vec<SeenScan>>,
}

#[async_trait]
impl TableProvider for RecordingShard {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DataFusionResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![self.pushdown.clone(); filters.len()])
    }
    fn statistics(&self) -> Option<Statistics> {
        self.statistics.clone()
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DataFusionResult<Arc<dyn ExecutionPlan>> {
        self.seen.lock().expect("lock").push((projection.cloned(), filters.to_vec(), limit));
        self.inner.scan(state, projection, &[], limit).await
    }
}

/// A recording shard of `batches` in `schema` that offers `pushdown` for every filter.
pub(crate) fn recording(
    schema: SchemaRef,
    pushdown: TableProviderFilterPushDown,
    batches: Vec<RecordBatch>,
) -> Arc<RecordingShard> {
    let inner = MemTable::try_new(schema, vec![batches]).expect("mem table");
    Arc::new(RecordingShard { inner, pushdown, statistics: None, seen: Mutex::new(Vec::new()) })
}

/// An engine over the test shards whose trace parts are recording shards,
/// reporting as statistics the newest span start of their shard (as
/// storage does) when `with_bounds`, and those shards.
pub(crate) fn recording_parts_engine(with_bounds: bool) -> (QueryEngine, Vec<Arc<RecordingShard>>) {
    let schema = skein_model::trace_parts_schema();
    let shards: Vec<Arc<RecordingShard>> = shard_batches()
        .iter()
        .map(|batches| {
            let parts = parts_per_batch(batches);
            let statistics = with_bounds.then(|| newest_start_statistics(&schema, batches));
            let inner = MemTable::try_new(Arc::clone(&schema), vec![parts]).expect("mem table");
            let pushdown = TableProviderFilterPushDown::Inexact;
            Arc::new(RecordingShard { inner, pushdown, statistics, seen: Mutex::new(Vec::new()) })
        })
        .collect();
    let trace_parts = shards.iter().map(|s| Arc::clone(s) as Arc<dyn TableProvider>).collect();
    let engine = QueryEngine::new(&test_config(), Tables { trace_parts, ..mem_tables() }).expect("engine");
    (engine, shards)
}

/// Statistics of the trace parts of span batches `spans`: the newest span
/// start bounds the span-start columns.
fn newest_start_statistics(parts_schema: &SchemaRef, spans: &[RecordBatch]) -> Statistics {
    let newest = spans
        .iter()
        .filter_map(|batch| {
            let starts = batch.column_by_name(skein_model::schema::col::START_TIME).expect("start column");
            datafusion::arrow::compute::max(starts.as_primitive::<TimestampNanosecondType>())
        })
        .max()
        .unwrap_or(i64::MIN);
    let mut statistics = Statistics::new_unknown(parts_schema);
    for (field, column) in parts_schema.fields().iter().zip(&mut statistics.column_statistics) {
        if field.name() == skein_model::trace_parts::col::LATEST_START_TIME {
            column.max_value = Precision::Inexact(ScalarValue::TimestampNanosecond(Some(newest), None));
        }
    }
    statistics
}

/// An engine over [`metric_batches`] in recording shards (every filter
/// offered as inexact), and the shards, to see what each scan was asked.
pub(crate) fn recording_metrics_engine() -> (QueryEngine, Vec<Arc<RecordingShard>>) {
    let shards: Vec<_> = metric_batches()
        .into_iter()
        .map(|batches| recording(metric_schema(), TableProviderFilterPushDown::Inexact, batches))
        .collect();
    let metrics = shards.iter().map(|s| Arc::clone(s) as Arc<dyn TableProvider>).collect();
    let engine = QueryEngine::new(&test_config(), Tables { metrics, ..Tables::default() }).expect("engine");
    (engine, shards)
}

pub(crate) fn test_config() -> QueryConfig {
    QueryConfig { listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)), ..QueryConfig::default() }
}

pub(crate) fn engine() -> QueryEngine {
    QueryEngine::new(&test_config(), mem_tables()).expect("engine")
}

/// The span and metric tables of the two test shards.
pub(crate) fn mem_tables() -> Tables {
    Tables {
        spans: mem_shards(),
        metrics: metric_shards(),
        span_metrics: span_metric_shards(),
        logs: crate::logs_api::test_fixtures::log_shards(),
        trace_parts: trace_part_shards(),
        span_links: span_link_shards(),
        span_start_bounds: None,
    }
}

/// Unix seconds of `BASE`, and nanoseconds `seconds` after it.
pub(crate) const BASE_SECONDS: i64 = 1_700_000_000;
const SECOND: u64 = 1_000_000_000;

fn at(seconds: i64) -> u64 {
    (BASE as i64 + seconds * SECOND as i64) as u64
}

fn host(service: &str, host: &str, environment: &str) -> Resource {
    Resource {
        attributes: vec![
            text("service.name", service),
            text("host.name", host),
            text("deployment.environment", environment),
        ],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    }
}

fn metric(name: &str, unit: &str, description: &str, data: Data) -> Metric {
    Metric { name: name.into(), unit: unit.into(), description: description.into(), data: Some(data), metadata: vec![] }
}

fn resource_metrics(resource: Resource, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(resource),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "skein-test".into(),
                version: "1.0.0".into(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// Number points every 10 s from `first` seconds; `start(t)` is the start time in seconds.
fn numbers(
    first: i64,
    values: &[Number],
    attributes: &[KeyValue],
    start: impl Fn(i64) -> Option<i64>,
) -> Vec<NumberDataPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let t = first + 10 * i as i64;
            NumberDataPoint {
                attributes: attributes.to_vec(),
                start_time_unix_nano: start(t).map_or(0, at),
                time_unix_nano: at(t),
                value: Some(*value),
                ..Default::default()
            }
        })
        .collect()
}

fn doubles(values: &[f64]) -> Vec<Number> {
    values.iter().map(|v| Number::AsDouble(*v)).collect()
}

fn ints(values: &[i64]) -> Vec<Number> {
    values.iter().map(|v| Number::AsInt(*v)).collect()
}

/// A cumulative `http.server.duration` point of `/cart` (bounds 10, 50, 100,
/// 500 ms); the one at 60 s carries an exemplar of the slowest request.
fn duration_point(t: i64, counts: [u64; 5], min: f64, max: f64) -> HistogramDataPoint {
    let exemplars = if t == 60 {
        vec![opentelemetry_proto::tonic::metrics::v1::Exemplar {
            time_unix_nano: at(t - 1),
            trace_id: vec![0x60; 16],
            span_id: vec![max as u8; 8],
            value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(max)),
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    HistogramDataPoint {
        exemplars,
        attributes: vec![text("http.route", "/cart")],
        start_time_unix_nano: at(-10),
        time_unix_nano: at(t),
        count: counts.iter().sum(),
        sum: Some(counts.iter().sum::<u64>() as f64 * 30.0),
        bucket_counts: counts.to_vec(),
        explicit_bounds: vec![10.0, 50.0, 100.0, 500.0],
        min: Some(min),
        max: Some(max),
        ..Default::default()
    }
}

const CUMULATIVE: i32 = 2;
const DELTA: i32 = 1;

/// The metrics of the test shards:
/// - `system.cpu.utilization` (gauge, `cpu.mode=user`): host-a 0.5 0.6 0.7
///   0.8 0.6 0.4 0.5 at 0..60 s; host-b 0.2 0.3 0.2 0.1 at 0..30 s.
/// - `http.server.requests` (cumulative monotonic int sum, by `http.route`):
///   host-a `/cart` 100 110 130 160, then restarted at 35 s: 5 25 45;
///   host-a `/checkout` 10 10 15 20 20 30 30; host-b `/cart` 1000 + 10 per point.
/// - `http.server.duration` (cumulative histogram, ms, bounds 10 50 100
///   500, `/cart`): at 0, 30, 60 s host-a 0 / [10,20,10,0,0] /
///   [20,40,30,10,0] (min 2, max 400), host-b 0 / [5,5,0,0,0] /
///   [10,10,0,0,0] (min 1, max 45); the 60 s points carry an exemplar of
///   their max.
/// - `queue.processed` (delta int sum, host-c): 5 10 0 20 at 10..40 s.
/// - `rpc.duration` (delta exponential histogram, host-c): at 30 s scale 1,
///   one value in each of (1,√2] (√2,2] (2,2√2] (2√2,4], one zero, one in
///   (-√2,-1]; at 60 s scale 0, 3 values in (2,4].
/// - `job.latency` (summary, host-c): at 30 s p50 4, p95 9, p99 12; at 60 s
///   p50 5, p95 11, p99 15.
pub(crate) fn metric_request() -> ExportMetricsServiceRequest {
    let cpu = |values: &[f64]| {
        let points = numbers(0, &doubles(values), &[text("cpu.mode", "user")], |_| None);
        metric("system.cpu.utilization", "1", "CPU utilization", Data::Gauge(Gauge { data_points: points }))
    };
    let requests = |points: Vec<NumberDataPoint>| {
        let sum = Sum { data_points: points, aggregation_temporality: CUMULATIVE, is_monotonic: true };
        metric("http.server.requests", "{request}", "HTTP requests", Data::Sum(sum))
    };
    let durations = |data_points| {
        let histogram = Histogram { data_points, aggregation_temporality: CUMULATIVE };
        metric("http.server.duration", "ms", "HTTP request duration", Data::Histogram(histogram))
    };
    let cart = [text("http.route", "/cart")];
    let checkout = [text("http.route", "/checkout")];
    let since_start = |_| Some(-100);
    let restarted = |t| Some(if t < 40 { -100 } else { 35 });
    let host_a = resource_metrics(
        host("api", "host-a", "prod"),
        vec![
            cpu(&[0.5, 0.6, 0.7, 0.8, 0.6, 0.4, 0.5]),
            requests(
                [
                    numbers(0, &ints(&[100, 110, 130, 160, 5, 25, 45]), &cart, restarted),
                    numbers(0, &ints(&[10, 10, 15, 20, 20, 30, 30]), &checkout, since_start),
                ]
                .concat(),
            ),
            durations(vec![
                duration_point(0, [0; 5], 2.0, 400.0),
                duration_point(30, [10, 20, 10, 0, 0], 2.0, 400.0),
                duration_point(60, [20, 40, 30, 10, 0], 2.0, 400.0),
            ]),
        ],
    );
    let host_b = resource_metrics(
        host("api", "host-b", "prod"),
        vec![
            cpu(&[0.2, 0.3, 0.2, 0.1]),
            requests(numbers(0, &ints(&[1000, 1010, 1020, 1030, 1040, 1050, 1060]), &cart, since_start)),
            durations(vec![
                duration_point(0, [0; 5], 1.0, 45.0),
                duration_point(30, [5, 5, 0, 0, 0], 1.0, 45.0),
                duration_point(60, [10, 10, 0, 0, 0], 1.0, 45.0),
            ]),
        ],
    );
    let queue = Sum {
        data_points: numbers(10, &ints(&[5, 10, 0, 20]), &[], |t| Some(t - 10)),
        aggregation_temporality: DELTA,
        is_monotonic: true,
    };
    let exponential = |t: i64, scale, zero_count, positive: Buckets, negative: Option<Buckets>| {
        let count = zero_count
            + positive.bucket_counts.iter().sum::<u64>()
            + negative.as_ref().map_or(0, |n| n.bucket_counts.iter().sum::<u64>());
        ExponentialHistogramDataPoint {
            start_time_unix_nano: at(t - 30),
            time_unix_nano: at(t),
            count,
            scale,
            zero_count,
            positive: Some(positive),
            negative,
            ..Default::default()
        }
    };
    let rpc = ExponentialHistogram {
        data_points: vec![
            exponential(
                30,
                1,
                1,
                Buckets { offset: 0, bucket_counts: vec![1, 1, 1, 1] },
                Some(Buckets { offset: 0, bucket_counts: vec![1] }),
            ),
            exponential(60, 0, 0, Buckets { offset: 1, bucket_counts: vec![3] }, None),
        ],
        aggregation_temporality: DELTA,
    };
    let summary = |t: i64, count: u64, quantiles: [f64; 3]| SummaryDataPoint {
        start_time_unix_nano: at(-10),
        time_unix_nano: at(t),
        count,
        sum: count as f64 * 5.0,
        quantile_values: [0.5, 0.95, 0.99]
            .iter()
            .zip(quantiles)
            .map(|(quantile, value)| ValueAtQuantile { quantile: *quantile, value })
            .collect(),
        ..Default::default()
    };
    let host_c = resource_metrics(
        host("worker", "host-c", "staging"),
        vec![
            metric("queue.processed", "{job}", "Jobs processed", Data::Sum(queue)),
            metric("rpc.duration", "s", "RPC duration", Data::ExponentialHistogram(rpc)),
            metric(
                "job.latency",
                "ms",
                "Job latency",
                Data::Summary(Summary {
                    data_points: vec![summary(30, 10, [4.0, 9.0, 12.0]), summary(60, 20, [5.0, 11.0, 15.0])],
                }),
            ),
        ],
    );
    ExportMetricsServiceRequest { resource_metrics: vec![host_a, host_b, host_c] }
}

/// The points of [`metric_request`] of each of two shards, every series
/// on the shard ingest would put it on.
pub(crate) fn metric_batches() -> Vec<Vec<RecordBatch>> {
    let converted = metrics_to_arrow(&metric_request(), &ConvertLimits::default(), 2).expect("converts");
    assert_eq!(converted.rejected, 0, "{:?}", converted.first_error);
    let mut shards: Vec<Vec<RecordBatch>> = vec![Vec::new(), Vec::new()];
    for (shard, batch) in converted.split_by_shard(2).expect("splits") {
        shards[shard].push(batch);
    }
    shards
}

/// Two in-memory shards holding [`metric_batches`].
pub(crate) fn metric_shards() -> Vec<Arc<dyn TableProvider>> {
    metric_batches()
        .into_iter()
        .map(|batches| {
            Arc::new(MemTable::try_new(metric_schema(), vec![batches]).expect("mem table")) as Arc<dyn TableProvider>
        })
        .collect()
}

/// Sends one request through the router.
pub(crate) async fn request(app: Router, method: &str, uri: &str, body: String) -> (StatusCode, HeaderMap, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, headers, body)
}

pub(crate) async fn get(uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    request(crate::server::test_router(test_config()), "GET", uri, String::new()).await
}

pub(crate) async fn post_sql(sql: &str, format: Option<&str>) -> (StatusCode, HeaderMap, Bytes) {
    let uri = match format {
        Some(format) => format!("/api/v1/sql?format={format}"),
        None => "/api/v1/sql".to_owned(),
    };
    let body = serde_json::json!({ "sql": sql }).to_string();
    request(crate::server::test_router(test_config()), "POST", &uri, body).await
}

/// Sends a GET with extra headers through the router.
pub(crate) async fn get_with_headers(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::builder().method("GET").uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = crate::server::test_router(test_config())
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, headers, body)
}

/// Compares `actual` with the golden file `tests/golden/<name>` of the
/// workspace, or rewrites the file when `UPDATE_GOLDEN=1`.
pub(crate) fn assert_golden(name: &str, actual: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden").join(name);
    let pretty = serde_json::to_string_pretty(actual).expect("serializable") + "\n";
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("golden dir");
        std::fs::write(&path, &pretty).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} missing ({e}); run with UPDATE_GOLDEN=1", path.display()));
    let expected: serde_json::Value = serde_json::from_str(&expected).expect("golden is JSON");
    assert_eq!(actual, &expected, "{} differs; actual:\n{pretty}", path.display());
}
