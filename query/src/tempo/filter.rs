//! TraceQL conditions as DataFusion expressions over the `spans` table.
//!
//! Attribute values are stored as text with a per-entry type code (see
//! ARCHITECTURE.md, the `spans` table), so a comparison checks the type as
//! TraceQL does: `span.code = 200` matches the int 200, not the string
//! "200"; numbers compare numerically across ints and doubles.

use datafusion::arrow::datatypes::DataType;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions::expr_fn::{coalesce, substring};
use datafusion::functions_nested::expr_fn::{array_position, map_keys};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, binary_expr, cast, col, lit, try_cast, when};
use skein_model::schema::col as span_col;

use super::traceql::{Condition, Field, Literal, Op, Scope, SpanFilter, anchored};

/// An attribute map column and its type-code column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttrColumns {
    pub(crate) values: &'static str,
    pub(crate) types: &'static str,
}

pub(crate) const SPAN_ATTRS: AttrColumns =
    AttrColumns { values: span_col::SPAN_ATTRIBUTES, types: span_col::SPAN_ATTRIBUTE_TYPES };
pub(crate) const RESOURCE_ATTRS: AttrColumns =
    AttrColumns { values: span_col::RESOURCE_ATTRIBUTES, types: span_col::RESOURCE_ATTRIBUTE_TYPES };

/// The resource attribute kept in a column of its own (cheaper, bloom-filtered).
const SERVICE_NAME: &str = "service.name";

/// The value text of attribute `key` (NULL when the span lacks it).
pub(crate) fn attr_text(columns: AttrColumns, key: &str) -> Expr {
    get_field(col(columns.values), key)
}

/// The type code of attribute `key` (`s`, `i`, `d`, `b`, ...): the
/// character of the type string at the key's position; a NULL type string
/// means every value is a string.
pub(crate) fn attr_type(columns: AttrColumns, key: &str) -> Expr {
    let position = array_position(map_keys(col(columns.values)), lit(key), lit(1i64));
    let code = substring(col(columns.types), cast(position, DataType::Int64), lit(1i64));
    coalesce(vec![code, lit("s")])
}

/// The spans `filter` matches; `None` when it has no condition (every span).
pub(crate) fn filter_expr(filter: &SpanFilter) -> Option<Expr> {
    conjunction(filter.conditions.iter().map(condition_expr))
}

fn condition_expr(condition: &Condition) -> Expr {
    let Condition { field, op, value } = condition;
    match field {
        Field::Name => compare(col(span_col::NAME), *op, literal(*op, value)),
        Field::Status => compare(col(span_col::STATUS_CODE), *op, literal(*op, value)),
        Field::StatusMessage => compare(col(span_col::STATUS_MESSAGE), *op, literal(*op, value)),
        Field::Kind => compare(col(span_col::KIND), *op, literal(*op, value)),
        Field::Duration => compare(col(span_col::DURATION_NS), *op, literal(*op, value)),
        Field::Attribute { scope, key } => match scope {
            Scope::Span => attribute(SPAN_ATTRS, key, *op, value),
            Scope::Resource => resource_attribute(key, *op, value),
            // The span's own attribute wins; the resource's applies when the span has none.
            Scope::Unscoped => when(attr_text(SPAN_ATTRS, key).is_not_null(), attribute(SPAN_ATTRS, key, *op, value))
                .otherwise(resource_attribute(key, *op, value))
                .unwrap_or_else(|_| lit(false)),
        },
    }
}

fn resource_attribute(key: &str, op: Op, value: &Literal) -> Expr {
    match value {
        Literal::Str(_) if key == SERVICE_NAME => compare(col(span_col::SERVICE_NAME), op, literal(op, value)),
        _ => attribute(RESOURCE_ATTRS, key, op, value),
    }
}

/// A typed comparison of one attribute map's `key` with `value`.
fn attribute(columns: AttrColumns, key: &str, op: Op, value: &Literal) -> Expr {
    let text = attr_text(columns, key);
    let code = attr_type(columns, key);
    match value {
        Literal::Str(_) => code.eq(lit("s")).and(compare(text, op, literal(op, value))),
        Literal::Bool(b) => code.eq(lit("b")).and(compare(text, op, lit(if *b { "true" } else { "false" }))),
        Literal::Int(n) => {
            let as_int = code.clone().eq(lit("i")).and(compare(try_cast(text.clone(), DataType::Int64), op, lit(*n)));
            let as_double = code.eq(lit("d")).and(compare(try_cast(text, DataType::Float64), op, lit(*n as f64)));
            as_int.or(as_double)
        }
        Literal::Float(f) => {
            code.in_list(vec![lit("i"), lit("d")], false).and(compare(try_cast(text, DataType::Float64), op, lit(*f)))
        }
        // The parser refuses other literals for attributes.
        Literal::Duration(_) | Literal::Status(_) | Literal::Kind(_) => lit(false),
    }
}

/// `value` as an expression; a `=~` / `!~` pattern anchored at both ends.
fn literal(op: Op, value: &Literal) -> Expr {
    match value {
        Literal::Str(s) if matches!(op, Op::Match | Op::NotMatch) => lit(anchored(s)),
        Literal::Str(s) => lit(s.as_str()),
        Literal::Int(n) | Literal::Duration(n) => lit(*n),
        Literal::Float(f) => lit(*f),
        Literal::Bool(b) => lit(*b),
        Literal::Status(s) | Literal::Kind(s) => lit(*s),
    }
}

fn compare(left: Expr, op: Op, right: Expr) -> Expr {
    let operator = match op {
        Op::Eq => Operator::Eq,
        Op::Ne => Operator::NotEq,
        Op::Gt => Operator::Gt,
        Op::Ge => Operator::GtEq,
        Op::Lt => Operator::Lt,
        Op::Le => Operator::LtEq,
        Op::Match => Operator::RegexMatch,
        Op::NotMatch => Operator::RegexNotMatch,
    };
    binary_expr(left, operator, right)
}

/// A value shown beside each matched span in search results (Tempo lists
/// the attributes a query tested): its name, value text and type code.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    pub(crate) key: String,
    pub(crate) text: Expr,
    pub(crate) code: Expr,
}

/// The fields `filter` tests, once each, except the span name and duration
/// (search results carry those anyway).
pub(crate) fn shown_fields(filter: &SpanFilter) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    for condition in &filter.conditions {
        let (key, text, code) = match &condition.field {
            Field::Name | Field::Duration => continue,
            Field::Status => ("status".to_owned(), col(span_col::STATUS_CODE), lit("s")),
            Field::StatusMessage => ("statusMessage".to_owned(), col(span_col::STATUS_MESSAGE), lit("s")),
            Field::Kind => ("kind".to_owned(), col(span_col::KIND), lit("s")),
            Field::Attribute { scope, key } => {
                let (text, code) = match scope {
                    Scope::Span => (attr_text(SPAN_ATTRS, key), attr_type(SPAN_ATTRS, key)),
                    Scope::Resource => resource_shown(key),
                    Scope::Unscoped => {
                        let on_span = attr_text(SPAN_ATTRS, key).is_not_null();
                        let (resource_text, resource_code) = resource_shown(key);
                        let text = when(on_span.clone(), attr_text(SPAN_ATTRS, key)).otherwise(resource_text);
                        let code = when(on_span, attr_type(SPAN_ATTRS, key)).otherwise(resource_code);
                        match (text, code) {
                            (Ok(text), Ok(code)) => (text, code),
                            _ => continue,
                        }
                    }
                };
                (key.clone(), text, code)
            }
        };
        if !shown.iter().any(|s| s.key == key) {
            shown.push(Shown { key, text, code });
        }
    }
    shown
}

fn resource_shown(key: &str) -> (Expr, Expr) {
    if key == SERVICE_NAME {
        (col(span_col::SERVICE_NAME), lit("s"))
    } else {
        (attr_text(RESOURCE_ATTRS, key), attr_type(RESOURCE_ATTRS, key))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::engine::SPANS_TABLE;
    use crate::tempo::traceql::parse;
    use crate::test_support::engine;

    /// The span names `query` matches in the test shards, sorted.
    async fn matching_names(query: &str) -> Vec<String> {
        let engine = engine();
        let ctx: SessionContext = engine.session().expect("session");
        let mut frame = ctx.table(SPANS_TABLE).await.expect("table");
        if let Some(filter) = filter_expr(&parse(query).expect(query)) {
            frame = frame.filter(filter).expect("filter");
        }
        let frame = frame.select(vec![col(span_col::NAME)]).expect("select");
        let result = engine.collect(frame, 100).await.expect(query);
        let mut names: Vec<String> = result
            .batches
            .iter()
            .flat_map(|b| b.column(0).as_string::<i32>().iter().flatten().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn conditions_match_spans_as_traceql_does() {
        let all = ["GET /cart", "POST /checkout", "charge", "process", "process.step"];
        assert_eq!(matching_names("{}").await, all);
        assert_eq!(matching_names(r#"{ resource.service.name = "payments" }"#).await, ["charge"]);
        assert_eq!(matching_names(r#"{ .service.name = "cart" }"#).await, ["GET /cart"]);
        assert_eq!(matching_names(r#"{ span.http.route = "/cart" }"#).await, ["GET /cart"]);
        assert_eq!(matching_names(r#"{ resource.http.route = "/cart" }"#).await, Vec::<String>::new());
        assert_eq!(matching_names(r#"{ .deployment.environment = "staging" }"#).await, ["GET /cart"]);
        assert_eq!(
            matching_names(r#"{ name != "charge" && status = unset }"#).await,
            ["GET /cart", "process", "process.step"]
        );
        assert_eq!(matching_names("{ status = error }").await, ["charge"]);
        assert_eq!(matching_names(r#"{ statusMessage = "card declined" }"#).await, ["charge"]);
        assert_eq!(matching_names("{ kind = client }").await, ["charge"]);
        assert_eq!(matching_names("{ duration >= 500ms }").await, ["POST /checkout", "process", "process.step"]);
        assert_eq!(matching_names("{ duration > 500ms }").await, ["process"]);
        assert_eq!(matching_names("{ duration < 300ms && duration <= 50ms }").await, ["GET /cart"]);
    }

    #[tokio::test]
    async fn regular_expressions_match_whole_strings() {
        // What Grafana's multi-value selection emits.
        assert_eq!(matching_names(r#"{ resource.service.name =~ "cart|payments" }"#).await, ["GET /cart", "charge"]);
        // Anchored: "process" alone does not match "process.step".
        assert_eq!(matching_names(r#"{ name =~ "process" }"#).await, ["process"]);
        assert_eq!(matching_names(r#"{ name =~ "process.*" }"#).await, ["process", "process.step"]);
        assert_eq!(matching_names(r#"{ name !~ "process.*|charge" }"#).await, ["GET /cart", "POST /checkout"]);
        assert_eq!(matching_names(r#"{ span.http.route =~ "/ca.*" }"#).await, ["GET /cart"]);
        assert_eq!(matching_names(r#"{ statusMessage =~ "card .*" }"#).await, ["charge"]);
        // A pattern is only for strings: the int 200 does not match "2.*".
        assert_eq!(matching_names(r#"{ span.http.status_code =~ "2.*" }"#).await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn attribute_comparisons_respect_types() {
        // http.status_code is the int 200, step.index the int 1.
        assert_eq!(matching_names("{ span.http.status_code = 200 }").await, ["POST /checkout"]);
        assert_eq!(matching_names("{ .http.status_code >= 200.0 }").await, ["POST /checkout"]);
        assert_eq!(matching_names("{ span.http.status_code > 200 }").await, Vec::<String>::new());
        assert_eq!(matching_names(r#"{ span.http.status_code = "200" }"#).await, Vec::<String>::new());
        assert_eq!(matching_names("{ span.step.index < 2 }").await, ["process.step"]);
        assert_eq!(matching_names("{ span.step.index != 1 }").await, Vec::<String>::new());
        // A string is not a number: no match rather than a coerced one.
        assert_eq!(matching_names("{ span.http.route > 1 }").await, Vec::<String>::new());
        assert_eq!(matching_names("{ span.step.index = true }").await, Vec::<String>::new());
    }
}
