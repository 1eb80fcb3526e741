//! Binary operators: arithmetic (`+ - * / % ^`) and comparisons
//! (`== != > < >= <=`, filtering or with `bool`) between scalars and
//! vectors, and between vectors with one-to-one matching (`on`/`ignoring`).
//! Native histograms and many-to-one matching are refused, not approximated.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::parser::{BinModifier, LabelModifier, VectorMatchCardinality};

use super::names::{NAME_LABEL, PromLabels};
use super::params::bad;
use super::value::{Element, Point};
use crate::QueryError;

/// A supported binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl BinaryOp {
    pub(crate) fn parse(token: &str) -> Option<Self> {
        Some(match token {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "%" => Self::Mod,
            "^" => Self::Pow,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            ">" => Self::Gt,
            "<" => Self::Lt,
            ">=" => Self::Ge,
            "<=" => Self::Le,
            _ => return None,
        })
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::Ne | Self::Gt | Self::Lt | Self::Ge | Self::Le)
    }

    /// `(value, keep)`: arithmetic always keeps its result; a comparison
    /// keeps the left value when it holds.
    pub(crate) fn apply(self, left: f64, right: f64) -> (f64, bool) {
        let holds = |cond: bool| (left, cond);
        match self {
            Self::Add => (left + right, true),
            Self::Sub => (left - right, true),
            Self::Mul => (left * right, true),
            Self::Div => (left / right, true),
            Self::Mod => (left % right, true),
            Self::Pow => (left.powf(right), true),
            Self::Eq => holds(left == right),
            Self::Ne => holds(left != right),
            Self::Gt => holds(left > right),
            Self::Lt => holds(left < right),
            Self::Ge => holds(left >= right),
            Self::Le => holds(left <= right),
        }
    }
}

/// The options of one binary expression.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binary<'a> {
    pub op: BinaryOp,
    pub return_bool: bool,
    pub matching: Option<&'a LabelModifier>,
}

impl<'a> Binary<'a> {
    /// Checks the modifier: only one-to-one matching, no fill values.
    pub(crate) fn new(op: BinaryOp, modifier: Option<&'a BinModifier>) -> Result<Self, QueryError> {
        let Some(modifier) = modifier else { return Ok(Binary { op, return_bool: false, matching: None }) };
        match modifier.card {
            VectorMatchCardinality::OneToOne => {}
            _ => return Err(bad("unsupported PromQL: group_left/group_right (many-to-one matching)".into())),
        }
        if modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some() {
            return Err(bad("unsupported PromQL: fill values of binary operations".into()));
        }
        Ok(Binary { op, return_bool: modifier.return_bool, matching: modifier.matching.as_ref() })
    }

    fn drops_name(&self) -> bool {
        !self.op.is_comparison() || self.return_bool
    }

    /// `vector op scalar`, or `scalar op vector` when `scalar_left`.
    pub(crate) fn vector_scalar(
        &self,
        elements: Vec<Element>,
        scalar: f64,
        scalar_left: bool,
    ) -> Result<Vec<Element>, QueryError> {
        let mut out = Vec::with_capacity(elements.len());
        for mut element in elements {
            let value = float(&element.point)?;
            let (left, right) = if scalar_left { (scalar, value) } else { (value, scalar) };
            let (mut result, keep) = self.op.apply(left, right);
            if self.op.is_comparison() {
                // A comparison keeps the vector's value, whichever side it is on.
                result = value;
            }
            let (result, keep) = if self.return_bool { (f64::from(u8::from(keep)), true) } else { (result, keep) };
            if keep {
                if self.drops_name() {
                    element.labels.remove(NAME_LABEL);
                }
                element.point = Point::Float(result);
                out.push(element);
            }
        }
        unique(out)
    }

    /// `left op right` with one-to-one matching on the labels `on(...)`
    /// names, or all but those `ignoring(...)` names (and the metric name).
    pub(crate) fn vectors(&self, left: Vec<Element>, right: Vec<Element>) -> Result<Vec<Element>, QueryError> {
        let mut by_signature: BTreeMap<PromLabels, Element> = BTreeMap::new();
        for element in right {
            let signature = self.signature(&element.labels);
            if by_signature.insert(signature.clone(), element).is_some() {
                return Err(QueryError::InvalidRequest(format!(
                    "found duplicate series for the match group {signature:?} on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
        }
        let mut matched: BTreeSet<PromLabels> = BTreeSet::new();
        let mut out = Vec::new();
        for element in left {
            let signature = self.signature(&element.labels);
            let Some(other) = by_signature.get(&signature) else { continue };
            if !matched.insert(signature.clone()) {
                return Err(QueryError::InvalidRequest(format!(
                    "multiple matches for labels {signature:?}: many-to-one matching must be explicit (group_left/group_right)"
                )));
            }
            let (value, keep) = self.op.apply(float(&element.point)?, float(&other.point)?);
            let (value, keep) = if self.return_bool { (f64::from(u8::from(keep)), true) } else { (value, keep) };
            if keep {
                out.push(Element { labels: self.result_labels(element.labels), point: Point::Float(value) });
            }
        }
        unique(out)
    }

    fn signature(&self, labels: &PromLabels) -> PromLabels {
        let kept = |k: &String| match self.matching {
            Some(LabelModifier::Include(on)) => on.labels.contains(k),
            Some(LabelModifier::Exclude(ignoring)) => k != NAME_LABEL && !ignoring.labels.contains(k),
            None => k != NAME_LABEL,
        };
        labels.iter().filter(|(k, _)| kept(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn result_labels(&self, mut labels: PromLabels) -> PromLabels {
        if self.drops_name() {
            labels.remove(NAME_LABEL);
        }
        match self.matching {
            Some(LabelModifier::Include(on)) => labels.retain(|k, _| on.labels.contains(k)),
            Some(LabelModifier::Exclude(ignoring)) => labels.retain(|k, _| !ignoring.labels.contains(k)),
            None => {}
        }
        labels
    }
}

fn float(point: &Point) -> Result<f64, QueryError> {
    match point {
        Point::Float(v) => Ok(*v),
        Point::Native(_) => Err(bad("unsupported PromQL: binary operators on native histograms".into())),
    }
}

/// Prometheus refuses results with two elements of the same labels.
fn unique(elements: Vec<Element>) -> Result<Vec<Element>, QueryError> {
    let mut seen = BTreeSet::new();
    for element in &elements {
        if !seen.insert(&element.labels) {
            return Err(QueryError::InvalidRequest("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::label::Labels;

    fn plain(op: BinaryOp) -> Binary<'static> {
        Binary { op, return_bool: false, matching: None }
    }

    fn floats(elements: &[Element]) -> Vec<f64> {
        elements.iter().map(|e| float(&e.point).expect("float")).collect()
    }

    #[test]
    fn arithmetic_with_a_scalar_drops_the_name() {
        let v = vec![Element::float(&[("__name__", "m"), ("a", "1")], 3.0)];
        let out = plain(BinaryOp::Div).vector_scalar(v.clone(), 2.0, false).expect("ok");
        assert_eq!(out, vec![Element::float(&[("a", "1")], 1.5)]);
        let out = plain(BinaryOp::Sub).vector_scalar(v, 10.0, true).expect("ok");
        assert_eq!(floats(&out), vec![7.0]);
    }

    #[test]
    fn comparisons_filter_or_return_bool() {
        let v = vec![
            Element::float(&[("__name__", "m"), ("a", "1")], 3.0),
            Element::float(&[("__name__", "m"), ("a", "2")], 5.0),
        ];
        let out = plain(BinaryOp::Gt).vector_scalar(v.clone(), 4.0, false).expect("ok");
        assert_eq!(out, vec![Element::float(&[("__name__", "m"), ("a", "2")], 5.0)], "the name stays on a filter");
        // 4 < v keeps the vector's value, not the scalar.
        let out = plain(BinaryOp::Lt).vector_scalar(v.clone(), 4.0, true).expect("ok");
        assert_eq!(floats(&out), vec![5.0]);
        let with_bool = Binary { return_bool: true, ..plain(BinaryOp::Gt) };
        let out = with_bool.vector_scalar(v, 4.0, false).expect("ok");
        assert_eq!(out, vec![Element::float(&[("a", "1")], 0.0), Element::float(&[("a", "2")], 1.0)]);
    }

    #[test]
    fn vectors_match_one_to_one() {
        let left = vec![
            Element::float(&[("__name__", "errors"), ("job", "api"), ("code", "500")], 2.0),
            Element::float(&[("__name__", "errors"), ("job", "worker"), ("code", "500")], 1.0),
        ];
        let right = vec![Element::float(&[("__name__", "requests"), ("job", "api")], 8.0)];
        let on = LabelModifier::Include(Labels { labels: vec!["job".into()] });
        let binary = Binary { matching: Some(&on), ..plain(BinaryOp::Div) };
        let out = binary.vectors(left.clone(), right.clone()).expect("ok");
        assert_eq!(out, vec![Element::float(&[("job", "api")], 0.25)]);
        let ignoring = LabelModifier::Exclude(Labels { labels: vec!["code".into()] });
        let binary = Binary { matching: Some(&ignoring), ..plain(BinaryOp::Div) };
        assert_eq!(
            binary.vectors(left.clone(), right.clone()).expect("ok"),
            vec![Element::float(&[("job", "api")], 0.25)]
        );
        // Without matching labels the code label keeps them apart: no match.
        assert!(plain(BinaryOp::Div).vectors(left.clone(), right).expect("ok").is_empty());
        // Two left elements matching one right element need group_left.
        let all = LabelModifier::Include(Labels { labels: vec![] });
        let binary = Binary { matching: Some(&all), ..plain(BinaryOp::Add) };
        let err = binary.vectors(left, vec![Element::float(&[("x", "1")], 1.0)]).expect_err("many-to-one");
        assert!(err.to_string().contains("group_left"), "{err}");
    }
}
