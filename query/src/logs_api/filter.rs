//! The filters of the log endpoints, parsed from the query string and
//! turned into one DataFusion predicate (values are literals, never
//! spliced into SQL), so the shards prune files and row groups with it.

use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, col, lit};
use skein_model::ids;
use skein_model::logs::{col as log_col, severity_floor};

use crate::QueryError;
use crate::params::{Params, attribute_filters, now_ns, parse_time, timestamp};

/// Without `start`, the endpoints look at the hour before `end`.
pub(crate) const DEFAULT_RANGE_NS: i64 = 3_600 * 1_000_000_000;

/// The parameters every log endpoint takes.
pub(crate) const FILTER_PARAMETERS: [&str; 9] =
    ["service", "severity", "q", "attr", "trace_id", "span_id", "start", "end", "tags"];

/// What log records to match; the time range is inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    pub service: Option<String>,
    /// The lowest severity number matched (1..24).
    pub min_severity: Option<i32>,
    /// Text the body contains, case-insensitive.
    pub text: Option<String>,
    /// Log or resource attribute equalities (`key`, `value`).
    pub attributes: Vec<(String, String)>,
    /// 32 lowercase hex digits.
    pub trace_id: Option<String>,
    /// 16 lowercase hex digits.
    pub span_id: Option<String>,
    pub start_ns: i64,
    pub end_ns: i64,
}

impl LogFilter {
    /// Everything in `start_ns..=end_ns`.
    pub fn between(start_ns: i64, end_ns: i64) -> Self {
        Self {
            service: None,
            min_severity: None,
            text: None,
            attributes: Vec::new(),
            trace_id: None,
            span_id: None,
            start_ns,
            end_ns,
        }
    }

    /// Reads the filter parameters (the caller checks for unknown ones).
    pub(crate) fn from_params(params: &Params) -> Result<Self, QueryError> {
        let end_ns = params.single("end")?.map(|v| parse_time("end", v)).transpose()?.unwrap_or_else(now_ns);
        let start_ns = match params.single("start")? {
            Some(v) => parse_time("start", v)?,
            None => end_ns.saturating_sub(DEFAULT_RANGE_NS),
        };
        if start_ns > end_ns {
            return Err(invalid("start must not be after end".into()));
        }
        let attributes = attribute_filters(params)?;
        let min_severity = params
            .single("severity")?
            .map(|text| {
                severity_floor(text).ok_or_else(|| {
                    invalid(format!(
                        "severity must be trace, debug, info, warn, error, fatal or a number from 1 to 24, got {text:?}"
                    ))
                })
            })
            .transpose()?;
        let trace_id = params
            .single("trace_id")?
            .map(|text| {
                ids::normalize_trace_id(text)
                    .ok_or_else(|| invalid(format!("trace_id must be up to 32 hex digits, not all zero, got {text:?}")))
            })
            .transpose()?;
        let span_id = params
            .single("span_id")?
            .map(|text| match text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                true => Ok(text.to_ascii_lowercase()),
                false => Err(invalid(format!("span_id must be 16 hex digits, got {text:?}"))),
            })
            .transpose()?;
        Ok(Self {
            service: params.single("service")?.map(str::to_owned),
            min_severity,
            text: params.single("q")?.map(str::to_owned),
            attributes,
            trace_id,
            span_id,
            start_ns,
            end_ns,
        })
    }

    /// Every condition but the time range.
    pub(crate) fn predicate_without_time(&self) -> Vec<Expr> {
        let mut filters = Vec::new();
        if let Some(service) = &self.service {
            filters.push(col(log_col::SERVICE_NAME).eq(lit(service.as_str())));
        }
        if let Some(min) = self.min_severity {
            filters.push(col(log_col::SEVERITY_NUMBER).gt_eq(lit(min)));
        }
        if let Some(text) = &self.text {
            filters.push(body_contains(text));
        }
        for (key, value) in &self.attributes {
            let on_record = get_field(col(log_col::LOG_ATTRIBUTES), key.as_str()).eq(lit(value.as_str()));
            let on_resource = get_field(col(log_col::RESOURCE_ATTRIBUTES), key.as_str()).eq(lit(value.as_str()));
            filters.push(on_record.or(on_resource));
        }
        if let Some(trace_id) = &self.trace_id {
            filters.push(col(log_col::TRACE_ID).eq(lit(trace_id.as_str())));
        }
        if let Some(span_id) = &self.span_id {
            filters.push(col(log_col::SPAN_ID).eq(lit(span_id.as_str())));
        }
        filters
    }

    /// Every condition, the time range `lower..=upper` included.
    pub(crate) fn predicate(&self, lower: i64, upper: i64) -> Expr {
        let mut filters = self.predicate_without_time();
        filters.push(col(log_col::TIMESTAMP).gt_eq(timestamp(lower)));
        filters.push(col(log_col::TIMESTAMP).lt_eq(timestamp(upper)));
        conjunction(filters).unwrap_or(lit(true))
    }
}

/// `body ILIKE '%text%'` with the pattern's own wildcards escaped, so the
/// text is matched literally.
fn body_contains(text: &str) -> Expr {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Expr::Like(Like::new(false, Box::new(col(log_col::BODY)), Box::new(lit(pattern)), Some('\\'), true))
}

pub(crate) fn invalid(message: String) -> QueryError {
    QueryError::InvalidRequest(message)
}
