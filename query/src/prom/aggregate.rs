//! Aggregation operators over one step's instant vector: `sum`, `avg`,
//! `min`, `max`, `count` (`by`/`without`), and `topk`/`bottomk`, which keep
//! the chosen elements with their own labels. `sum`, `avg` and `count`
//! take native histograms; `min`, `max`, `topk` and `bottomk` skip them,
//! as Prometheus does.

use std::collections::BTreeMap;

use promql_parser::parser::LabelModifier;

use super::names::{NAME_LABEL, PromLabels};
use super::value::{Element, Point};

/// The supported aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggregateOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Topk,
    Bottomk,
}

impl AggregateOp {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "count" => Self::Count,
            "topk" => Self::Topk,
            "bottomk" => Self::Bottomk,
            _ => return None,
        })
    }

    pub(crate) fn takes_parameter(self) -> bool {
        matches!(self, Self::Topk | Self::Bottomk)
    }
}

/// The labels that identify an element's group.
pub(crate) fn group_labels(labels: &PromLabels, modifier: Option<&LabelModifier>) -> PromLabels {
    match modifier {
        None => PromLabels::new(),
        Some(LabelModifier::Include(by)) => {
            labels.iter().filter(|(k, _)| by.labels.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        Some(LabelModifier::Exclude(without)) => labels
            .iter()
            .filter(|(k, _)| *k != NAME_LABEL && !without.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Aggregates one step's elements; `k` is the parameter of `topk`/`bottomk`.
pub(crate) fn aggregate(
    op: AggregateOp,
    modifier: Option<&LabelModifier>,
    elements: Vec<Element>,
    k: f64,
) -> Vec<Element> {
    let mut groups: BTreeMap<PromLabels, Vec<Element>> = BTreeMap::new();
    for element in elements {
        groups.entry(group_labels(&element.labels, modifier)).or_default().push(element);
    }
    let mut out = Vec::new();
    for (labels, members) in groups {
        match op {
            AggregateOp::Topk | AggregateOp::Bottomk => out.extend(top(op == AggregateOp::Topk, members, k)),
            _ => {
                if let Some(point) = combine(op, &members) {
                    out.push(Element { labels, point });
                }
            }
        }
    }
    out
}

/// `sum`, `avg`, `min`, `max` or `count` of one group; None when nothing counts
/// (floats mixed with histograms in `sum`/`avg`, only histograms in `min`/`max`).
fn combine(op: AggregateOp, members: &[Element]) -> Option<Point> {
    if op == AggregateOp::Count {
        return Some(Point::Float(members.len() as f64));
    }
    let floats: Vec<f64> =
        members.iter().filter_map(|e| if let Point::Float(v) = e.point { Some(v) } else { None }).collect();
    let natives: Vec<_> =
        members.iter().filter_map(|e| if let Point::Native(h) = &e.point { Some(&**h) } else { None }).collect();
    match op {
        AggregateOp::Min | AggregateOp::Max => {
            let want_min = op == AggregateOp::Min;
            floats
                .into_iter()
                .reduce(|best, v| {
                    let better = if want_min { v < best } else { v > best };
                    if better || best.is_nan() { v } else { best }
                })
                .map(Point::Float)
        }
        AggregateOp::Sum | AggregateOp::Avg => {
            let divisor = if op == AggregateOp::Avg { members.len() as f64 } else { 1.0 };
            match (floats.is_empty(), natives.is_empty()) {
                (false, true) => Some(Point::Float(floats.iter().sum::<f64>() / divisor)),
                (true, false) => {
                    let mut total = natives[0].scaled(0.0);
                    for h in natives {
                        total.add(h, 1.0 / divisor);
                    }
                    Some(Point::Native(Box::new(total)))
                }
                _ => None,
            }
        }
        AggregateOp::Count | AggregateOp::Topk | AggregateOp::Bottomk => None,
    }
}

/// The `k` largest (or smallest) float elements; NaN ranks last either way.
fn top(largest: bool, members: Vec<Element>, k: f64) -> Vec<Element> {
    if k < 1.0 {
        return Vec::new();
    }
    let k = if k >= members.len() as f64 { members.len() } else { k as usize };
    let mut floats: Vec<(f64, Element)> =
        members.into_iter().filter_map(|e| if let Point::Float(v) = e.point { Some((v, e)) } else { None }).collect();
    floats.sort_by(|(a, _), (b, _)| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ if largest => b.total_cmp(a),
        _ => a.total_cmp(b),
    });
    floats.into_iter().take(k).map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::label::Labels;

    fn values(elements: &[Element]) -> Vec<(Vec<(String, String)>, f64)> {
        elements
            .iter()
            .map(|e| {
                let Point::Float(v) = e.point else { panic!("float") };
                (e.labels.clone().into_iter().collect(), v)
            })
            .collect()
    }

    fn input() -> Vec<Element> {
        vec![
            Element::float(&[("__name__", "m"), ("job", "api"), ("host", "a")], 1.0),
            Element::float(&[("__name__", "m"), ("job", "api"), ("host", "b")], 4.0),
            Element::float(&[("__name__", "m"), ("job", "worker"), ("host", "c")], 10.0),
        ]
    }

    fn by(labels: &[&str]) -> LabelModifier {
        LabelModifier::Include(Labels { labels: labels.iter().map(|l| l.to_string()).collect() })
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn sum_avg_min_max_count_by_job() {
        let job = by(&["job"]);
        let run = |op| values(&aggregate(op, Some(&job), input(), 0.0));
        let api = vec![pair("job", "api")];
        let worker = vec![pair("job", "worker")];
        assert_eq!(run(AggregateOp::Sum), vec![(api.clone(), 5.0), (worker.clone(), 10.0)]);
        assert_eq!(run(AggregateOp::Avg), vec![(api.clone(), 2.5), (worker.clone(), 10.0)]);
        assert_eq!(run(AggregateOp::Min), vec![(api.clone(), 1.0), (worker.clone(), 10.0)]);
        assert_eq!(run(AggregateOp::Max), vec![(api.clone(), 4.0), (worker.clone(), 10.0)]);
        assert_eq!(run(AggregateOp::Count), vec![(api, 2.0), (worker, 1.0)]);
        assert_eq!(values(&aggregate(AggregateOp::Sum, None, input(), 0.0)), vec![(vec![], 15.0)]);
    }

    #[test]
    fn without_drops_the_listed_labels_and_the_name() {
        let without = LabelModifier::Exclude(Labels { labels: vec!["host".into()] });
        let out = values(&aggregate(AggregateOp::Sum, Some(&without), input(), 0.0));
        assert_eq!(out, vec![(vec![pair("job", "api")], 5.0), (vec![pair("job", "worker")], 10.0)]);
    }

    #[test]
    fn topk_and_bottomk_keep_the_elements() {
        let out = values(&aggregate(AggregateOp::Topk, None, input(), 2.0));
        assert_eq!(out.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![10.0, 4.0]);
        assert!(out[0].0.contains(&pair("__name__", "m")), "labels are kept: {out:?}");
        let out = values(&aggregate(AggregateOp::Bottomk, Some(&by(&["job"])), input(), 1.0));
        assert_eq!(out.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![1.0, 10.0]);
        assert!(aggregate(AggregateOp::Topk, None, input(), 0.0).is_empty());
    }
}
