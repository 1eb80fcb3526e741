//! OpenTelemetry → Prometheus names, after the OpenTelemetry specification
//! "Prometheus and OpenMetrics compatibility": invalid characters become
//! `_`, the unit becomes a suffix (`s` → `_seconds`, `1` on a gauge →
//! `_ratio`), monotonic sums get `_total`, and the resource's
//! `service.name` / `service.instance.id` become `job` / `instance`.

use std::collections::BTreeMap;

use crate::metrics_api::{Labels, MetricType, SERVICE_LABEL};

/// A Prometheus series' labels, `__name__` included.
pub(crate) type PromLabels = BTreeMap<String, String>;

pub(crate) const NAME_LABEL: &str = "__name__";
const NAMESPACE_ATTRIBUTE: &str = "service.namespace";
const INSTANCE_ATTRIBUTE: &str = "service.instance.id";

/// What Prometheus sees of one OpenTelemetry metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Family {
    /// The stored (OpenTelemetry) name.
    pub otel_name: String,
    pub kind: MetricType,
    /// True for monotonic sums (Prometheus counters).
    pub monotonic: bool,
    pub unit: String,
    pub description: String,
    /// The family name: the metric name with its unit (and `_total` for counters).
    pub name: String,
}

/// Which Prometheus series a family's points become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Component {
    /// A gauge's or sum's value.
    Value,
    /// `_bucket{le}` of a classic histogram.
    Bucket,
    /// `_sum` of a histogram or summary.
    Sum,
    /// `_count` of a histogram or summary.
    Count,
    /// `{quantile}` of a summary.
    Quantile,
    /// An exponential histogram as a native histogram.
    Native,
}

impl Family {
    pub(crate) fn new(otel_name: &str, kind: MetricType, monotonic: bool, unit: &str, description: &str) -> Self {
        let mut name = sanitize_metric_name(otel_name);
        let suffix = unit_suffix(unit, kind);
        if let Some(suffix) = suffix.filter(|s| !name.ends_with(&format!("_{s}"))) {
            name = format!("{name}_{suffix}");
        }
        if kind == MetricType::Sum && monotonic && !name.ends_with("_total") {
            name.push_str("_total");
        }
        Family {
            otel_name: otel_name.to_owned(),
            kind,
            monotonic,
            unit: unit.to_owned(),
            description: description.to_owned(),
            name,
        }
    }

    /// The series names this family exposes, with what each one holds.
    pub(crate) fn series_names(&self) -> Vec<(String, Component)> {
        let with = |suffix: &str, component| (format!("{}{suffix}", self.name), component);
        match self.kind {
            MetricType::Gauge | MetricType::Sum => vec![with("", Component::Value)],
            MetricType::Histogram => {
                vec![with("_bucket", Component::Bucket), with("_sum", Component::Sum), with("_count", Component::Count)]
            }
            MetricType::Summary => {
                vec![with("", Component::Quantile), with("_sum", Component::Sum), with("_count", Component::Count)]
            }
            MetricType::ExponentialHistogram => vec![with("", Component::Native)],
        }
    }

    /// The metadata type: `counter`, `gauge`, `histogram` or `summary`.
    pub(crate) fn prom_type(&self) -> &'static str {
        match self.kind {
            MetricType::Sum if self.monotonic => "counter",
            MetricType::Gauge | MetricType::Sum => "gauge",
            MetricType::Histogram | MetricType::ExponentialHistogram => "histogram",
            MetricType::Summary => "summary",
        }
    }

    /// The unit word of the name (`seconds`), or "" when the unit adds none.
    pub(crate) fn prom_unit(&self) -> String {
        unit_suffix(&self.unit, self.kind).unwrap_or_default()
    }
}

/// Metric names allow `[a-zA-Z_:][a-zA-Z0-9_:]*`: every other character
/// becomes `_`, runs of `_` collapse, and a leading digit gets a `_` prefix.
pub(crate) fn sanitize_metric_name(name: &str) -> String {
    sanitize(name, true)
}

/// Label names allow `[a-zA-Z_][a-zA-Z0-9_]*`, sanitized as metric names.
pub(crate) fn sanitize_label_name(name: &str) -> String {
    sanitize(name, false)
}

fn sanitize(name: &str, colons: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for c in name.chars() {
        let valid = c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
        let c = if valid { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The name suffix of a UCUM unit: annotations (`{request}`) are dropped,
/// known units are spelled out, `a/b` becomes `a_per_b`; `1` is `ratio` on
/// gauges only, as the specification says.
fn unit_suffix(unit: &str, kind: MetricType) -> Option<String> {
    let unit = strip_annotations(unit);
    if unit == "1" {
        return (kind == MetricType::Gauge).then(|| "ratio".to_owned());
    }
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main.trim(), Some(per.trim())),
        None => (unit.trim(), None),
    };
    let main = (!main.is_empty() && main != "1").then(|| unit_word(main, false));
    let per = per.filter(|p| !p.is_empty()).map(|p| unit_word(p, true));
    let suffix = match (main, per) {
        (Some(main), Some(per)) => format!("{main}_per_{per}"),
        (Some(main), None) => main,
        (None, Some(per)) => format!("per_{per}"),
        (None, None) => return None,
    };
    let suffix = sanitize_metric_name(&suffix).trim_matches('_').to_owned();
    (!suffix.is_empty()).then_some(suffix)
}

fn strip_annotations(unit: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// A UCUM unit's Prometheus word (the specification's table); unknown units
/// are kept as they are. `per` selects the singular used after `_per_`.
fn unit_word(unit: &str, per: bool) -> String {
    let word = match unit {
        "d" => ["days", "day"],
        "h" => ["hours", "hour"],
        "min" => ["minutes", "minute"],
        "s" => ["seconds", "second"],
        "ms" => ["milliseconds", "millisecond"],
        "us" => ["microseconds", "microsecond"],
        "ns" => ["nanoseconds", "nanosecond"],
        "By" => ["bytes", "byte"],
        "KiBy" => ["kibibytes", "kibibyte"],
        "MiBy" => ["mebibytes", "mebibyte"],
        "GiBy" => ["gibibytes", "gibibyte"],
        "TiBy" => ["tibibytes", "tibibyte"],
        "KBy" => ["kilobytes", "kilobyte"],
        "MBy" => ["megabytes", "megabyte"],
        "GBy" => ["gigabytes", "gigabyte"],
        "TBy" => ["terabytes", "terabyte"],
        "m" => ["meters", "meter"],
        "V" => ["volts", "volt"],
        "A" => ["amperes", "ampere"],
        "J" => ["joules", "joule"],
        "W" => ["watts", "watt"],
        "g" => ["grams", "gram"],
        "Cel" => ["celsius", "celsius"],
        "Hz" => ["hertz", "hertz"],
        "%" => ["percent", "percent"],
        "mo" => ["months", "month"],
        "y" => ["years", "year"],
        "wk" => ["weeks", "week"],
        other => return other.to_owned(),
    };
    word[usize::from(per)].to_owned()
}

/// A series' Prometheus labels from its Skein labels (resource attributes,
/// overridden by point attributes, plus `service.name`): `service.name`
/// (prefixed by `service.namespace/` when set) becomes `job`,
/// `service.instance.id` becomes `instance`, other names are sanitized;
/// values of names that sanitize alike are joined with `;` in name order.
pub(crate) fn prom_labels(name: &str, labels: &Labels) -> PromLabels {
    let mut out = PromLabels::new();
    for (key, value) in labels {
        let target = match key.as_str() {
            SERVICE_LABEL => {
                let job = match labels.get(NAMESPACE_ATTRIBUTE) {
                    Some(namespace) if !namespace.is_empty() => format!("{namespace}/{value}"),
                    _ => value.clone(),
                };
                out.insert("job".to_owned(), job);
                continue;
            }
            INSTANCE_ATTRIBUTE => "instance".to_owned(),
            NAMESPACE_ATTRIBUTE => continue,
            other => sanitize_label_name(other),
        };
        if value.is_empty() || target.starts_with("__") {
            continue;
        }
        out.entry(target).and_modify(|v: &mut String| *v = format!("{v};{value}")).or_insert_with(|| value.clone());
    }
    out.insert(NAME_LABEL.to_owned(), name.to_owned());
    out
}

/// A bound or quantile as a label value, as Prometheus writes them
/// (`0.5`, `10`, `+Inf`).
pub(crate) fn float_label(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(otel: &str, kind: MetricType, monotonic: bool, unit: &str) -> String {
        Family::new(otel, kind, monotonic, unit, "").name
    }

    #[test]
    fn metric_names_follow_the_specification() {
        use MetricType::*;
        assert_eq!(name("http.server.requests", Sum, true, "{request}"), "http_server_requests_total");
        assert_eq!(name("http.server.duration", Histogram, false, "ms"), "http_server_duration_milliseconds");
        assert_eq!(name("system.cpu.utilization", Gauge, false, "1"), "system_cpu_utilization_ratio");
        assert_eq!(name("queue.size", Sum, false, "1"), "queue_size", "ratio is for gauges only");
        assert_eq!(name("rpc.duration", ExponentialHistogram, false, "s"), "rpc_duration_seconds");
        assert_eq!(name("net.io", Sum, true, "By"), "net_io_bytes_total");
        assert_eq!(name("speed", Gauge, false, "m/s"), "speed_meters_per_second");
        assert_eq!(name("events", Gauge, false, "{event}/s"), "events_per_second");
        assert_eq!(name("latency_seconds", Gauge, false, "s"), "latency_seconds", "no doubled unit");
        assert_eq!(name("jobs_total", Sum, true, ""), "jobs_total", "no doubled _total");
        assert_eq!(name("2xx..responses", Gauge, false, "furlongs"), "_2xx_responses_furlongs");
        assert_eq!(name("ns:metric-name", Gauge, false, ""), "ns:metric_name");
    }

    #[test]
    fn families_expose_their_series() {
        let histogram = Family::new("d", MetricType::Histogram, false, "s", "");
        let names: Vec<String> = histogram.series_names().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["d_seconds_bucket", "d_seconds_sum", "d_seconds_count"]);
        assert_eq!(histogram.prom_type(), "histogram");
        assert_eq!(histogram.prom_unit(), "seconds");
        assert_eq!(Family::new("c", MetricType::Sum, true, "", "").prom_type(), "counter");
        assert_eq!(Family::new("c", MetricType::Sum, false, "", "").prom_type(), "gauge");
    }

    #[test]
    fn labels_map_service_and_instance_and_sanitize() {
        let labels: Labels = [
            ("service.name", "api"),
            ("service.namespace", "shop"),
            ("service.instance.id", "pod-1"),
            ("http.route", "/cart"),
            ("http_route", "/x"),
            ("empty", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let out = prom_labels("m", &labels);
        let expected: PromLabels =
            [("__name__", "m"), ("job", "shop/api"), ("instance", "pod-1"), ("http_route", "/cart;/x")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn float_labels_are_written_like_prometheus() {
        assert_eq!(float_label(10.0), "10");
        assert_eq!(float_label(0.25), "0.25");
        assert_eq!(float_label(f64::INFINITY), "+Inf");
        assert_eq!(float_label(1e6), "1000000");
    }
}
