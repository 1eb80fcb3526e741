//! The metrics generator: the shop's fleet ([`metrics_catalog`]) exporting
//! its metrics on a shared timeline, deterministic from a seed.
//!
//! Time advances in ticks; at every tick each instance exports all its
//! series at one timestamp (its collection), as an SDK's periodic reader
//! does. The stream of collections is cut into requests of exactly the
//! batch size, like a collector's batch processor would, and the pool holds
//! the first `pool × batch` points: ticks `0..K`. The pool is then replayed
//! with times shifted by `K` ticks per pass (see `Pool`), so the timeline
//! is periodic and must wrap coherently:
//! - Gauges and up-down counters follow a level that completes one wave
//!   per pass.
//! - Cumulative series (counters, histograms, summaries) of an instance
//!   restart once per pass, at the instance's planned restart tick: a new
//!   start time and values from zero. Before that tick a pass carries on
//!   from the previous pass's restart, so counters increase everywhere else
//!   and each point's values cover exactly its start..time window.
//! - The exponential histograms are delta: each point holds its tick.
//!
//! Per-tick values come from a hash of (seed, series key, tick), not from a
//! sequential generator, so the carry into tick 0 is computed by replaying
//! the ticks after the restart.
//!
//! Exemplar trace and span IDs are `IdScheme` epoch-0 IDs numbered per
//! request, so the pool gives every send its own.

use std::f64::consts::TAU;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exemplar, metric, number_data_point,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ids::{IdScheme, mix};
use super::metrics_catalog::{self, Behavior, Instance, Kind, Series};
use super::semconv::s;

const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";
/// Data points per second the timeline is paced for with `--rate max`.
const MAX_RATE_PACE: f64 = 1_000_000.0;
const MIN_TICK_NS: u64 = 100_000;
const MAX_TICK_NS: u64 = 60_000_000_000;
/// Share of histogram points that carry an exemplar.
const EXEMPLAR_SHARE: f64 = 0.3;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsPlan {
    pub seed: u64,
    /// Requests in the pool.
    pub requests: usize,
    /// Data points per request.
    pub points: usize,
    /// Unix nanoseconds where the timeline starts.
    pub now_ns: u64,
    /// The offered data points per second, None for `max`: the tick is
    /// chosen so that the timeline advances about as fast as the wall clock.
    pub rate: Option<f64>,
}

/// One pre-built request.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub request: ExportMetricsServiceRequest,
    pub points: usize,
    /// Exemplars in the request; exemplar `n` has trace and span local number `n`.
    pub exemplars: u32,
}

/// The pool's requests and the length of one pass over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub requests: Vec<Built>,
    /// Time from one pass's first tick to the next pass's first tick.
    pub pass_ns: u64,
    pub tick_ns: u64,
    /// Ticks per pass.
    pub ticks: u64,
}

/// Builds the pool's requests (see the module docs).
pub fn generate(plan: &MetricsPlan, ids: &IdScheme) -> Generated {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let fleet = metrics_catalog::fleet(&mut rng);
    let wanted = plan.requests.saturating_mul(plan.points);
    let (mut ticks, mut total) = (0u64, 0usize);
    while total < wanted {
        total += fleet.iter().map(|i| points_at(i, ticks)).sum::<usize>();
        ticks += 1;
    }
    let per_tick = total as f64 / ticks.max(1) as f64;
    let pace = plan.rate.unwrap_or(MAX_RATE_PACE);
    let tick_ns = ((per_tick / pace * 1e9) as u64).clamp(MIN_TICK_NS, MAX_TICK_NS);
    let clocks: Vec<InstanceClock> = fleet
        .iter()
        .map(|_| InstanceClock {
            offset_ns: rng.random_range(0..tick_ns / 2),
            restart: rng.random_range(0..ticks.max(1)),
        })
        .collect();
    let sim = Simulation { seed: plan.seed, ticks, tick_ns, start_ns: plan.now_ns, fleet: &fleet, clocks };
    let mut states = sim.initial_states();
    let mut builder = Builder::new(plan.points, plan.requests, ids);
    'ticks: for tick in 0..ticks {
        for (index, instance) in fleet.iter().enumerate() {
            sim.collect(index, instance, tick, &mut states[index], &mut builder);
            if builder.full() {
                break 'ticks;
            }
        }
    }
    Generated { requests: builder.finish(), pass_ns: ticks * tick_ns, tick_ns, ticks }
}

/// Points `instance` exports at `tick`.
fn points_at(instance: &Instance, tick: u64) -> usize {
    instance
        .groups
        .iter()
        .flat_map(|g| &g.metrics)
        .filter(|m| exported(m.instrument.kind, tick))
        .map(|m| m.series.len())
        .sum()
}

fn exported(kind: Kind, tick: u64) -> bool {
    match kind {
        Kind::Summary { every, .. } => tick.is_multiple_of(every),
        _ => true,
    }
}

/// When an instance exports and restarts.
#[derive(Debug, Clone, Copy)]
struct InstanceClock {
    /// After the tick's start, below half a tick, so times never cross ticks.
    offset_ns: u64,
    /// The tick of each pass at which the process restarts.
    restart: u64,
}

/// A cumulative series' totals since its start time.
#[derive(Debug, Clone, Default)]
struct Totals {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    buckets: Vec<u64>,
}

impl Totals {
    fn observe(&mut self, value: f64, bounds: &[f64]) {
        if self.count == 0 {
            (self.min, self.max) = (value, value);
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        if !bounds.is_empty() {
            self.buckets.resize(bounds.len() + 1, 0);
            self.buckets[bounds.partition_point(|b| *b < value)] += 1;
        }
    }
}

/// Per-tick randomness of one series: a splitmix64 stream seeded by (seed, key, tick).
struct Noise(u64);

impl Noise {
    fn new(seed: u64, key: u64, tick: u64, salt: u64) -> Self {
        Self(mix(seed ^ mix(key ^ mix(tick.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, (lo, hi): (u32, u32)) -> u32 {
        lo + ((self.unit() * f64::from(hi - lo + 1)) as u32).min(hi - lo)
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        (-2.0 * u.ln()).sqrt() * (TAU * self.unit()).cos()
    }
}

const SALT_OPS: u64 = 1;
const SALT_EXEMPLAR: u64 = 2;
const SALT_QUANTILES: u64 = 3;

struct Simulation<'f> {
    seed: u64,
    ticks: u64,
    tick_ns: u64,
    start_ns: u64,
    fleet: &'f [Instance],
    clocks: Vec<InstanceClock>,
}

/// The operations a traffic series saw during one tick: their values.
fn operations(seed: u64, series: &Series, tick: u64) -> Vec<f64> {
    let Behavior::Traffic { per_tick, median, sigma } = series.behavior else {
        return Vec::new();
    };
    let mut noise = Noise::new(seed, series.key, tick, SALT_OPS);
    let count = noise.between(per_tick);
    (0..count)
        .map(|_| {
            // One operation in a hundred is a slow outlier.
            let outlier = if noise.unit() < 0.01 { 8.0 } else { 1.0 };
            median * (sigma * noise.normal()).exp() * outlier
        })
        .collect()
}

impl Simulation<'_> {
    fn time(&self, instance: usize, tick: u64) -> u64 {
        self.start_ns + tick * self.tick_ns + self.clocks[instance].offset_ns
    }

    /// Start of the cumulative window holding `tick`: the last restart, in
    /// this pass or (before the restart tick) in the previous one.
    fn start(&self, instance: usize, tick: u64) -> u64 {
        let restart = self.clocks[instance].restart;
        let at = self.time(instance, restart) - self.tick_ns / 4;
        if tick >= restart { at } else { at.saturating_sub(self.ticks * self.tick_ns) }
    }

    /// A level (gauges, up-down counters, utilization): one wave per pass.
    fn level(&self, series: &Series, tick: u64) -> f64 {
        let (Behavior::Level { base, amplitude, noise } | Behavior::Integral { base, amplitude, noise }) =
            series.behavior
        else {
            return 0.0;
        };
        let phase = (series.key >> 11) as f64 / (1u64 << 53) as f64;
        let wave = (TAU * (tick as f64 / self.ticks.max(1) as f64 + phase)).sin();
        let jitter = Noise::new(self.seed, series.key, tick, SALT_OPS).unit() * 2.0 - 1.0;
        (base + amplitude * wave + noise * jitter).max(0.0)
    }

    /// Adds `tick`'s increments to a cumulative series' totals.
    fn accumulate(&self, kind: Kind, series: &Series, tick: u64, totals: &mut Totals) {
        match (kind, series.behavior) {
            (Kind::Counter { .. }, Behavior::Integral { .. }) => {
                totals.sum += self.level(series, tick) * self.tick_ns as f64 / 1e9;
            }
            (Kind::Histogram { bounds }, _) => {
                for value in operations(self.seed, series, tick) {
                    totals.observe(value, bounds);
                }
            }
            (Kind::Counter { .. } | Kind::Summary { .. }, _) => {
                for value in operations(self.seed, series, tick) {
                    totals.observe(value, &[]);
                }
            }
            _ => {}
        }
    }

    /// Every series' totals at the start of a pass: the previous pass's
    /// from its restart tick to its end.
    fn initial_states(&self) -> Vec<Vec<Totals>> {
        self.fleet
            .iter()
            .zip(&self.clocks)
            .map(|(instance, clock)| {
                let mut states = Vec::new();
                for metric in instance.groups.iter().flat_map(|g| &g.metrics) {
                    for series in &metric.series {
                        let mut totals = Totals::default();
                        for tick in clock.restart..self.ticks {
                            self.accumulate(metric.instrument.kind, series, tick, &mut totals);
                        }
                        states.push(totals);
                    }
                }
                states
            })
            .collect()
    }

    /// Instance `index` exports its series at `tick` into `builder`.
    fn collect(&self, index: usize, instance: &Instance, tick: u64, states: &mut [Totals], builder: &mut Builder) {
        let time = self.time(index, tick);
        let start = self.start(index, tick);
        if tick == self.clocks[index].restart {
            states.iter_mut().for_each(|t| *t = Totals::default());
        }
        let mut state = states.iter_mut();
        for (g, group) in instance.groups.iter().enumerate() {
            for (m, metric) in group.metrics.iter().enumerate() {
                let kind = metric.instrument.kind;
                for series in &metric.series {
                    let Some(totals) = state.next() else { return };
                    self.accumulate(kind, series, tick, totals);
                    if !exported(kind, tick) || builder.full() {
                        continue;
                    }
                    let point = self.point(kind, series, tick, time, start, totals);
                    builder.push(instance, (index, tick, g, m), point);
                }
            }
        }
    }

    fn point(&self, kind: Kind, series: &Series, tick: u64, time: u64, start: u64, totals: &Totals) -> Point {
        let attributes = series.attributes.clone();
        let number = |value| NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(value),
            ..Default::default()
        };
        match kind {
            Kind::Gauge { int } => {
                let level = self.level(series, tick);
                let value = if int {
                    number_data_point::Value::AsInt(level.round() as i64)
                } else {
                    number_data_point::Value::AsDouble(level)
                };
                Point::Number(NumberDataPoint { start_time_unix_nano: 0, ..number(value) })
            }
            Kind::UpDown => {
                Point::Number(number(number_data_point::Value::AsInt(self.level(series, tick).round() as i64)))
            }
            Kind::Counter { int: true } => Point::Number(number(number_data_point::Value::AsInt(totals.count as i64))),
            Kind::Counter { int: false } => Point::Number(number(number_data_point::Value::AsDouble(totals.sum))),
            Kind::Histogram { bounds } => {
                let mut buckets = totals.buckets.clone();
                buckets.resize(bounds.len() + 1, 0);
                Point::Histogram(HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: totals.count,
                    sum: Some(totals.sum),
                    bucket_counts: buckets,
                    explicit_bounds: bounds.to_vec(),
                    exemplars: self.exemplars(series, tick, time),
                    flags: 0,
                    min: (totals.count > 0).then_some(totals.min),
                    max: (totals.count > 0).then_some(totals.max),
                })
            }
            Kind::ExpHistogram { max_scale, max_size } => {
                let values = operations(self.seed, series, tick);
                let mut point = exponential(&values, max_scale, max_size);
                point.attributes = attributes;
                point.start_time_unix_nano = time - self.tick_ns;
                point.time_unix_nano = time;
                point.exemplars = self.exemplars(series, tick, time);
                Point::Exponential(point)
            }
            Kind::Summary { quantiles, every } => {
                let mut recent: Vec<f64> =
                    (tick.saturating_sub(every - 1)..=tick).flat_map(|t| operations(self.seed, series, t)).collect();
                if recent.is_empty() {
                    // The runtime keeps older pauses in its window.
                    let mut noise = Noise::new(self.seed, series.key, tick, SALT_QUANTILES);
                    recent = (0..3).map(|_| 0.0002 * (0.5 * noise.normal()).exp()).collect();
                }
                recent.sort_by(f64::total_cmp);
                let quantile_values = quantiles
                    .iter()
                    .map(|q| {
                        let at = ((recent.len() - 1) as f64 * q).round() as usize;
                        ValueAtQuantile { quantile: *q, value: recent[at] }
                    })
                    .collect();
                Point::Summary(SummaryDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: totals.count,
                    sum: totals.sum,
                    quantile_values,
                    flags: 0,
                })
            }
        }
    }

    /// Sometimes one exemplar: an operation of this tick with its (placeholder) trace and span.
    fn exemplars(&self, series: &Series, tick: u64, time: u64) -> Vec<Exemplar> {
        let mut noise = Noise::new(self.seed, series.key, tick, SALT_EXEMPLAR);
        let values = operations(self.seed, series, tick);
        if values.is_empty() || noise.unit() >= EXEMPLAR_SHARE {
            return Vec::new();
        }
        let value = values[(noise.unit() * values.len() as f64) as usize % values.len()];
        let ago = (noise.unit() * 0.9 * self.tick_ns as f64) as u64;
        let client = format!("10.{}.{}.{}", noise.between((0, 3)), noise.between((0, 255)), noise.between((1, 254)));
        Vec::from([Exemplar {
            filtered_attributes: vec![s("client.address", &client)],
            time_unix_nano: time - ago,
            span_id: Vec::new(),
            trace_id: Vec::new(),
            value: Some(exemplar::Value::AsDouble(value)),
        }])
    }
}

/// A base-2 exponential histogram of `values` (all positive) at the
/// largest scale ≤ `max_scale` where they fit in `max_size` buckets, as the
/// SDKs' default aggregation does. Bucket `i` holds (base^i, base^(i+1)].
fn exponential(values: &[f64], max_scale: i32, max_size: usize) -> ExponentialHistogramDataPoint {
    let at_max: Vec<i64> = values.iter().map(|v| (v.log2() * f64::from(max_scale).exp2()).ceil() as i64 - 1).collect();
    let (lo, hi) = at_max.iter().fold((i64::MAX, i64::MIN), |(lo, hi), i| (lo.min(*i), hi.max(*i)));
    let mut shift = 0;
    while !values.is_empty() && (hi >> shift) - (lo >> shift) + 1 > max_size as i64 {
        shift += 1;
    }
    let mut counts = Vec::new();
    let offset = if values.is_empty() { 0 } else { lo >> shift };
    if !values.is_empty() {
        counts = vec![0u64; ((hi >> shift) - offset + 1) as usize];
        for index in &at_max {
            counts[((index >> shift) - offset) as usize] += 1;
        }
    }
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    ExponentialHistogramDataPoint {
        count: values.len() as u64,
        sum: Some(values.iter().sum()),
        scale: max_scale - shift,
        zero_count: 0,
        positive: Some(Buckets { offset: offset as i32, bucket_counts: counts }),
        negative: Some(Buckets::default()),
        min: (!values.is_empty()).then_some(min),
        max: (!values.is_empty()).then_some(max),
        zero_threshold: 0.0,
        ..Default::default()
    }
}

enum Point {
    Number(NumberDataPoint),
    Histogram(HistogramDataPoint),
    Exponential(ExponentialHistogramDataPoint),
    Summary(SummaryDataPoint),
}

/// Cuts the stream of collections into requests of exactly `points` points,
/// grouping consecutive points of one collection, scope and metric.
struct Builder<'i> {
    ids: &'i IdScheme,
    points: usize,
    max_requests: usize,
    done: Vec<Built>,
    current: Built,
    /// (instance, tick, group, metric) of the current request's last point.
    last: Option<(usize, u64, usize, usize)>,
}

impl<'i> Builder<'i> {
    fn new(points: usize, max_requests: usize, ids: &'i IdScheme) -> Self {
        Self { ids, points, max_requests, done: Vec::with_capacity(max_requests), current: empty(), last: None }
    }

    fn full(&self) -> bool {
        self.done.len() >= self.max_requests
    }

    fn push(&mut self, instance: &Instance, at: (usize, u64, usize, usize), point: Point) {
        let (_, _, g, m) = at;
        let last = self.last.replace(at);
        let resources = &mut self.current.request.resource_metrics;
        let same_collection = last.is_some_and(|(i, t, _, _)| (i, t) == (at.0, at.1));
        if !same_collection {
            resources.push(ResourceMetrics {
                resource: Some(instance.resource.clone()),
                scope_metrics: Vec::new(),
                schema_url: SCHEMA_URL.into(),
            });
        }
        let Some(resource) = resources.last_mut() else { return };
        if !same_collection || last.is_some_and(|(.., lg, _)| lg != g) {
            resource.scope_metrics.push(ScopeMetrics {
                scope: Some(instance.groups[g].scope.clone()),
                metrics: Vec::new(),
                schema_url: SCHEMA_URL.into(),
            });
        }
        let Some(scope) = resource.scope_metrics.last_mut() else { return };
        if !same_collection || last.is_some_and(|(.., lg, lm)| (lg, lm) != (g, m)) {
            scope.metrics.push(new_metric(instance.groups[g].metrics[m].instrument));
        }
        let Some(metric) = scope.metrics.last_mut() else { return };
        let mut exemplars = |list: &mut Vec<Exemplar>| {
            for exemplar in list {
                self.current.exemplars += 1;
                exemplar.trace_id = self.ids.trace_id(0, self.current.exemplars).to_vec();
                exemplar.span_id = self.ids.span_id(0, self.current.exemplars).to_vec();
            }
        };
        match (&mut metric.data, point) {
            (Some(metric::Data::Gauge(g)), Point::Number(mut p)) => {
                exemplars(&mut p.exemplars);
                g.data_points.push(p);
            }
            (Some(metric::Data::Sum(sum)), Point::Number(mut p)) => {
                exemplars(&mut p.exemplars);
                sum.data_points.push(p);
            }
            (Some(metric::Data::Histogram(h)), Point::Histogram(mut p)) => {
                exemplars(&mut p.exemplars);
                h.data_points.push(p);
            }
            (Some(metric::Data::ExponentialHistogram(h)), Point::Exponential(mut p)) => {
                exemplars(&mut p.exemplars);
                h.data_points.push(p);
            }
            (Some(metric::Data::Summary(summary)), Point::Summary(p)) => summary.data_points.push(p),
            _ => unreachable!("points are made for their instrument's kind"),
        }
        self.current.points += 1;
        if self.current.points == self.points {
            self.done.push(std::mem::replace(&mut self.current, empty()));
            self.last = None;
        }
    }

    fn finish(self) -> Vec<Built> {
        self.done
    }
}

fn empty() -> Built {
    Built { request: ExportMetricsServiceRequest::default(), points: 0, exemplars: 0 }
}

fn new_metric(instrument: &metrics_catalog::Instrument) -> Metric {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match instrument.kind {
        Kind::Gauge { .. } => metric::Data::Gauge(Gauge::default()),
        Kind::Counter { .. } => {
            metric::Data::Sum(Sum { data_points: Vec::new(), aggregation_temporality: cumulative, is_monotonic: true })
        }
        Kind::UpDown => {
            metric::Data::Sum(Sum { data_points: Vec::new(), aggregation_temporality: cumulative, is_monotonic: false })
        }
        Kind::Histogram { .. } => {
            metric::Data::Histogram(Histogram { data_points: Vec::new(), aggregation_temporality: cumulative })
        }
        Kind::ExpHistogram { .. } => metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
        Kind::Summary { .. } => metric::Data::Summary(Summary::default()),
    };
    Metric {
        name: instrument.name.into(),
        description: instrument.description.into(),
        unit: instrument.unit.into(),
        metadata: Vec::new(),
        data: Some(data),
    }
}
