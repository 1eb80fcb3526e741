//! The Grafana Tempo HTTP API, served at the root of the query port so
//! Grafana's built-in Tempo datasource works against Skein unchanged.
//!
//! Each endpoint is a thin translation onto Skein's own machinery: trace
//! lookup by ID ([`trace`]), the two-phase trace search ([`search`], with
//! the TraceQL subset of [`traceql`] compiled to DataFusion filters by
//! [`filter`]), and tag discovery over the `spans` table ([`tags`]).
//! Responses follow Tempo's JSON shapes (`pkg/tempopb`); errors go through
//! [`QueryError`] like every other endpoint. Unlike Skein's own API,
//! unknown query parameters are ignored, as Tempo does, since Grafana sends
//! some Skein has no use for.

mod filter;
mod logfmt;
mod search;
mod tags;
mod trace;
mod traceql;

pub(crate) use traceql::parse_go_duration;

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::QueryError;
use crate::params::{Params, now_ns};
use crate::server::AppState;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The Tempo routes, merged into the query service's router.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/echo", get(echo))
        .route("/api/status/buildinfo", get(buildinfo))
        .route("/api/traces/{trace_id}", get(trace::get_trace_v1))
        .route("/api/v2/traces/{trace_id}", get(trace::get_trace_v2))
        .route("/api/search", get(search::search))
        .route("/api/search/tags", get(tags::tags_v1))
        .route("/api/v2/search/tags", get(tags::tags_v2))
        .route("/api/search/tag/{tag}/values", get(tags::tag_values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tags::tag_values_v2))
}

/// Grafana's "Test" button on the datasource page.
async fn echo() -> &'static str {
    "echo"
}

/// Tempo's build information shape; Skein's own version, since no Tempo
/// version describes what Skein supports.
async fn buildinfo() -> Response {
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("SKEIN_GIT_REVISION").unwrap_or("unknown"),
        "branch": option_env!("SKEIN_GIT_BRANCH").unwrap_or("unknown"),
        "buildDate": option_env!("SKEIN_BUILD_DATE").unwrap_or("unknown"),
        "buildUser": "",
        "goVersion": "",
    }))
    .into_response()
}

/// A Tempo time parameter: integer unix seconds, as nanoseconds.
fn unix_seconds(params: &Params, name: &str) -> Result<Option<i64>, QueryError> {
    let Some(text) = params.single(name)? else {
        return Ok(None);
    };
    text.parse::<u32>()
        .map(|seconds| Some(i64::from(seconds) * NANOS_PER_SECOND))
        .map_err(|_| QueryError::InvalidRequest(format!("{name} must be unix epoch seconds, got {text:?}")))
}

/// `start` and `end` (unix seconds) as an inclusive nanosecond range:
/// `end` covers its whole second. Either may be absent.
fn time_range(params: &Params) -> Result<(Option<i64>, Option<i64>), QueryError> {
    let start = unix_seconds(params, "start")?;
    let end = unix_seconds(params, "end")?.map(|end| end + NANOS_PER_SECOND - 1);
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(QueryError::InvalidRequest("start must not be after end".into()));
    }
    Ok((start, end))
}

/// Without a range, tag discovery looks at the last hour, as Tempo looks
/// at recent data only: an unbounded scan of every map key would not stay cheap.
const DEFAULT_TAG_WINDOW_NS: i64 = 3_600 * NANOS_PER_SECOND;

/// The range tag discovery scans: the given one, completed to one hour.
fn tag_time_range(params: &Params) -> Result<(i64, i64), QueryError> {
    Ok(match time_range(params)? {
        (Some(start), Some(end)) => (start, end),
        (Some(start), None) => (start, now_ns().max(start)),
        (None, Some(end)) => (end.saturating_sub(DEFAULT_TAG_WINDOW_NS), end),
        (None, None) => {
            let end = now_ns();
            (end - DEFAULT_TAG_WINDOW_NS, end)
        }
    })
}

/// The character a backslash escape stands for in logfmt and TraceQL
/// strings: `\n`, `\t`, `\r`, else the character itself.
fn unescape(escaped: char) -> char {
    match escaped {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        other => other,
    }
}
