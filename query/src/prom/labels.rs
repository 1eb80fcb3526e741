//! The listing endpoints: series by selector, label names and label
//! values. With `match[]` they list what the selectors select; without,
//! label names and values come from the series listing of the whole
//! window (one aggregate over the `metrics` table), and only `le` and
//! `quantile`, which live in the points, read histogram and summary points.

use std::collections::BTreeSet;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::Expr;

use super::names::{Component, NAME_LABEL, PromLabels, prom_labels};
use super::params::bad;
use super::select::Window;
use crate::metrics_api::{MetricType, SeriesRow, Start, point_filter};
use crate::{QueryEngine, QueryError};

/// The matchers of one `match[]` selector.
fn selector(text: &str) -> Result<Vec<Matcher>, QueryError> {
    let invalid = |why: String| bad(format!("invalid parameter \"match[]\": {why}"));
    match promql_parser::parser::parse(text).map_err(invalid)? {
        Expr::VectorSelector(vs) => {
            if vs.at.is_some() || vs.offset.is_some() || !vs.matchers.or_matchers.is_empty() {
                return Err(invalid(format!("unsupported selector {text:?}")));
            }
            let mut matchers = vs.matchers.matchers;
            if let Some(name) = vs.name {
                matchers.push(Matcher::new(MatchOp::Equal, NAME_LABEL, &name));
            }
            Ok(matchers)
        }
        _ => Err(invalid(format!("{text:?} is not a series selector"))),
    }
}

/// The label sets of the series the selectors select in `window`.
pub(crate) async fn series(
    engine: &QueryEngine,
    selectors: &[&str],
    window: Window,
) -> Result<Vec<PromLabels>, QueryError> {
    let ctx = engine.session()?;
    let mut found = BTreeSet::new();
    for text in selectors {
        for s in engine.prom_select(&ctx, &selector(text)?, window).await? {
            found.insert(s.labels);
        }
    }
    Ok(found.into_iter().collect())
}

/// Every series of every metric in `window`, as listed (without points).
async fn all_rows(engine: &QueryEngine, window: Window) -> Result<Vec<SeriesRow>, QueryError> {
    let ctx = engine.session()?;
    let filter = point_filter(None, &[], window.map(|w| Start::Exclusive(w.0)), window.map(|w| w.1));
    let max_series = engine.metrics_max_series();
    let rows = engine.series_rows(&ctx, filter, max_series + 1, false).await?;
    if rows.len() > max_series {
        return Err(QueryError::TooMuchData { what: "series", limit: max_series, key: "metrics_max_series" });
    }
    Ok(rows)
}

/// The label names of the selected series (of all series without selectors), sorted.
pub(crate) async fn names(engine: &QueryEngine, selectors: &[&str], window: Window) -> Result<Vec<String>, QueryError> {
    let mut names = BTreeSet::new();
    if selectors.is_empty() {
        let families = engine.prom_families(&engine.session()?, window).await?;
        if families.is_empty() {
            return Ok(Vec::new());
        }
        names.insert(NAME_LABEL.to_owned());
        for family in &families {
            match family.kind {
                MetricType::Histogram => names.insert("le".to_owned()),
                MetricType::Summary => names.insert("quantile".to_owned()),
                _ => false,
            };
        }
        for row in all_rows(engine, window).await? {
            names.extend(prom_labels("", &row.info.labels).into_keys());
        }
    } else {
        for labels in series(engine, selectors, window).await? {
            names.extend(labels.into_keys());
        }
    }
    Ok(names.into_iter().collect())
}

/// The values of label `name` on the selected series (on all without selectors), sorted.
pub(crate) async fn values(
    engine: &QueryEngine,
    name: &str,
    selectors: &[&str],
    window: Window,
) -> Result<Vec<String>, QueryError> {
    let mut values = BTreeSet::new();
    if !selectors.is_empty() {
        for labels in series(engine, selectors, window).await? {
            values.extend(labels.get(name).cloned());
        }
        return Ok(values.into_iter().collect());
    }
    let ctx = engine.session()?;
    let families = engine.prom_families(&ctx, window).await?;
    match name {
        NAME_LABEL => {
            values.extend(families.iter().flat_map(|f| f.series_names().into_iter().map(|(n, _)| n)));
        }
        "le" | "quantile" => {
            let wanted = if name == "le" { Component::Bucket } else { Component::Quantile };
            for family in &families {
                for (series_name, component) in family.series_names() {
                    if component == wanted {
                        let matchers = [Matcher::new(MatchOp::Equal, NAME_LABEL, &series_name)];
                        let found = engine.prom_select(&ctx, &matchers, window).await?;
                        values.extend(found.into_iter().filter_map(|s| s.labels.get(name).cloned()));
                    }
                }
            }
        }
        _ => {
            for row in all_rows(engine, window).await? {
                values.extend(prom_labels("", &row.info.labels).remove(name));
            }
        }
    }
    Ok(values.into_iter().collect())
}
