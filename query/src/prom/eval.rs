//! Evaluates a parsed PromQL expression at every step of a query. Each
//! selector reads its series once for all steps (the window the steps,
//! offset, range or 5-minute lookback need); the step math is plain Rust.
//! Anything outside the supported subset is refused with a 400 naming it.

use futures::future::BoxFuture;
use promql_parser::label::Matcher;
use promql_parser::parser::{AggregateExpr, BinaryExpr, Call, Expr, MatrixSelector, Offset, UnaryExpr, VectorSelector};

use super::aggregate::{AggregateOp, aggregate};
use super::binary::{Binary, BinaryOp};
use super::functions::RangeFunction;
use super::histogram::{bucket_quantile, native_quantile};
use super::names::{NAME_LABEL, PromLabels};
use super::params::{LOOKBACK, bad};
use super::value::{Element, Evaluated, Point, PromSeries};
use crate::{QueryEngine, QueryError};

/// One query's evaluation: its steps (unix nanoseconds, ascending).
pub(crate) struct Evaluator<'a> {
    pub engine: &'a QueryEngine,
    pub ctx: datafusion::prelude::SessionContext,
    pub times: Vec<i64>,
}

fn unsupported(what: impl std::fmt::Display) -> QueryError {
    bad(format!("unsupported PromQL: {what}"))
}

impl Evaluator<'_> {
    pub(crate) fn eval<'b>(&'b self, expr: &'b Expr) -> BoxFuture<'b, Result<Evaluated, QueryError>> {
        Box::pin(async move {
            match expr {
                Expr::NumberLiteral(n) => Ok(Evaluated::Scalar(vec![n.val; self.times.len()])),
                Expr::StringLiteral(s) => Ok(Evaluated::String(s.val.clone())),
                Expr::Paren(p) => self.eval(&p.expr).await,
                Expr::Unary(u) => self.unary(u).await,
                Expr::VectorSelector(vs) => Ok(Evaluated::Vector(self.bounded(self.instant(vs).await?)?)),
                Expr::MatrixSelector(ms) => self.matrix(ms).await,
                Expr::Call(call) => self.call(call).await,
                Expr::Aggregate(agg) => self.aggregate(agg).await,
                Expr::Binary(binary) => self.binary(binary).await,
                Expr::Subquery(_) => Err(unsupported("subqueries")),
                Expr::Extension(_) => Err(unsupported("extension expressions")),
            }
        })
    }

    /// Fails when the elements of all steps exceed `query.metrics_max_points`:
    /// a range query holds every step's vector in memory.
    fn bounded(&self, steps: Vec<Vec<Element>>) -> Result<Vec<Vec<Element>>, QueryError> {
        let limit = self.engine.metrics_max_points();
        if steps.iter().map(Vec::len).sum::<usize>() > limit {
            return Err(QueryError::TooMuchData { what: "result points", limit, key: "metrics_max_points" });
        }
        Ok(steps)
    }

    async fn vector(&self, expr: &Expr) -> Result<Vec<Vec<Element>>, QueryError> {
        match self.eval(expr).await? {
            Evaluated::Vector(v) => Ok(v),
            other => Err(bad(format!("expected an instant vector, got a {} in {expr}", other.type_name()))),
        }
    }

    async fn scalar(&self, expr: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr).await? {
            Evaluated::Scalar(v) => Ok(v),
            other => Err(bad(format!("expected a scalar, got a {} in {expr}", other.type_name()))),
        }
    }

    async fn unary(&self, unary: &UnaryExpr) -> Result<Evaluated, QueryError> {
        Ok(match self.eval(&unary.expr).await? {
            Evaluated::Scalar(values) => Evaluated::Scalar(values.into_iter().map(|v| -v).collect()),
            Evaluated::Vector(steps) => {
                let negate = |mut e: Element| match e.point {
                    Point::Float(v) => {
                        e.labels.remove(NAME_LABEL);
                        e.point = Point::Float(-v);
                        Ok(e)
                    }
                    Point::Native(_) => Err(unsupported("negating native histograms")),
                };
                Evaluated::Vector(
                    steps
                        .into_iter()
                        .map(|step| step.into_iter().map(negate).collect::<Result<Vec<_>, _>>())
                        .collect::<Result<_, _>>()?,
                )
            }
            other => {
                return Err(bad(format!(
                    "unary minus needs a scalar or an instant vector, got a {}",
                    other.type_name()
                )));
            }
        })
    }

    /// The matchers of a selector, its metric name included.
    pub(crate) fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
        if vs.at.is_some() {
            return Err(unsupported("the @ modifier"));
        }
        if !vs.matchers.or_matchers.is_empty() {
            return Err(unsupported("\"or\" in label matchers"));
        }
        let mut matchers = vs.matchers.matchers.clone();
        if let Some(name) = &vs.name {
            matchers.push(Matcher::new(promql_parser::label::MatchOp::Equal, NAME_LABEL, name));
        }
        Ok(matchers)
    }

    fn offset(vs: &VectorSelector) -> i64 {
        match &vs.offset {
            Some(Offset::Pos(d)) => d.as_nanos() as i64,
            Some(Offset::Neg(d)) => -(d.as_nanos() as i64),
            None => 0,
        }
    }

    /// The series of a selector with their samples in `(first - lead, last]`
    /// of the steps, shifted by the offset.
    async fn series(&self, vs: &VectorSelector, lead: i64) -> Result<(Vec<PromSeries>, i64), QueryError> {
        let offset = Self::offset(vs);
        let (first, last) = (self.times[0], self.times[self.times.len() - 1]);
        let window = Some((first - offset - lead, last - offset));
        let series = self.engine.prom_select(&self.ctx, &Self::matchers(vs)?, window).await?;
        Ok((series, offset))
    }

    /// An instant vector selector: each series' newest sample within the
    /// lookback window `(t - 5m, t]` of every step.
    async fn instant(&self, vs: &VectorSelector) -> Result<Vec<Vec<Element>>, QueryError> {
        let (series, offset) = self.series(vs, LOOKBACK).await?;
        let mut steps: Vec<Vec<Element>> = vec![Vec::new(); self.times.len()];
        for s in series {
            let mut next = 0;
            for (i, t) in self.times.iter().enumerate() {
                let at = t - offset;
                while next < s.samples.len() && s.samples[next].0 <= at {
                    next += 1;
                }
                if next > 0 && s.samples[next - 1].0 > at - LOOKBACK {
                    steps[i].push(Element { labels: s.labels.clone(), point: s.samples[next - 1].1.clone() });
                }
            }
        }
        Ok(steps)
    }

    /// A range vector at the top of an instant query: the raw samples.
    async fn matrix(&self, ms: &MatrixSelector) -> Result<Evaluated, QueryError> {
        if self.times.len() != 1 {
            return Err(bad(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
            ));
        }
        let range = ms.range.as_nanos() as i64;
        let (series, offset) = self.series(&ms.vs, range).await?;
        let at = self.times[0] - offset;
        Ok(Evaluated::Matrix(
            series
                .into_iter()
                .map(|mut s| {
                    s.samples.retain(|(t, _)| *t > at - range && *t <= at);
                    s
                })
                .filter(|s| !s.samples.is_empty())
                .collect(),
        ))
    }

    async fn call(&self, call: &Call) -> Result<Evaluated, QueryError> {
        let name = call.func.name;
        let args = &call.args.args;
        if let Some(function) = RangeFunction::parse(name) {
            let Some(Expr::MatrixSelector(ms)) = args.first().map(|a| &**a) else {
                return Err(unsupported(format!("{name}() of anything but a range selector (subqueries)")));
            };
            return Ok(Evaluated::Vector(self.bounded(self.range_function(function, ms).await?)?));
        }
        if name == "histogram_quantile" {
            let (Some(q), Some(vector)) = (args.first(), args.get(1)) else {
                return Err(bad("histogram_quantile needs two arguments".into()));
            };
            let q = self.scalar(q).await?;
            let vector = self.vector(vector).await?;
            return Ok(Evaluated::Vector(
                vector.into_iter().zip(q).map(|(step, q)| histogram_quantile(q, step)).collect::<Result<_, _>>()?,
            ));
        }
        Err(unsupported(format!("the function {name}()")))
    }

    async fn range_function(
        &self,
        function: RangeFunction,
        ms: &MatrixSelector,
    ) -> Result<Vec<Vec<Element>>, QueryError> {
        let range = ms.range.as_nanos() as i64;
        let (series, offset) = self.series(&ms.vs, range).await?;
        let mut steps: Vec<Vec<Element>> = vec![Vec::new(); self.times.len()];
        for s in series {
            let mut labels = s.labels.clone();
            labels.remove(NAME_LABEL);
            let (mut from, mut to) = (0, 0);
            for (i, t) in self.times.iter().enumerate() {
                let end = t - offset;
                let start = end - range;
                while to < s.samples.len() && s.samples[to].0 <= end {
                    to += 1;
                }
                while from < to && s.samples[from].0 <= start {
                    from += 1;
                }
                if let Some(point) = function.apply(&s.samples[from..to], start, end) {
                    steps[i].push(Element { labels: labels.clone(), point });
                }
            }
        }
        Ok(steps)
    }

    async fn aggregate(&self, agg: &AggregateExpr) -> Result<Evaluated, QueryError> {
        let op_name = agg.op.to_string();
        let op = AggregateOp::parse(&op_name).ok_or_else(|| unsupported(format!("the aggregation {op_name}")))?;
        let k = match (&agg.param, op.takes_parameter()) {
            (Some(param), true) => self.scalar(param).await?,
            (None, false) => vec![0.0; self.times.len()],
            _ => return Err(bad(format!("wrong parameters for the aggregation {op_name}"))),
        };
        let vector = self.vector(&agg.expr).await?;
        Ok(Evaluated::Vector(
            vector.into_iter().zip(k).map(|(step, k)| aggregate(op, agg.modifier.as_ref(), step, k)).collect(),
        ))
    }

    async fn binary(&self, expr: &BinaryExpr) -> Result<Evaluated, QueryError> {
        let token = expr.op.to_string();
        let op = BinaryOp::parse(&token).ok_or_else(|| unsupported(format!("the binary operator {token}")))?;
        let binary = Binary::new(op, expr.modifier.as_ref())?;
        let (left, right) = (self.eval(&expr.lhs).await?, self.eval(&expr.rhs).await?);
        Ok(match (left, right) {
            (Evaluated::Scalar(l), Evaluated::Scalar(r)) => Evaluated::Scalar(
                l.into_iter()
                    .zip(r)
                    .map(|(l, r)| {
                        let (value, keep) = op.apply(l, r);
                        if op.is_comparison() { f64::from(u8::from(keep)) } else { value }
                    })
                    .collect(),
            ),
            (Evaluated::Vector(v), Evaluated::Scalar(s)) => Evaluated::Vector(
                v.into_iter().zip(s).map(|(v, s)| binary.vector_scalar(v, s, false)).collect::<Result<_, _>>()?,
            ),
            (Evaluated::Scalar(s), Evaluated::Vector(v)) => Evaluated::Vector(
                v.into_iter().zip(s).map(|(v, s)| binary.vector_scalar(v, s, true)).collect::<Result<_, _>>()?,
            ),
            (Evaluated::Vector(l), Evaluated::Vector(r)) => {
                Evaluated::Vector(l.into_iter().zip(r).map(|(l, r)| binary.vectors(l, r)).collect::<Result<_, _>>()?)
            }
            (l, r) => {
                return Err(bad(format!(
                    "binary operator {token} between a {} and a {}",
                    l.type_name(),
                    r.type_name()
                )));
            }
        })
    }
}

/// `histogram_quantile` of one step: native histograms each, classic
/// buckets grouped by their labels without `le`.
fn histogram_quantile(q: f64, elements: Vec<Element>) -> Result<Vec<Element>, QueryError> {
    let mut groups: std::collections::BTreeMap<PromLabels, Vec<(f64, f64)>> = Default::default();
    let mut out = Vec::new();
    for mut element in elements {
        element.labels.remove(NAME_LABEL);
        match element.point {
            Point::Native(h) => {
                out.push(Element { labels: element.labels, point: Point::Float(native_quantile(q, &h)) });
            }
            Point::Float(count) => {
                // Buckets without a numeric `le` are ignored, as in Prometheus.
                let Some(le) = element.labels.remove("le").and_then(|le| parse_le(&le)) else { continue };
                groups.entry(element.labels).or_default().push((le, count));
            }
        }
    }
    for (labels, buckets) in groups {
        out.push(Element { labels, point: Point::Float(bucket_quantile(q, buckets)) });
    }
    let mut seen = std::collections::BTreeSet::new();
    if out.iter().any(|e| !seen.insert(e.labels.clone())) {
        return Err(QueryError::InvalidRequest(
            "vector cannot contain metrics with the same labelset (histogram_quantile of classic and native histograms with the same labels)".into(),
        ));
    }
    Ok(out)
}

fn parse_le(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}
