//! Tag discovery: `/api/search/tags`, `/api/v2/search/tags`,
//! `/api/search/tag/{tag}/values`, `/api/v2/search/tag/{tag}/values`.
//!
//! Distinct map keys and values of `span_attributes` and
//! `resource_attributes` over a time range (default: the last hour), so
//! the scan stays bounded; each list is cut at `limit` (at most
//! [`MAX_TAGS`]) and a cut answer carries the `X-Skein-Truncated` header.

use std::collections::BTreeSet;

use axum::extract::Path;
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::functions_nested::expr_fn::map_keys;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, col, lit};
use serde_json::{Value, json};
use skein_model::schema::col as span_col;
use tracing::{debug, info};

use super::filter::{AttrColumns, RESOURCE_ATTRS, SPAN_ATTRS, attr_text, attr_type, filter_expr};
use super::{tag_time_range, traceql};
use crate::engine::SPANS_TABLE;
use crate::params::{Params, timestamp};
use crate::tenancy::TenantState;
use crate::{QueryEngine, QueryError};

/// The most tags per scope, or values per tag, one answer lists (also the
/// default: Grafana asks for 5000).
pub(crate) const MAX_TAGS: usize = 5000;
/// The intrinsics the TraceQL subset can filter on.
const INTRINSICS: [&str; 5] = ["duration", "kind", "name", "status", "statusMessage"];
/// The response header that says a list was cut at the limit.
const TRUNCATED_HEADER: &str = "x-skein-truncated";

/// Where tags or values come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Attributes(AttrColumns),
    /// A column of its own with the Tempo type name of its values.
    Column(&'static str, &'static str),
}

/// One tag-discovery request: time range, limit and an optional span filter.
struct Scan {
    start: i64,
    end: i64,
    limit: usize,
    filter: Option<Expr>,
}

impl Scan {
    fn from_params(params: &Params) -> Result<Self, QueryError> {
        let (start, end) = tag_time_range(params)?;
        let limit = match params.single("limit")? {
            None => MAX_TAGS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => n.min(MAX_TAGS),
                _ => return Err(QueryError::InvalidRequest(format!("limit must be a positive integer, got {text:?}"))),
            },
        };
        // As in Tempo, a `q` that does not parse (Grafana sends half-typed
        // queries) filters nothing rather than failing the autocomplete.
        let filter = match params.single("q")? {
            Some(q) => match traceql::parse(q) {
                Ok(filter) => filter_expr(&filter),
                Err(err) => {
                    debug!(error = %err, "tempo tag values: q ignored");
                    None
                }
            },
            None => None,
        };
        Ok(Self { start, end, limit, filter })
    }

    fn spans_filter(&self, extra: Option<Expr>) -> Expr {
        let range = col(span_col::START_TIME)
            .gt_eq(timestamp(self.start))
            .and(col(span_col::START_TIME).lt_eq(timestamp(self.end)));
        conjunction([range].into_iter().chain(self.filter.clone()).chain(extra)).unwrap_or(lit(true))
    }
}

/// A sorted list cut at `limit`, and whether it was cut.
#[derive(Debug, Default)]
struct Listing<T> {
    items: Vec<T>,
    truncated: bool,
}

impl<T: Ord> Listing<T> {
    fn from_set(set: BTreeSet<T>, limit: usize) -> Self {
        let truncated = set.len() > limit;
        Self { items: set.into_iter().take(limit).collect(), truncated }
    }
}

impl QueryEngine {
    /// The distinct attribute keys of `columns` in the scan's range (at most `limit + 1`).
    async fn tag_names(&self, scan: &Scan, columns: AttrColumns) -> Result<BTreeSet<String>, QueryError> {
        const KEY: &str = "key";
        self.limited(async {
            let frame = self
                .session()?
                .table(SPANS_TABLE)
                .await
                .and_then(|f| f.filter(scan.spans_filter(None)))
                .and_then(|f| f.select(vec![map_keys(col(columns.values)).alias(KEY)]))
                .and_then(|f| f.unnest_columns(&[KEY]))
                .and_then(|f| f.filter(col(KEY).is_not_null()))
                .and_then(|f| f.aggregate(vec![col(KEY)], vec![]))
                .and_then(|f| f.sort(vec![col(KEY).sort(true, false)]))
                .and_then(|f| f.limit(0, Some(scan.limit + 1)))
                .map_err(|e| self.datafusion_error(e))?;
            let rows = self.string_pairs(frame, scan.limit + 1, false).await?;
            Ok(rows.into_iter().map(|(key, _)| key).collect())
        })
        .await
    }

    /// The distinct (value, type code) pairs of `key` in `source` (at most `limit + 1`).
    async fn tag_values(
        &self,
        scan: &Scan,
        source: Source,
        key: &str,
    ) -> Result<BTreeSet<(String, String)>, QueryError> {
        const VALUE: &str = "value";
        const CODE: &str = "code";
        let (value, code) = match source {
            Source::Attributes(columns) => (attr_text(columns, key), attr_type(columns, key)),
            Source::Column(name, _) => (col(name), lit("s")),
        };
        self.limited(async {
            let frame = self
                .session()?
                .table(SPANS_TABLE)
                .await
                .and_then(|f| f.filter(scan.spans_filter(Some(value.clone().is_not_null()))))
                .and_then(|f| f.aggregate(vec![value.alias(VALUE), code.alias(CODE)], vec![]))
                .and_then(|f| f.sort(vec![col(VALUE).sort(true, false), col(CODE).sort(true, false)]))
                .and_then(|f| f.limit(0, Some(scan.limit + 1)))
                .map_err(|e| self.datafusion_error(e))?;
            Ok(self.string_pairs(frame, scan.limit + 1, true).await?.into_iter().collect())
        })
        .await
    }

    /// The first one or two columns of every row as strings.
    async fn string_pairs(
        &self,
        frame: datafusion::prelude::DataFrame,
        max_rows: usize,
        pairs: bool,
    ) -> Result<Vec<(String, String)>, QueryError> {
        let result = self.collect(frame, max_rows).await?;
        let mut rows = Vec::with_capacity(result.row_count);
        let text = |array: &dyn Array| cast(array, &DataType::Utf8).map_err(|e| QueryError::Execution(e.to_string()));
        for batch in &result.batches {
            let first = text(batch.column(0))?;
            let second = if pairs { Some(text(batch.column(1))?) } else { None };
            let first = first.as_string::<i32>();
            for row in 0..batch.num_rows() {
                let other = second.as_ref().map(|s| s.as_string::<i32>().value(row).to_owned()).unwrap_or_default();
                rows.push((first.value(row).to_owned(), other));
            }
        }
        Ok(rows)
    }
}

/// A scope of `/api/{v2/}search/tags`: `None` is every scope.
fn scopes(params: &Params) -> Result<Vec<&'static str>, QueryError> {
    match params.single("scope")? {
        None | Some("all") => Ok(vec!["resource", "span", "intrinsic"]),
        Some("resource") => Ok(vec!["resource"]),
        Some("span") => Ok(vec!["span"]),
        Some("intrinsic") => Ok(vec!["intrinsic"]),
        Some(other) => Err(QueryError::InvalidRequest(format!(
            "scope {other:?} is not supported; Skein serves resource, span and intrinsic tags"
        ))),
    }
}

async fn scope_tags(engine: &QueryEngine, scan: &Scan, scope: &str) -> Result<Listing<String>, QueryError> {
    let set = match scope {
        "resource" => engine.tag_names(scan, RESOURCE_ATTRS).await?,
        "span" => engine.tag_names(scan, SPAN_ATTRS).await?,
        _ => INTRINSICS.iter().map(|s| (*s).to_owned()).collect(),
    };
    Ok(Listing::from_set(set, scan.limit))
}

/// The JSON answer, with the truncation header when a list was cut.
fn answer(body: Value, truncated: bool, what: &str) -> Response {
    let mut response = axum::Json(body).into_response();
    if truncated {
        info!(what, limit = MAX_TAGS, "tempo tag listing truncated at its limit");
        response.headers_mut().insert(TRUNCATED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

pub(super) async fn tags_v1(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("tempo_tags", async {
            let params = Params::from_uri(&uri)?;
            let scan = Scan::from_params(&params)?;
            let mut names = BTreeSet::new();
            let mut truncated = false;
            let scopes = scopes(&params)?;
            // Without a scope, v1 lists resource and span tags only, as Tempo does.
            let all = scopes.len() > 1;
            for scope in scopes.into_iter().filter(|s| !all || *s != "intrinsic") {
                let listing = scope_tags(&state.engine, &scan, scope).await?;
                truncated |= listing.truncated;
                names.extend(listing.items);
            }
            let listing = Listing::from_set(names, scan.limit);
            Ok(answer(json!({ "tagNames": listing.items, "metrics": {} }), truncated || listing.truncated, "tags"))
        })
        .await
}

pub(super) async fn tags_v2(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("tempo_tags", async {
            let params = Params::from_uri(&uri)?;
            let scan = Scan::from_params(&params)?;
            let mut truncated = false;
            let mut scopes_json = Vec::new();
            for scope in scopes(&params)? {
                let listing = scope_tags(&state.engine, &scan, scope).await?;
                truncated |= listing.truncated;
                scopes_json.push(json!({ "name": scope, "tags": listing.items }));
            }
            Ok(answer(json!({ "scopes": scopes_json, "metrics": {} }), truncated, "tags"))
        })
        .await
}

/// Where a v2 tag (`resource.x`, `span.x`, `.x`, or an intrinsic) takes its values.
fn v2_sources(tag: &str) -> Result<(Vec<Source>, String), QueryError> {
    let intrinsic = |column, kind| Ok((vec![Source::Column(column, kind)], String::new()));
    match tag {
        "name" | "span:name" => return intrinsic(span_col::NAME, "string"),
        "status" | "span:status" => return intrinsic(span_col::STATUS_CODE, "keyword"),
        "kind" | "span:kind" => return intrinsic(span_col::KIND, "keyword"),
        "statusMessage" | "span:statusMessage" => return intrinsic(span_col::STATUS_MESSAGE, "string"),
        "duration" | "span:duration" => return Ok((Vec::new(), String::new())),
        _ => {}
    }
    let (sources, key) = if let Some(key) = tag.strip_prefix("resource.") {
        (vec![resource_source(key)], key)
    } else if let Some(key) = tag.strip_prefix("span.") {
        (vec![Source::Attributes(SPAN_ATTRS)], key)
    } else if let Some(key) = tag.strip_prefix('.') {
        (vec![Source::Attributes(SPAN_ATTRS), resource_source(key)], key)
    } else {
        return Err(QueryError::InvalidRequest(format!(
            "tag {tag:?} is not supported; use resource.<attr>, span.<attr>, .<attr>, name, status, kind or statusMessage"
        )));
    };
    if key.is_empty() {
        return Err(QueryError::InvalidRequest(format!("tag {tag:?} names no attribute")));
    }
    Ok((sources, key.to_owned()))
}

/// `service.name` of the resource is the `service_name` column.
fn resource_source(key: &str) -> Source {
    if key == "service.name" {
        Source::Column(span_col::SERVICE_NAME, "string")
    } else {
        Source::Attributes(RESOURCE_ATTRS)
    }
}

/// Tempo's type name of a stored type code; `None` for values TraceQL
/// cannot compare (bytes, arrays, key-value lists).
fn type_name(code: &str) -> Option<&'static str> {
    match code {
        "s" => Some("string"),
        "i" => Some("int"),
        "d" => Some("float"),
        "b" => Some("bool"),
        _ => None,
    }
}

/// Distinct (value, Tempo type) pairs of `key` over `sources`, sorted, cut at the limit.
async fn values(
    engine: &QueryEngine,
    scan: &Scan,
    sources: &[Source],
    key: &str,
) -> Result<Listing<(String, &'static str)>, QueryError> {
    let mut set = BTreeSet::new();
    for source in sources {
        for (value, code) in engine.tag_values(scan, *source, key).await? {
            let kind = match source {
                Source::Column(_, kind) => Some(*kind),
                Source::Attributes(_) => type_name(&code),
            };
            if let Some(kind) = kind {
                set.insert((value, kind));
            }
        }
    }
    Ok(Listing::from_set(set, scan.limit))
}

pub(super) async fn tag_values_v2(TenantState(state): TenantState, Path(tag): Path<String>, uri: Uri) -> Response {
    state
        .observe("tempo_tag_values", async {
            let params = Params::from_uri(&uri)?;
            let scan = Scan::from_params(&params)?;
            let (sources, key) = v2_sources(&tag)?;
            let listing = values(&state.engine, &scan, &sources, &key).await?;
            let values: Vec<Value> =
                listing.items.iter().map(|(value, kind)| json!({ "type": kind, "value": value })).collect();
            Ok(answer(json!({ "tagValues": values, "metrics": {} }), listing.truncated, "tag values"))
        })
        .await
}

pub(super) async fn tag_values_v1(TenantState(state): TenantState, Path(tag): Path<String>, uri: Uri) -> Response {
    state
        .observe("tempo_tag_values", async {
            let params = Params::from_uri(&uri)?;
            let scan = Scan::from_params(&params)?;
            // A v1 tag is an attribute name of either scope.
            let sources = [Source::Attributes(SPAN_ATTRS), resource_source(&tag)];
            let listing = values(&state.engine, &scan, &sources, &tag).await?;
            let distinct: BTreeSet<&str> = listing.items.iter().map(|(value, _)| value.as_str()).collect();
            Ok(answer(json!({ "tagValues": distinct, "metrics": {} }), listing.truncated, "tag values"))
        })
        .await
}

#[cfg(test)]
mod tests;
