//! Trace search (`GET /api/v1/search`).
//!
//! Two phases, both planned with DataFusion expressions (values are
//! literals, never spliced into SQL):
//! 1. candidates: the `limit` traces whose latest matching span is newest,
//!    looked for in time windows going back from the newest span at or
//!    before the end (1 s, then four times longer each step) until enough
//!    are found. Where that newest span is comes from the shards' table
//!    statistics (each reports its newest span start) without a query
//!    when all data is older than the end, the usual case. Filters (and each
//!    window's time bounds) reach the shards, so storage prunes files and
//!    row groups: a common search reads the newest data only. After the
//!    first window that finds nothing, one probe (any match further back?
//!    one row is enough) ends a search that has nothing more to find. A
//!    search without span filters (the newest traces) ranks by the trace
//!    parts' latest span starts instead of reading spans.
//! 2. summaries: the `traces` view's rows of exactly those traces
//!    (`trace_id IN (...)`, which reaches each file's parts sidecar through
//!    its trace-ID bloom filters): root span, duration, counts, services,
//!    completeness.
//!
//! A trace matches when any one of its spans matches all filters. Results
//! are ranked by (latest matching span start, newest first; trace ID), a
//! total order, so paging is exact: a full page carries a cursor (the rank
//! of its last trace), and the next page holds the traces ranked after it.
//! Such a page searches spans up to the cursor's time, then checks each
//! candidate's latest match over the whole range (a lookup by trace ID) and
//! drops those ranked before the cursor: earlier pages had them.

use std::collections::HashMap;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use serde::Serialize;
use skein_model::schema::col as span_col;
use skein_model::trace_parts::col as part_col;

use crate::engine::SPANS_TABLE;
use crate::params::{Params, attribute_filters, now_ns, parse_duration, parse_time, timestamp};
use crate::server::AppState;
use crate::tenancy::TenantState;
use crate::views::{COMPLETE, DURATION_NS, TRACES_VIEW};
use crate::{QueryConfig, QueryEngine, QueryError};

/// The first search window, and how much longer each next one is.
const FIRST_WINDOW_NS: i64 = 1_000_000_000;
const WINDOW_GROWTH: i64 = 4;
/// Without a start, windows stop growing here and the last one is open.
const LAST_WINDOW_NS: i64 = 7 * 24 * 3_600 * 1_000_000_000;

const PARAMETERS: [&str; 11] =
    ["service", "name", "attr", "tags", "min_duration", "max_duration", "status", "start", "end", "limit", "cursor"];

/// What to search for; every field is optional except `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub service: Option<String>,
    pub span_name: Option<String>,
    /// Span or resource attribute equalities (`key`, `value`).
    pub attributes: Vec<(String, String)>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// `error`, `ok` or `unset`.
    pub status: Option<String>,
    /// Spans starting at or after this time (unix nanoseconds).
    pub start_ns: Option<i64>,
    /// Spans starting at or before this time (unix nanoseconds).
    pub end_ns: Option<i64>,
    pub limit: usize,
    /// Continue after this rank (the previous page's `nextCursor`).
    pub after: Option<Rank>,
    /// One more condition every matching span must meet (the Tempo API's
    /// TraceQL filters compile to one).
    pub filter: Option<Expr>,
}

/// Where a trace ranks in search results: by its latest matching span's
/// start (newest first), then by trace ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rank {
    pub latest_match_ns: i64,
    pub trace_id: String,
}

impl Rank {
    /// Sorts in result order.
    fn key(&self) -> (std::cmp::Reverse<i64>, &str) {
        (std::cmp::Reverse(self.latest_match_ns), &self.trace_id)
    }

    /// Whether `self` comes before `other` in results.
    fn is_before(&self, other: &Rank) -> bool {
        self.key() < other.key()
    }

    /// The opaque cursor string: `<nanoseconds>_<trace id>`.
    pub fn cursor(&self) -> String {
        format!("{}_{}", self.latest_match_ns, self.trace_id)
    }

    fn parse_cursor(text: &str) -> Result<Self, QueryError> {
        let bad = || invalid(format!("cursor must be a nextCursor from an earlier search, got {text:?}"));
        let (ns, trace_id) = text.split_once('_').ok_or_else(bad)?;
        let latest_match_ns = ns.parse().map_err(|_| bad())?;
        if trace_id.is_empty() || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { latest_match_ns, trace_id: trace_id.to_ascii_lowercase() })
    }
}

impl SearchQuery {
    /// An unfiltered search for the newest `limit` traces.
    pub fn newest(limit: usize) -> Self {
        Self {
            service: None,
            span_name: None,
            attributes: Vec::new(),
            min_duration_ns: None,
            max_duration_ns: None,
            status: None,
            start_ns: None,
            end_ns: None,
            limit,
            after: None,
            filter: None,
        }
    }

    pub(crate) fn from_params(params: &Params, config: &QueryConfig) -> Result<Self, QueryError> {
        params.only(&PARAMETERS)?;
        let attributes = attribute_filters(params)?;
        let status = match params.single("status")? {
            None => None,
            Some(s) => match s.to_ascii_lowercase().as_str() {
                status @ ("error" | "ok" | "unset") => Some(status.to_owned()),
                _ => return Err(invalid(format!("status must be error, ok or unset, got {s:?}"))),
            },
        };
        let limit = match params.single("limit")? {
            None => config.search_default_limit,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=config.search_max_limit).contains(&n) => n,
                _ => {
                    return Err(invalid(format!(
                        "limit must be an integer from 1 to {} (query.search_max_limit), got {text:?}",
                        config.search_max_limit
                    )));
                }
            },
        };
        let query = Self {
            service: params.single("service")?.map(str::to_owned),
            span_name: params.single("name")?.map(str::to_owned),
            attributes,
            min_duration_ns: params.single("min_duration")?.map(|v| parse_duration("min_duration", v)).transpose()?,
            max_duration_ns: params.single("max_duration")?.map(|v| parse_duration("max_duration", v)).transpose()?,
            status,
            start_ns: params.single("start")?.map(|v| parse_time("start", v)).transpose()?,
            end_ns: params.single("end")?.map(|v| parse_time("end", v)).transpose()?,
            limit,
            after: params.single("cursor")?.map(Rank::parse_cursor).transpose()?,
            filter: None,
        };
        if let (Some(start), Some(end)) = (query.start_ns, query.end_ns)
            && start > end
        {
            return Err(invalid("start must not be after end".into()));
        }
        if let (Some(min), Some(max)) = (query.min_duration_ns, query.max_duration_ns)
            && min > max
        {
            return Err(invalid("min_duration must not be greater than max_duration".into()));
        }
        Ok(query)
    }

    /// The span-level filter: all conditions must hold on one span.
    pub(crate) fn span_filter(&self) -> Option<Expr> {
        let mut filters = Vec::new();
        if let Some(service) = &self.service {
            filters.push(col(span_col::SERVICE_NAME).eq(lit(service.as_str())));
        }
        if let Some(name) = &self.span_name {
            filters.push(col(span_col::NAME).eq(lit(name.as_str())));
        }
        for (key, value) in &self.attributes {
            let on_span = get_field(col(span_col::SPAN_ATTRIBUTES), key.as_str()).eq(lit(value.as_str()));
            let on_resource = get_field(col(span_col::RESOURCE_ATTRIBUTES), key.as_str()).eq(lit(value.as_str()));
            filters.push(on_span.or(on_resource));
        }
        if let Some(min) = self.min_duration_ns {
            filters.push(col(span_col::DURATION_NS).gt_eq(lit(min)));
        }
        if let Some(max) = self.max_duration_ns {
            filters.push(col(span_col::DURATION_NS).lt_eq(lit(max)));
        }
        if let Some(status) = &self.status {
            filters.push(col(span_col::STATUS_CODE).eq(lit(status.as_str())));
        }
        filters.extend(self.time_bounds(span_col::START_TIME));
        filters.extend(self.filter.clone());
        conjunction(filters)
    }

    /// The query's `start` and `end` as bounds on the timestamp `column`.
    fn time_bounds(&self, column: &str) -> Vec<Expr> {
        let mut bounds = Vec::new();
        if let Some(start) = self.start_ns {
            bounds.push(col(column).gt_eq(timestamp(start)));
        }
        if let Some(end) = self.end_ns {
            bounds.push(col(column).lt_eq(timestamp(end)));
        }
        bounds
    }

    /// Whether every span matches, apart from the time range.
    fn matches_any_span(&self) -> bool {
        self.service.is_none()
            && self.span_name.is_none()
            && self.attributes.is_empty()
            && self.min_duration_ns.is_none()
            && self.max_duration_ns.is_none()
            && self.status.is_none()
            && self.filter.is_none()
    }
}

/// Where phase 1 ranks traces from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RankSource {
    /// The spans matching the query: a trace ranks by its latest one.
    Spans,
    /// The trace parts, when every span in the time range matches: a
    /// trace's latest span start is the latest of its parts'. Parts are one
    /// row per trace and file, so this reads far less than the spans.
    Parts,
}

impl RankSource {
    /// The column a trace's rank is the maximum of.
    fn time_column(self) -> &'static str {
        match self {
            RankSource::Spans => span_col::START_TIME,
            RankSource::Parts => part_col::LATEST_START_TIME,
        }
    }
}

fn invalid(message: String) -> QueryError {
    QueryError::InvalidRequest(message)
}

/// One trace in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub trace_id: String,
    pub root_service_name: String,
    pub root_span_name: String,
    /// A string in JSON: nanoseconds exceed 2^53.
    #[serde(serialize_with = "as_string")]
    pub start_time_unix_nano: i64,
    pub duration_nanos: i64,
    pub span_count: u64,
    pub error_count: u64,
    /// Distinct services of the trace, sorted.
    pub services: Vec<String>,
    /// False when no span lacks a parent (the root was not received); the
    /// earliest span stands in for it.
    pub has_root: bool,
    /// A root, and every span's parent received (see `traces.complete` in
    /// docs/api.md for traces split across files).
    pub complete: bool,
}

fn as_string<S: serde::Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// In rank order: latest matching span first.
    pub traces: Vec<TraceSummary>,
    /// The rank of the last trace when the page is full: there may be more.
    pub next: Option<Rank>,
}

impl QueryEngine {
    /// Traces matching `query` in rank order (see the module doc), at most
    /// `limit`, after `query.after` when given.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let ranked = self.candidate_traces(&ctx, query).await?;
            if ranked.is_empty() {
                return Ok(SearchPage { traces: Vec::new(), next: None });
            }
            let ids: Vec<String> = ranked.iter().map(|r| r.trace_id.clone()).collect();
            let mut by_id: HashMap<String, TraceSummary> =
                self.summaries(&ctx, &ids).await?.into_iter().map(|s| (s.trace_id.clone(), s)).collect();
            let traces: Vec<TraceSummary> = ranked.iter().filter_map(|r| by_id.remove(&r.trace_id)).collect();
            let next = (ranked.len() >= query.limit).then(|| ranked[ranked.len() - 1].clone());
            Ok(SearchPage { traces, next })
        })
        .await
    }

    /// Phase 1: the first `limit` traces in rank order (after `query.after`).
    /// Searched in time windows going back from the end (1 s, then four
    /// times longer each step) until `limit` traces are found or the range
    /// is covered: a trace first found in a window has its latest match
    /// there, so the answer is exact, and a common search reads the newest
    /// files only (files and row groups are pruned by time) instead of the
    /// whole range.
    async fn candidate_traces(&self, ctx: &SessionContext, query: &SearchQuery) -> Result<Vec<Rank>, QueryError> {
        // One bound for both decisions below: each read snapshots every shard.
        let newest_bound = self.newest_span_start_bound().await;
        let source = self.rank_source(ctx, query, newest_bound).await?;
        let mut anchor = query.end_ns.unwrap_or_else(now_ns);
        match &query.after {
            Some(after) => anchor = anchor.min(after.latest_match_ns),
            // Nothing starts after the newest span: windows start there, so
            // a store whose data is minutes or days old is searched from
            // its newest second, not through empty windows up to a window
            // that holds everything. (The first window is open above.)
            None => {
                if let Some(newest) = self.newest_start(ctx, anchor, newest_bound).await? {
                    anchor = anchor.min(newest);
                }
            }
        }
        // Whether the range below the windows so far was checked for a match.
        let mut probed = false;
        let mut found: HashMap<String, i64> = HashMap::new();
        // Traces seen below the cursor whose latest match is above it.
        let mut earlier_pages: std::collections::HashSet<String> = std::collections::HashSet::new();
        // After a cursor, inclusive of its time: traces tied with it may follow it.
        let mut upper: Option<i64> = query.after.as_ref().map(|_| anchor.saturating_add(1));
        let mut width = FIRST_WINDOW_NS;
        loop {
            let lower = anchor.saturating_sub(width);
            // The last window reaches back to the query's start, or forever.
            let last = match query.start_ns {
                Some(start) => lower <= start,
                None => width >= LAST_WINDOW_NS,
            };
            let lower = (!last).then_some(lower);
            // After a cursor, a window may hold traces of earlier pages:
            // ask again for more until it has enough later ones or is spent.
            let mut window_matched = false;
            loop {
                let wanted = query.limit + earlier_pages.len();
                let mut window = HashMap::new();
                self.latest_matches(ctx, query, source, (lower, upper), wanted, &mut window).await?;
                window_matched |= !window.is_empty();
                let spent = window.len() < wanted;
                for (id, latest) in window {
                    if !earlier_pages.contains(&id) {
                        let entry = found.entry(id).or_insert(latest);
                        *entry = (*entry).max(latest);
                    }
                }
                let dropped = match &query.after {
                    Some(after) => {
                        self.drop_earlier_pages(ctx, query, source, after, &mut found, &mut earlier_pages).await?
                    }
                    None => 0,
                };
                if dropped == 0 || spent || found.len() >= query.limit {
                    break;
                }
            }
            if found.len() >= query.limit || last {
                break;
            }
            // An empty window: if nothing at all matches further back, the
            // longer windows need not run (a search matching nothing costs
            // two queries, not one per window).
            if !window_matched && !probed {
                probed = true;
                if !self.matches_before(ctx, query, source, lower).await? {
                    break;
                }
            }
            upper = lower;
            width = width.saturating_mul(WINDOW_GROWTH);
        }
        let mut ranked: Vec<Rank> =
            found.into_iter().map(|(trace_id, latest_match_ns)| Rank { latest_match_ns, trace_id }).collect();
        ranked.sort_by(|a, b| a.key().cmp(&b.key()));
        ranked.truncate(query.limit);
        Ok(ranked)
    }

    /// The start of the newest span among traces with a span starting at or
    /// before `at` (the trace parts' latest starts; one column of one row
    /// per trace and file). A top-1, not a maximum: storage reads files
    /// newest first, and the top-k's dynamic filter then skips the row
    /// groups of older files. `newest_bound` is
    /// [`QueryEngine::newest_span_start_bound`].
    async fn newest_start(
        &self,
        ctx: &SessionContext,
        at: i64,
        newest_bound: Option<i64>,
    ) -> Result<Option<i64>, QueryError> {
        // Usually all data is older than `at`: the newest span is then what
        // the shards report, with no query.
        if let Some(newest) = newest_bound
            && newest <= at
        {
            return Ok((newest != i64::MIN).then_some(newest));
        }
        let frame = ctx
            .read_table(self.trace_parts())
            .and_then(|f| f.filter(col(part_col::START_TIME).lt_eq(timestamp(at))))
            .and_then(|f| f.select_columns(&[part_col::LATEST_START_TIME]))
            .and_then(|f| f.sort(vec![col(part_col::LATEST_START_TIME).sort(false, false)]))
            .and_then(|f| f.limit(0, Some(1)))
            .map_err(|e| self.datafusion_error(e))?;
        first_timestamp(&self.collect(frame, 1).await?)
    }

    /// Whether anything matches `query` before `before` (a span, or a trace
    /// part when parts rank): one row is enough, so the scan stops at the
    /// first match, and when nothing matches, bloom filters and statistics
    /// rule out most files unread.
    async fn matches_before(
        &self,
        ctx: &SessionContext,
        query: &SearchQuery,
        source: RankSource,
        before: Option<i64>,
    ) -> Result<bool, QueryError> {
        let before = before.map(|before| col(source.time_column()).lt(timestamp(before)));
        let frame = self
            .matching_rows(ctx, query, source, before)
            .await?
            .select_columns(&[span_col::TRACE_ID])
            .and_then(|f| f.limit(0, Some(1)))
            .map_err(|e| self.datafusion_error(e))?;
        Ok(self.collect(frame, 1).await?.row_count > 0)
    }

    /// The rows of `source` that match `query` and `extra`: spans, or trace
    /// parts within the query's time range when parts rank.
    async fn matching_rows(
        &self,
        ctx: &SessionContext,
        query: &SearchQuery,
        source: RankSource,
        extra: Option<Expr>,
    ) -> Result<DataFrame, QueryError> {
        let df_error = |e| self.datafusion_error(e);
        let (frame, mut filters) = match source {
            RankSource::Spans => (ctx.table(SPANS_TABLE).await, query.span_filter().into_iter().collect()),
            RankSource::Parts => (ctx.read_table(self.trace_parts()), query.time_bounds(part_col::LATEST_START_TIME)),
        };
        let mut frame = frame.map_err(df_error)?;
        filters.extend(extra);
        if let Some(filter) = conjunction(filters) {
            frame = frame.filter(filter).map_err(df_error)?;
        }
        Ok(frame)
    }

    /// Parts rank a search that every span in its range matches, unless a
    /// part has spans on both sides of `end` (its latest start is after the
    /// range, the latest in the range is unknown): then spans do.
    /// `newest_bound` is [`QueryEngine::newest_span_start_bound`].
    async fn rank_source(
        &self,
        ctx: &SessionContext,
        query: &SearchQuery,
        newest_bound: Option<i64>,
    ) -> Result<RankSource, QueryError> {
        if !query.matches_any_span() {
            return Ok(RankSource::Spans);
        }
        let Some(end) = query.end_ns else {
            return Ok(RankSource::Parts);
        };
        // No span starts after `end` (the usual case, `end` being now):
        // nothing can straddle it.
        if newest_bound.is_some_and(|newest| newest <= end) {
            return Ok(RankSource::Parts);
        }
        let straddling =
            col(part_col::START_TIME).lt_eq(timestamp(end)).and(col(part_col::LATEST_START_TIME).gt(timestamp(end)));
        let frame = ctx
            .read_table(self.trace_parts())
            .and_then(|f| f.filter(straddling))
            .and_then(|f| f.select_columns(&[part_col::TRACE_ID]))
            .and_then(|f| f.limit(0, Some(1)))
            .map_err(|e| self.datafusion_error(e))?;
        let straddlers = self.collect(frame, 1).await?;
        Ok(if straddlers.row_count == 0 { RankSource::Parts } else { RankSource::Spans })
    }

    /// Removes from `found` the traces that do not rank after `after`:
    /// their latest match over the whole range (found by a lookup of just
    /// those traces) ranks before it, or they are tied with it. They are
    /// remembered in `earlier_pages` so later windows skip them. Returns
    /// how many were removed.
    async fn drop_earlier_pages(
        &self,
        ctx: &SessionContext,
        query: &SearchQuery,
        source: RankSource,
        after: &Rank,
        found: &mut HashMap<String, i64>,
        earlier_pages: &mut std::collections::HashSet<String>,
    ) -> Result<usize, QueryError> {
        let unchecked: Vec<Expr> = found.keys().map(|id| lit(id.as_str())).collect();
        if unchecked.is_empty() {
            return Ok(0);
        }
        let mut true_latest = HashMap::new();
        let ids = col(span_col::TRACE_ID).in_list(unchecked, false);
        self.latest_matches_where(ctx, query, source, ids, found.len(), &mut true_latest).await?;
        let before = found.len();
        found.retain(|id, latest| {
            let rank = Rank { latest_match_ns: true_latest.get(id).copied().unwrap_or(*latest), trace_id: id.clone() };
            let keep = after.is_before(&rank);
            if !keep {
                earlier_pages.insert(id.clone());
            }
            keep
        });
        Ok(before - found.len())
    }

    /// Adds the `limit` first-ranked traces with a span matching `query`
    /// that starts in `[lower, upper)` (either side open when `None`), with
    /// their latest matching start, to `found`.
    async fn latest_matches(
        &self,
        ctx: &SessionContext,
        query: &SearchQuery,
        source: RankSource,
        (lower, upper): (Option<i64>, Option<i64>),
        limit: usize,
        found: &mut HashMap<String, i64>,
    ) -> Result<(), QueryError> {
        let time = source.time_column();
        let mut filters = Vec::new();
        if let Some(lower) = lower {
            filters.push(col(time).gt_eq(timestamp(lower)));
        }
        if let Some(upper) = upper {
            filters.push(col(time).lt(timestamp(upper)));
        }
        let window = conjunction(filters).unwrap_or(lit(true));
        self.latest_matches_where(ctx, query, source, window, limit, found).await
    }

    /// Adds the `limit` first-ranked traces with a span matching `query`
    /// and `extra`, with their latest matching start, to `found`.
    async fn latest_matches_where(
        &self,
        ctx: &SessionContext,
        query: &SearchQuery,
        source: RankSource,
        extra: Expr,
        limit: usize,
        found: &mut HashMap<String, i64>,
    ) -> Result<(), QueryError> {
        const LATEST: &str = "latest_start";
        let df_error = |e| self.datafusion_error(e);
        let frame = self
            .matching_rows(ctx, query, source, Some(extra))
            .await?
            .aggregate(vec![col(span_col::TRACE_ID)], vec![max(col(source.time_column())).alias(LATEST)])
            .and_then(|f| f.sort(vec![col(LATEST).sort(false, false), col(span_col::TRACE_ID).sort(true, false)]))
            .and_then(|f| f.limit(0, Some(limit)))
            .map_err(df_error)?;
        let result = self.collect(frame, limit).await?;
        for batch in &result.batches {
            let ids = utf8(batch.column(0))?;
            let latest = int64(batch.column(1))?;
            let latest = latest.as_primitive::<Int64Type>();
            for (id, start) in ids.as_string::<i32>().iter().zip(latest.iter()) {
                if let (Some(id), Some(start)) = (id, start) {
                    let entry = found.entry(id.to_owned()).or_insert(start);
                    *entry = (*entry).max(start);
                }
            }
        }
        Ok(())
    }

    /// Phase 2: one summary per trace in `ids`, from the `traces` view (the
    /// traces' parts, found by ID in each file's sorted parts sidecar).
    async fn summaries(&self, ctx: &SessionContext, ids: &[String]) -> Result<Vec<TraceSummary>, QueryError> {
        let df_error = |e| self.datafusion_error(e);
        let ids: Vec<Expr> = ids.iter().map(|id| lit(id.as_str())).collect();
        let frame = ctx
            .table(TRACES_VIEW)
            .await
            .and_then(|f| f.filter(col(part_col::TRACE_ID).in_list(ids.clone(), false)))
            .and_then(|f| {
                f.select_columns(&[
                    part_col::TRACE_ID,
                    part_col::START_TIME,
                    DURATION_NS,
                    part_col::ROOT_SERVICE_NAME,
                    part_col::ROOT_NAME,
                    part_col::SERVICES,
                    part_col::SPAN_COUNT,
                    part_col::ERROR_COUNT,
                    part_col::HAS_ROOT,
                    COMPLETE,
                ])
            })
            .map_err(df_error)?;
        let result = self.collect(frame, ids.len()).await?;
        let mut summaries = Vec::with_capacity(result.row_count);
        for batch in &result.batches {
            summaries.extend(summaries_from_batch(batch)?);
        }
        Ok(summaries)
    }
}

/// The first column's value in the first row of a one-row `result`, as
/// nanoseconds.
fn first_timestamp(result: &crate::QueryResult) -> Result<Option<i64>, QueryError> {
    let Some(batch) = result.batches.first() else { return Ok(None) };
    let values = int64(batch.column(0))?;
    let values = values.as_primitive::<Int64Type>();
    Ok((!values.is_empty() && values.is_valid(0)).then(|| values.value(0)))
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, QueryError> {
    batch.column_by_name(name).cloned().ok_or_else(|| QueryError::Execution(format!("search result lacks {name}")))
}

fn utf8(array: &ArrayRef) -> Result<ArrayRef, QueryError> {
    cast(array, &DataType::Utf8).map_err(|e| QueryError::Execution(e.to_string()))
}

fn int64(array: &ArrayRef) -> Result<ArrayRef, QueryError> {
    cast(array, &DataType::Int64).map_err(|e| QueryError::Execution(e.to_string()))
}

fn summaries_from_batch(batch: &RecordBatch) -> Result<Vec<TraceSummary>, QueryError> {
    let trace_id = utf8(&column(batch, part_col::TRACE_ID)?)?;
    let start = int64(&column(batch, part_col::START_TIME)?)?;
    let duration = int64(&column(batch, DURATION_NS)?)?;
    let spans = int64(&column(batch, part_col::SPAN_COUNT)?)?;
    let errors = int64(&column(batch, part_col::ERROR_COUNT)?)?;
    let services = column(batch, part_col::SERVICES)?;
    let root_name = utf8(&column(batch, part_col::ROOT_NAME)?)?;
    let root_service = utf8(&column(batch, part_col::ROOT_SERVICE_NAME)?)?;
    let flag = |name: &str| -> Result<ArrayRef, QueryError> {
        let array = column(batch, name)?;
        match array.data_type() {
            DataType::Boolean => Ok(array),
            other => Err(QueryError::Execution(format!("search {name} is {other}, not a boolean"))),
        }
    };
    let (has_root, complete) = (flag(part_col::HAS_ROOT)?, flag(COMPLETE)?);
    let services =
        services.as_list_opt::<i32>().ok_or_else(|| QueryError::Execution("search services are not a list".into()))?;
    let (start, duration) = (start.as_primitive::<Int64Type>(), duration.as_primitive::<Int64Type>());
    let (spans, errors) = (spans.as_primitive::<Int64Type>(), errors.as_primitive::<Int64Type>());
    let text = |array: &ArrayRef, row: usize| -> String {
        let array = array.as_string::<i32>();
        if array.is_null(row) { String::new() } else { array.value(row).to_owned() }
    };
    let is_true = |array: &ArrayRef, row: usize| array.is_valid(row) && array.as_boolean().value(row);
    (0..batch.num_rows())
        .map(|row| {
            let names = utf8(&services.value(row))?;
            let services: Vec<String> = names.as_string::<i32>().iter().flatten().map(str::to_owned).collect();
            Ok(TraceSummary {
                trace_id: text(&trace_id, row),
                root_service_name: text(&root_service, row),
                root_span_name: text(&root_name, row),
                start_time_unix_nano: start.value(row),
                duration_nanos: duration.value(row),
                span_count: spans.value(row).max(0) as u64,
                error_count: if errors.is_null(row) { 0 } else { errors.value(row).max(0) as u64 },
                services,
                has_root: is_true(&has_root, row),
                complete: is_true(&complete, row),
            })
        })
        .collect()
}

pub(crate) async fn search(TenantState(state): TenantState, uri: Uri) -> Response {
    state.observe("search", search_response(&state, &uri)).await
}

async fn search_response(state: &AppState, uri: &Uri) -> Result<Response, QueryError> {
    let query = SearchQuery::from_params(&Params::from_uri(uri)?, &state.config)?;
    let page = state.engine.search(&query).await?;
    let next_cursor = page.next.as_ref().map(Rank::cursor);
    Ok(axum::Json(serde_json::json!({ "traces": page.traces, "nextCursor": next_cursor })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_support::{BASE, T1, T2, T3, get};

    /// Every page of `query`, as (trace ID, rank time) in result order.
    async fn all_pages(engine: &QueryEngine, mut query: SearchQuery) -> Vec<(String, i64)> {
        let mut ranked = Vec::new();
        for _ in 0..10 {
            let page = engine.search(&query).await.expect("searches");
            ranked.extend(page.traces.iter().map(|t| (t.trace_id.clone(), t.start_time_unix_nano)));
            match page.next {
                Some(next) => query.after = Some(next),
                None => return ranked,
            }
        }
        panic!("more pages than traces")
    }

    #[tokio::test]
    async fn newest_traces_rank_the_same_from_parts_as_from_spans() {
        let engine = crate::test_support::engine();
        let ctx = engine.session().expect("session");
        let base = BASE as i64;
        let mut sources = Vec::new();
        // Ends before, between and inside traces (T3's spans start at 20 s and 21 s).
        for end in [None, Some(base + 50_000_000), Some(base + 15_000_000_000), Some(base + 20_500_000_000)] {
            for start in [None, Some(base + 5_000_000_000)] {
                for limit in [1, 2, 5] {
                    let newest = SearchQuery { start_ns: start, end_ns: end, ..SearchQuery::newest(limit) };
                    sources.push(
                        engine
                            .rank_source(&ctx, &newest, engine.newest_span_start_bound().await)
                            .await
                            .expect("source"),
                    );
                    // A filter every span passes forces the spans' ranking.
                    let from_spans = SearchQuery { filter: Some(lit(true)), ..newest.clone() };
                    assert_eq!(
                        all_pages(&engine, newest).await,
                        all_pages(&engine, from_spans).await,
                        "start {start:?} end {end:?} limit {limit}"
                    );
                }
            }
        }
        assert!(sources.contains(&RankSource::Parts) && sources.contains(&RankSource::Spans), "{sources:?}");
    }

    /// Traces by latest matching span, searched in growing windows back
    /// from `end`: T3 (matches at 20 s and 21 s), T2 (10 s), T1 (0 s).
    #[tokio::test]
    async fn windows_start_at_the_newest_span() {
        let engine = crate::test_support::engine();
        let ctx = engine.session().expect("session");
        let at = |seconds: f64| BASE as i64 + (seconds * 1e9) as i64;
        // T3's spans start at 20 s and 21 s, T2's at 10 s, T1's at 0 s.
        let newest = |end: i64| {
            let (engine, ctx) = (&engine, &ctx);
            async move { engine.newest_start(ctx, end, engine.newest_span_start_bound().await).await.expect("newest") }
        };
        let latest_of_t3 = newest(i64::MAX).await.expect("data");
        assert!((at(21.0)..at(22.0)).contains(&latest_of_t3), "{latest_of_t3}");
        // T3 has a span at or before 20.5 s: its latest counts.
        assert_eq!(newest(at(20.5)).await, Some(latest_of_t3));
        let before_t3 = newest(at(15.0)).await.expect("T2 and T1");
        assert!((at(10.0)..at(15.0)).contains(&before_t3), "{before_t3}");
        assert_eq!(newest(at(-1.0)).await, None);
        // Data far older than now is found from its newest second on.
        let ids = |page: SearchPage| page.traces.into_iter().map(|s| s.trace_id).collect::<Vec<_>>();
        let long_after = SearchQuery { end_ns: Some(at(86_400.0 * 30.0)), ..SearchQuery::newest(2) };
        assert_eq!(ids(engine.search(&long_after).await.expect("search")), [T3, T2]);
    }

    /// Shards that report their newest span start spare the search two
    /// queries (is a trace part straddling the end? where is the newest
    /// span?) and change no answer, whether the end is after the data,
    /// inside it or before it.
    #[tokio::test]
    async fn the_shards_newest_start_spares_queries_not_answers() {
        let (plain, plain_shards) = crate::test_support::recording_parts_engine(false);
        let (bounded, bounded_shards) = crate::test_support::recording_parts_engine(true);
        let at = |seconds: f64| BASE as i64 + (seconds * 1e9) as i64;
        let scans = |shards: &[std::sync::Arc<crate::test_support::RecordingShard>]| {
            shards.iter().map(|s| s.seen.lock().expect("lock").len()).sum::<usize>()
        };
        for end in [None, Some(at(3_600.0)), Some(at(20.5)), Some(at(15.0)), Some(at(-1.0))] {
            for limit in [1, 2, 5] {
                let query = SearchQuery { end_ns: end, ..SearchQuery::newest(limit) };
                let (plain_before, bounded_before) = (scans(&plain_shards), scans(&bounded_shards));
                assert_eq!(
                    all_pages(&plain, query.clone()).await,
                    all_pages(&bounded, query).await,
                    "end {end:?} limit {limit}"
                );
                let (plain_scans, bounded_scans) =
                    (scans(&plain_shards) - plain_before, scans(&bounded_shards) - bounded_before);
                // Two shards; with an end, the straddler check is spared too.
                if end.is_none() || end == Some(at(3_600.0)) {
                    let spared = plain_shards.len() * if end.is_some() { 2 } else { 1 };
                    if limit == 5 {
                        // One page: the counts differ by the spared queries exactly.
                        assert_eq!(bounded_scans + spared, plain_scans, "end {end:?}");
                    }
                } else {
                    assert!(bounded_scans <= plain_scans, "end {end:?} limit {limit}");
                }
            }
        }
        let (bounded_ctx, plain_ctx) = (bounded.session().expect("session"), plain.session().expect("session"));
        for end in [i64::MAX, at(20.5), at(15.0), at(-1.0)] {
            let from_bound = bounded.newest_start(&bounded_ctx, end, bounded.newest_span_start_bound().await).await;
            let from_query = plain.newest_start(&plain_ctx, end, plain.newest_span_start_bound().await).await;
            assert_eq!(from_bound.expect("newest"), from_query.expect("newest"), "end {end}");
        }
    }

    #[tokio::test]
    async fn windows_find_the_traces_with_the_newest_matches() {
        let engine = crate::test_support::engine();
        let at = |seconds: f64| BASE as i64 + (seconds * 1e9) as i64;
        let ids = |page: SearchPage| page.traces.into_iter().map(|s| s.trace_id).collect::<Vec<_>>();
        let query = |limit: usize| SearchQuery { end_ns: Some(at(21.5)), ..SearchQuery::newest(limit) };
        // The first window (1 s) holds T3's step; the next only T3 again;
        // the one after reaches T2; T1 needs a window back to 0 s.
        assert_eq!(ids(engine.search(&query(1)).await.expect("search")), [T3]);
        assert_eq!(ids(engine.search(&query(2)).await.expect("search")), [T3, T2]);
        assert_eq!(ids(engine.search(&query(5)).await.expect("search")), [T3, T2, T1]);
        // With a start, the last window stops there.
        let bounded = SearchQuery { start_ns: Some(at(5.0)), ..query(5) };
        assert_eq!(ids(engine.search(&bounded).await.expect("search")), [T3, T2]);
        // A filter that only older spans match: found in a later window.
        let process = SearchQuery { span_name: Some("process".into()), ..query(5) };
        assert_eq!(ids(engine.search(&process).await.expect("search")), [T3]);
        let nothing = SearchQuery { span_name: Some("nope".into()), ..query(5) };
        assert!(engine.search(&nothing).await.expect("search").traces.is_empty());
    }

    /// The probe that ends a search early: anything matching before a time.
    #[tokio::test]
    async fn a_probe_tells_whether_anything_matches_further_back() {
        let engine = crate::test_support::engine();
        let ctx = engine.session().expect("session");
        let at = |seconds: f64| BASE as i64 + (seconds * 1e9) as i64;
        let named = |name: &str| SearchQuery { span_name: Some(name.into()), ..SearchQuery::newest(5) };
        let probe = |query: SearchQuery, source: RankSource, seconds: f64| {
            let (engine, ctx) = (&engine, &ctx);
            async move { engine.matches_before(ctx, &query, source, Some(at(seconds))).await.expect("probes") }
        };
        // `GET /cart` starts at 10 s: before 10.5 s, not before 10 s.
        assert!(probe(named("GET /cart"), RankSource::Spans, 10.5).await);
        assert!(!probe(named("GET /cart"), RankSource::Spans, 10.0).await);
        assert!(!probe(named("nope"), RankSource::Spans, 1e6).await);
        // Trace parts: T1's latest span starts at 0.1 s.
        assert!(probe(SearchQuery::newest(5), RankSource::Parts, 0.2).await);
        assert!(!probe(SearchQuery::newest(5), RankSource::Parts, 0.1).await);
        // The query's own start bounds the probe too.
        let from_5s = SearchQuery { start_ns: Some(at(5.0)), ..named("POST /checkout") };
        assert!(!probe(from_5s, RankSource::Spans, 1e6).await);
    }

    /// The trace IDs a search returns, in order.
    async fn search_ids(query: &str) -> Vec<String> {
        let (status, _, body) = get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        json["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .map(|t| t["traceId"].as_str().expect("id").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn summarizes_traces_newest_first() {
        let (status, _, body) = get("/api/v1/search").await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&body).expect("json");
        let traces = json["traces"].as_array().expect("traces");
        assert_eq!(traces.len(), 3);
        assert_eq!(
            traces[0],
            json!({
                "traceId": T3, "rootServiceName": "checkout", "rootSpanName": "process",
                "startTimeUnixNano": (BASE + 20_000_000_000).to_string(), "durationNanos": 2_000_000_000i64,
                "spanCount": 2, "errorCount": 0, "services": ["checkout"], "hasRoot": false,
                "complete": false,
            })
        );
        assert_eq!(traces[1]["traceId"], T2);
        assert_eq!(traces[1]["rootSpanName"], "GET /cart");
        assert_eq!(
            traces[2],
            json!({
                "traceId": T1, "rootServiceName": "checkout", "rootSpanName": "POST /checkout",
                "startTimeUnixNano": BASE.to_string(), "durationNanos": 500_000_000i64,
                "spanCount": 2, "errorCount": 1, "services": ["checkout", "payments"], "hasRoot": true,
                "complete": true,
            })
        );
    }

    #[tokio::test]
    async fn filters_by_service_name_and_status() {
        assert_eq!(search_ids("service=payments").await, vec![T1]);
        assert_eq!(search_ids("service=checkout").await, vec![T3, T1]);
        assert_eq!(search_ids("name=charge").await, vec![T1]);
        assert_eq!(search_ids("name=GET%20%2Fcart").await, vec![T2]);
        assert_eq!(search_ids("status=error").await, vec![T1]);
        assert_eq!(search_ids("status=OK").await, vec![T1]);
        assert_eq!(search_ids("status=unset").await, vec![T3, T2], "T1 has only ok and error spans");
        assert!(search_ids("service=nobody").await.is_empty());
    }

    #[tokio::test]
    async fn filters_by_span_or_resource_attributes() {
        assert_eq!(search_ids("attr=http.route=/cart").await, vec![T2]);
        assert_eq!(search_ids("attr=http.route%3D%2Fcheckout").await, vec![T1]);
        assert_eq!(search_ids("attr=http.status_code=200").await, vec![T1]);
        assert_eq!(search_ids("attr=deployment.environment=staging").await, vec![T2]);
        assert_eq!(search_ids("tags=deployment.environment=prod").await, vec![T3, T1]);
        assert_eq!(search_ids("attr=deployment.environment=prod&attr=payment.provider=stripe").await, vec![T1]);
        assert!(search_ids("attr=http.route=/nowhere").await.is_empty());
    }

    #[tokio::test]
    async fn all_filters_must_hold_on_one_span() {
        // T1 has a payments span and a span with this route, but not one span with both.
        assert!(search_ids("service=payments&attr=http.route=/checkout").await.is_empty());
        assert_eq!(search_ids("service=payments&status=error").await, vec![T1]);
    }

    #[tokio::test]
    async fn filters_by_duration() {
        assert_eq!(search_ids("min_duration=1s").await, vec![T3]);
        assert_eq!(search_ids("max_duration=100ms").await, vec![T2]);
        assert_eq!(search_ids("min_duration=200ms&max_duration=400000000").await, vec![T1]);
        assert_eq!(search_ids("min_duration=2000000000").await, vec![T3]);
    }

    #[tokio::test]
    async fn filters_by_time_range() {
        assert_eq!(search_ids("start=2023-11-14T22:13:25Z").await, vec![T3, T2]);
        assert_eq!(search_ids("end=1700000005").await, vec![T1]);
        assert_eq!(search_ids("start=2023-11-14T22:13:25Z&end=1700000015000").await, vec![T2]);
        assert_eq!(search_ids(&format!("start={}", BASE + 20_000_000_000)).await, vec![T3]);
    }

    #[tokio::test]
    async fn limit_keeps_the_newest() {
        assert_eq!(search_ids("limit=1").await, vec![T3]);
        assert_eq!(search_ids("limit=2&service=checkout").await, vec![T3, T1]);
    }

    /// Every page of `query` (limit `limit`) until one has no cursor.
    async fn pages(query: &str, limit: usize) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (status, _, body) = get(&format!("/api/v1/search?limit={limit}{query}{after}")).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let json: Value = serde_json::from_slice(&body).expect("json");
            let ids: Vec<String> = json["traces"]
                .as_array()
                .expect("traces")
                .iter()
                .map(|t| t["traceId"].as_str().expect("id").to_owned())
                .collect();
            cursor = json["nextCursor"].as_str().map(str::to_owned);
            assert_eq!(cursor.is_some(), ids.len() == limit, "a cursor exactly when the page is full");
            pages.push(ids);
            if cursor.is_none() {
                return pages;
            }
            assert!(pages.len() <= 10, "paging does not end: {pages:?}");
        }
    }

    #[tokio::test]
    async fn pages_hold_every_matching_trace_once_in_rank_order() {
        // T3's latest match (21 s) ranks it first; the next page searches
        // below that time, meets T3's earlier span (20 s) and skips it.
        assert_eq!(pages("", 1).await, [vec![T3], vec![T2], vec![T1], vec![]]);
        assert_eq!(pages("", 2).await, [vec![T3, T2], vec![T1]]);
        assert_eq!(pages("", 3).await, [vec![T3, T2, T1], vec![]]);
        assert_eq!(pages("&service=checkout", 1).await, [vec![T3], vec![T1], vec![]]);
        assert_eq!(pages("&status=unset", 1).await, [vec![T3], vec![T2], vec![]]);
    }

    #[tokio::test]
    async fn a_cursor_skips_traces_tied_with_it_that_rank_before() {
        let engine = crate::test_support::engine();
        let first = engine.search(&SearchQuery::newest(1)).await.expect("search");
        let after = first.next.expect("a full page has a cursor");
        assert_eq!(after.cursor(), format!("{}_{T3}", BASE + 21_000_000_000));
        // A cursor at T3's time but with a smaller ID: T3 itself follows it.
        let tied = Rank { trace_id: "0".repeat(32), ..after.clone() };
        let page = engine.search(&SearchQuery { after: Some(tied), ..SearchQuery::newest(1) }).await;
        assert_eq!(page.expect("search").traces[0].trace_id, T3);
        let page = engine.search(&SearchQuery { after: Some(after), ..SearchQuery::newest(1) }).await;
        assert_eq!(page.expect("search").traces[0].trace_id, T2);
    }

    #[tokio::test]
    async fn bad_parameters_are_400() {
        for query in [
            "limit=0",
            "limit=5000",
            "limit=many",
            "status=broken",
            "min_duration=soon",
            "max_duration=-5",
            "start=yesterday",
            "start=1700000010&end=1700000000",
            "min_duration=2s&max_duration=1s",
            "attr=no-equals-sign",
            "attr==value",
            "service=a&service=b",
            "colour=blue",
            "cursor=abc",
            "cursor=12_not-hex",
            "cursor=_5a5a",
        ] {
            let (status, _, body) = get(&format!("/api/v1/search?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let json: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json["error"]["code"], "invalid_argument", "{query}");
        }
    }

    #[tokio::test]
    async fn engine_search_is_usable_without_http() {
        let engine = crate::test_support::engine();
        let traces = engine.search(&SearchQuery { status: Some("error".into()), ..SearchQuery::newest(10) }).await;
        let traces = traces.expect("searches").traces;
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].trace_id, T1);
        assert_eq!(traces[0].error_count, 1);
    }
}
