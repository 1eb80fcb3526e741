//! Jaeger searches translated onto Skein's trace search ([`SearchQuery`]),
//! shared by the internal API and api_v3: service, operation (span name),
//! tags, start-time range, span duration range and how many traces.
//!
//! Tags Jaeger's translator derives from span fields are matched on those
//! fields: `error=true` and `otel.status_code` on the status,
//! `otel.status_description` on its message, `span.kind` on the kind,
//! `otel.scope.name` on the scope, `service.name` on the service; any other
//! tag is a span or resource attribute, compared as text (so `200` matches
//! the int 200 as it does in Jaeger).

use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit};
use skein_model::SpanRecord;
use skein_model::schema::col as span_col;

use crate::{QueryConfig, QueryEngine, QueryError, SearchQuery};

/// The span kinds Jaeger names, as Skein stores them.
pub(crate) fn stored_kind(jaeger: &str) -> Result<&'static str, QueryError> {
    Ok(match jaeger.to_ascii_lowercase().as_str() {
        "server" => "server",
        "client" => "client",
        "producer" => "producer",
        "consumer" => "consumer",
        "internal" => "internal",
        "unspecified" => "unspecified",
        _ => {
            return Err(QueryError::InvalidRequest(format!(
                "unsupported span kind {jaeger:?}: use server, client, producer, consumer, internal or unspecified"
            )));
        }
    })
}

/// A Jaeger trace search, before translation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JaegerSearch {
    pub(crate) service: Option<String>,
    pub(crate) operation: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    /// Span start range, unix nanoseconds, inclusive.
    pub(crate) start_ns: Option<i64>,
    pub(crate) end_ns: Option<i64>,
    pub(crate) min_duration_ns: Option<i64>,
    pub(crate) max_duration_ns: Option<i64>,
    /// Traces wanted; `None`: `query.search_default_limit`.
    pub(crate) limit: Option<usize>,
}

impl JaegerSearch {
    /// Skein's search for the same traces. A limit past
    /// `query.search_max_limit` is capped to it, as Jaeger caps its search depth.
    pub(crate) fn to_search_query(&self, config: &QueryConfig) -> Result<SearchQuery, QueryError> {
        let limit = self.limit.unwrap_or(config.search_default_limit).clamp(1, config.search_max_limit);
        let mut query = SearchQuery {
            service: self.service.clone(),
            span_name: self.operation.clone(),
            min_duration_ns: self.min_duration_ns,
            max_duration_ns: self.max_duration_ns,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            ..SearchQuery::newest(limit)
        };
        let mut extra = Vec::new();
        for (key, value) in &self.tags {
            match key.as_str() {
                "service.name" => match &query.service {
                    Some(service) if service != value => extra.push(lit(false)),
                    _ => query.service = Some(value.clone()),
                },
                "error" if value == "true" => extra.push(col(span_col::STATUS_CODE).eq(lit("error"))),
                "error" if value == "false" => extra.push(col(span_col::STATUS_CODE).not_eq(lit("error"))),
                "otel.status_code" => {
                    let status = value.to_ascii_lowercase();
                    if !matches!(status.as_str(), "ok" | "error" | "unset") {
                        return Err(QueryError::InvalidRequest(format!(
                            "tag otel.status_code must be OK, ERROR or UNSET, got {value:?}"
                        )));
                    }
                    extra.push(col(span_col::STATUS_CODE).eq(lit(status)));
                }
                "otel.status_description" => extra.push(col(span_col::STATUS_MESSAGE).eq(lit(value.as_str()))),
                "span.kind" => extra.push(col(span_col::KIND).eq(lit(stored_kind(value)?))),
                "otel.scope.name" => extra.push(col(span_col::SCOPE_NAME).eq(lit(value.as_str()))),
                _ => query.attributes.push((key.clone(), value.clone())),
            }
        }
        query.filter = conjunction(extra);
        if let (Some(start), Some(end)) = (query.start_ns, query.end_ns)
            && start > end
        {
            return Err(QueryError::InvalidRequest("the start time must not be after the end time".into()));
        }
        if let (Some(min), Some(max)) = (query.min_duration_ns, query.max_duration_ns)
            && max < min
        {
            return Err(QueryError::InvalidRequest("'maxDuration' should be greater than 'minDuration'".into()));
        }
        Ok(query)
    }
}

impl QueryEngine {
    /// The whole traces `query` finds, in search rank order (newest match first).
    pub(crate) async fn find_traces(&self, query: &SearchQuery) -> Result<Vec<Vec<SpanRecord>>, QueryError> {
        let page = self.search(query).await?;
        let mut traces = Vec::with_capacity(page.traces.len());
        for summary in &page.traces {
            let records = self.trace(&summary.trace_id).await?;
            if !records.is_empty() {
                traces.push(records);
            }
        }
        Ok(traces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{T1, T2, T3, engine, test_config};

    async fn found(search: JaegerSearch) -> Vec<String> {
        let query = search.to_search_query(&test_config()).expect("valid");
        let traces = engine().find_traces(&query).await.expect("searches");
        traces.iter().map(|t| const_hex::encode(&t[0].span.trace_id)).collect()
    }

    fn tags(pairs: &[(&str, &str)]) -> JaegerSearch {
        JaegerSearch { tags: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }

    #[tokio::test]
    async fn derived_tags_match_span_fields() {
        assert_eq!(found(tags(&[("error", "true")])).await, [T1]);
        assert_eq!(found(tags(&[("error", "false")])).await, [T3, T2, T1]);
        assert_eq!(found(tags(&[("otel.status_code", "OK")])).await, [T1]);
        assert_eq!(found(tags(&[("otel.status_description", "card declined")])).await, [T1]);
        assert_eq!(found(tags(&[("span.kind", "client")])).await, [T1]);
        assert_eq!(found(tags(&[("span.kind", "server")])).await, [T2, T1]);
        assert_eq!(found(tags(&[("otel.scope.name", "payments-sdk")])).await, [T1]);
        assert_eq!(found(tags(&[("service.name", "cart")])).await, [T2]);
        let both = JaegerSearch { service: Some("checkout".into()), ..tags(&[("service.name", "cart")]) };
        assert!(found(both).await.is_empty(), "two different services never match one span");
    }

    #[tokio::test]
    async fn other_tags_are_attributes_compared_as_text() {
        assert_eq!(found(tags(&[("http.status_code", "200")])).await, [T1]);
        assert_eq!(found(tags(&[("deployment.environment", "staging")])).await, [T2]);
        assert!(found(tags(&[("http.route", "/nowhere")])).await.is_empty());
    }

    #[tokio::test]
    async fn whole_traces_come_back() {
        let search = JaegerSearch { operation: Some("charge".into()), ..Default::default() };
        let query = search.to_search_query(&test_config()).expect("valid");
        let traces = engine().find_traces(&query).await.expect("searches");
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].len(), 2, "the matching span's whole trace");
    }

    #[test]
    fn limits_are_capped_and_ranges_checked() {
        let config = test_config();
        let capped = JaegerSearch { limit: Some(1_000_000), ..Default::default() };
        assert_eq!(capped.to_search_query(&config).expect("valid").limit, config.search_max_limit);
        assert_eq!(JaegerSearch::default().to_search_query(&config).expect("valid").limit, 20);
        let durations = JaegerSearch { min_duration_ns: Some(2), max_duration_ns: Some(1), ..Default::default() };
        assert!(durations.to_search_query(&config).is_err());
        let times = JaegerSearch { start_ns: Some(2), end_ns: Some(1), ..Default::default() };
        assert!(times.to_search_query(&config).is_err());
        assert!(tags(&[("span.kind", "sideways")]).to_search_query(&config).is_err());
        assert!(tags(&[("otel.status_code", "maybe")]).to_search_query(&config).is_err());
    }
}
