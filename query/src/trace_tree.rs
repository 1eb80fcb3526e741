//! The span tree of one trace on the server, so a huge trace can be sent to
//! a browser in windows (the top levels, one subtree, the ancestors of
//! chosen spans) and summed up (levels, critical path, where errors start)
//! without the browser holding every span. Spans come in start order;
//! everything is iterative, because traces can be thousands of levels deep.

use std::collections::HashMap;

use crate::trace_outline::OutlineSpan;

/// Parent/child links of a trace's spans, by index into its outline.
#[derive(Debug)]
pub(crate) struct TraceTree {
    parent: Vec<Option<usize>>,
    /// Each span's children, in start order.
    children: Vec<Vec<usize>>,
    /// Spans without a parent in the trace: true roots and orphans, in start order.
    roots: Vec<usize>,
    depth: Vec<usize>,
    descendants: Vec<usize>,
    /// Spans that name a parent the trace does not hold (or that sit on a
    /// parent cycle, which is cut there).
    orphans: usize,
}

impl TraceTree {
    /// The tree of `spans`, which are in start order.
    pub(crate) fn new(spans: &[OutlineSpan]) -> Self {
        let count = spans.len();
        let index: HashMap<&str, usize> = spans.iter().enumerate().map(|(i, s)| (s.span_id.as_str(), i)).collect();
        let mut parent = vec![None; count];
        let mut children = vec![Vec::new(); count];
        let mut roots = Vec::new();
        let mut orphans = 0;
        for (i, span) in spans.iter().enumerate() {
            match span.parent_span_id.as_deref().and_then(|p| index.get(p)) {
                Some(&p) if p != i => {
                    parent[i] = Some(p);
                    children[p].push(i);
                }
                _ => {
                    orphans += usize::from(span.parent_span_id.is_some());
                    roots.push(i);
                }
            }
        }
        let mut tree =
            TraceTree { parent, children, roots, depth: vec![usize::MAX; count], descendants: vec![0; count], orphans };
        let mut order = Vec::with_capacity(count);
        for root in tree.roots.clone() {
            tree.assign_depths(root, &mut order);
        }
        // Spans not reached from a root sit on a parent cycle (bad data):
        // each is cut from its parent and becomes a root, like an orphan.
        for i in 0..count {
            if tree.depth[i] == usize::MAX {
                if let Some(p) = tree.parent[i].take() {
                    tree.children[p].retain(|&c| c != i);
                }
                tree.orphans += 1;
                tree.roots.push(i);
                tree.assign_depths(i, &mut order);
            }
        }
        tree.roots.sort_unstable();
        for &i in order.iter().rev() {
            if let Some(p) = tree.parent[i] {
                tree.descendants[p] += tree.descendants[i] + 1;
            }
        }
        tree
    }

    /// Gives `root`'s subtree its depths; appends it to `order` parents first.
    fn assign_depths(&mut self, root: usize, order: &mut Vec<usize>) {
        self.depth[root] = 0;
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            order.push(i);
            for &c in &self.children[i] {
                self.depth[c] = self.depth[i] + 1;
                stack.push(c);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.parent.len()
    }

    pub(crate) fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    pub(crate) fn depth(&self, i: usize) -> usize {
        self.depth[i]
    }

    pub(crate) fn descendants(&self, i: usize) -> usize {
        self.descendants[i]
    }

    pub(crate) fn orphans(&self) -> usize {
        self.orphans
    }

    /// The spans of a window, in start order: every root (or, `under` a
    /// span, all its children) whatever their number, then whole levels
    /// below them while the total stays within `max_spans`; and the spans
    /// of `reveal` with all their ancestors, so any chosen span can be
    /// shown in place.
    pub(crate) fn window(&self, under: Option<usize>, max_spans: usize, reveal: &[usize]) -> Vec<usize> {
        let mut keep = vec![false; self.len()];
        let mut level = match under {
            Some(span) => self.children[span].clone(),
            None => self.roots.clone(),
        };
        let mut kept = 0;
        let mut first = true;
        while !level.is_empty() && (first || kept + level.len() <= max_spans) {
            first = false;
            kept += level.len();
            for &i in &level {
                keep[i] = true;
            }
            level = level.iter().flat_map(|&i| self.children[i].iter().copied()).collect();
        }
        // A span on a revealed chain has every ancestor marked already.
        let mut chained = vec![false; self.len()];
        for &span in reveal {
            let mut at = Some(span);
            while let Some(i) = at.filter(|&i| !chained[i]) {
                chained[i] = true;
                keep[i] = true;
                at = self.parent[i];
            }
        }
        (0..self.len()).filter(|&i| keep[i]).collect()
    }

    /// The critical path: from the end of the root that ends last, the
    /// child that finished last before the current point is what its parent
    /// waited for; its own path is followed, then the search goes on before
    /// that child started. The spans on it, in start order.
    pub(crate) fn critical_path(&self, spans: &[OutlineSpan]) -> Vec<usize> {
        let end = |i: usize| spans[i].start_offset_nanos.saturating_add(spans[i].duration_nanos);
        let Some(root) = self.roots.iter().copied().reduce(|a, b| if end(b) > end(a) { b } else { a }) else {
            return Vec::new();
        };
        let mut path = Vec::new();
        let mut work = vec![(root, end(root))];
        while let Some((i, cutoff)) = work.pop() {
            path.push(i);
            let start = spans[i].start_offset_nanos;
            let mut cursor = end(i).min(cutoff);
            let mut kids = self.children[i].clone();
            kids.sort_by_key(|&c| std::cmp::Reverse(end(c)));
            for c in kids {
                if cursor <= start {
                    break;
                }
                if spans[c].start_offset_nanos >= cursor {
                    continue;
                }
                work.push((c, cursor));
                cursor = spans[c].start_offset_nanos;
            }
        }
        path.sort_unstable();
        path
    }

    /// Where errors start: error spans none of whose children is an error,
    /// in start order.
    pub(crate) fn error_origins(&self, spans: &[OutlineSpan]) -> Vec<usize> {
        (0..self.len()).filter(|&i| spans[i].error && !self.children[i].iter().any(|&c| spans[c].error)).collect()
    }

    /// The nearest `at_most` ancestors of `span`, root side first.
    pub(crate) fn ancestors(&self, span: usize, at_most: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut at = self.parent[span];
        while let Some(i) = at.filter(|_| chain.len() < at_most) {
            chain.push(i);
            at = self.parent[i];
        }
        chain.reverse();
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans named by their IDs, in the given (start) order; each item is
    /// (id, parent, start, duration, error).
    fn spans(items: &[(&str, Option<&str>, i64, i64, bool)]) -> Vec<OutlineSpan> {
        items
            .iter()
            .map(|&(id, parent, start, duration, error)| OutlineSpan {
                span_id: id.to_owned(),
                parent_span_id: parent.map(str::to_owned),
                name: id.to_owned(),
                service_name: "svc".to_owned(),
                kind: "internal".to_owned(),
                start_offset_nanos: start,
                duration_nanos: duration,
                error,
                link_count: 0,
                event_count: 0,
                depth: 0,
                child_count: 0,
                descendant_count: 0,
            })
            .collect()
    }

    fn ids(spans: &[OutlineSpan], indices: &[usize]) -> Vec<String> {
        indices.iter().map(|&i| spans[i].span_id.clone()).collect()
    }

    /// root ─ a ─ a1 (error), a2
    ///      └ b (error) ─ b1 (error) ─ b11
    fn sample() -> Vec<OutlineSpan> {
        spans(&[
            ("root", None, 0, 100, false),
            ("a", Some("root"), 10, 30, false),
            ("a1", Some("a"), 20, 10, true),
            ("a2", Some("a"), 21, 5, false),
            ("b", Some("root"), 45, 50, true),
            ("b1", Some("b"), 50, 40, true),
            ("b11", Some("b1"), 60, 20, false),
        ])
    }

    #[test]
    fn depths_and_descendant_counts() {
        let spans = sample();
        let tree = TraceTree::new(&spans);
        assert_eq!((0..7).map(|i| tree.depth(i)).collect::<Vec<_>>(), [0, 1, 2, 2, 1, 2, 3]);
        assert_eq!((0..7).map(|i| tree.descendants(i)).collect::<Vec<_>>(), [6, 2, 0, 0, 2, 1, 0]);
        assert_eq!(tree.orphans(), 0);
    }

    #[test]
    fn a_window_takes_whole_levels_within_the_budget() {
        let spans = sample();
        let tree = TraceTree::new(&spans);
        assert_eq!(ids(&spans, &tree.window(None, 1, &[])), ["root"]);
        assert_eq!(ids(&spans, &tree.window(None, 3, &[])), ["root", "a", "b"]);
        // Level 2 has three spans: 3 + 3 > 5, so it is left out whole.
        assert_eq!(ids(&spans, &tree.window(None, 5, &[])), ["root", "a", "b"]);
        assert_eq!(tree.window(None, 7, &[]).len(), 7);
        // Under a span: all its children, even beyond the budget, then levels.
        assert_eq!(ids(&spans, &tree.window(Some(0), 1, &[])), ["a", "b"]);
        assert_eq!(ids(&spans, &tree.window(Some(4), 2, &[])), ["b1", "b11"]);
        assert_eq!(ids(&spans, &tree.window(Some(6), 10, &[])), Vec::<String>::new());
    }

    #[test]
    fn revealed_spans_come_with_their_ancestors() {
        let spans = sample();
        let tree = TraceTree::new(&spans);
        assert_eq!(ids(&spans, &tree.window(None, 1, &[6, 2])), ["root", "a", "a1", "b", "b1", "b11"]);
        assert_eq!(ids(&spans, &tree.window(Some(1), 1, &[6])), ["root", "a1", "a2", "b", "b1", "b11"]);
    }

    #[test]
    fn the_critical_path_follows_what_each_parent_waited_for() {
        let spans = sample();
        let tree = TraceTree::new(&spans);
        // root ends at 100; b (45..95) ends last, b1 (50..90) inside it, b11
        // (60..80) inside that; before b started, a (10..40) and in it a1
        // (20..30); a2 (21..26) ran while a1 did, so nothing waited for it.
        assert_eq!(ids(&spans, &tree.critical_path(&spans)), ["root", "a", "a1", "b", "b1", "b11"]);
    }

    #[test]
    fn errors_start_where_no_child_failed() {
        let spans = sample();
        let tree = TraceTree::new(&spans);
        assert_eq!(ids(&spans, &tree.error_origins(&spans)), ["a1", "b1"]);
        assert_eq!(ids(&spans, &tree.ancestors(6, 10)), ["root", "b", "b1"]);
        assert_eq!(ids(&spans, &tree.ancestors(6, 2)), ["b", "b1"]);
    }

    #[test]
    fn orphans_and_parent_cycles_become_roots() {
        let spans = spans(&[
            ("x", Some("y"), 0, 10, false),
            ("y", Some("x"), 1, 10, false),
            ("lost", Some("gone"), 2, 10, false),
            ("child", Some("lost"), 3, 1, false),
            ("self", Some("self"), 4, 1, false),
        ]);
        let tree = TraceTree::new(&spans);
        // "lost" names a missing parent, "self" itself; the x/y cycle is cut at x.
        assert_eq!(tree.orphans(), 3);
        assert_eq!(ids(&spans, &tree.window(None, 1, &[])), ["x", "lost", "self"]);
        assert_eq!(tree.parent[1], Some(0));
        assert_eq!(tree.descendants(0), 1);
        assert_eq!(tree.depth(3), 1);
    }
}
