// The span tree of a trace outline: parent/child links, the rows the
// waterfall shows with some subtrees collapsed, and the critical path.
// Everything is iterative: traces can be 100k spans and thousands deep.

import type { OutlineSpan } from '../api/types';

export interface SpanTree {
  spans: OutlineSpan[];
  /** Index of each span's parent; -1 for roots and for spans whose parent is missing. */
  parent: Int32Array;
  depth: Int32Array;
  children: number[][];
  roots: number[];
  /** Spans whose parent span is not in the trace (a partial trace). */
  orphans: number;
  index: Map<string, number>;
}

export function buildTree(spans: OutlineSpan[]): SpanTree {
  const index = new Map<string, number>();
  spans.forEach((s, i) => index.set(s.spanId, i));
  const parent = new Int32Array(spans.length).fill(-1);
  const children: number[][] = spans.map(() => []);
  const roots: number[] = [];
  let orphans = 0;
  spans.forEach((s, i) => {
    const p = s.parentSpanId ? index.get(s.parentSpanId) : undefined;
    if (p === undefined || p === i) {
      roots.push(i);
      if (s.parentSpanId) orphans++;
    } else {
      parent[i] = p;
      children[p].push(i);
    }
  });
  const byStart = (a: number, b: number) => spans[a].startOffsetNanos - spans[b].startOffsetNanos;
  for (const list of children) list.sort(byStart);
  roots.sort(byStart);
  const depth = new Int32Array(spans.length);
  const stack = [...roots];
  while (stack.length) {
    const i = stack.pop()!;
    for (const c of children[i]) {
      depth[c] = depth[i] + 1;
      stack.push(c);
    }
  }
  return { spans, parent, depth, children, roots, orphans, index };
}

/**
 * `loaded` with the spans of `more` it lacks, in the server's order (start,
 * then span ID), so windows of a large trace merge into one outline.
 */
export function mergeSpans(loaded: OutlineSpan[], more: OutlineSpan[]): OutlineSpan[] {
  const known = new Set(loaded.map((s) => s.spanId));
  const added = more.filter((s) => !known.has(s.spanId));
  if (!added.length) return loaded;
  return [...loaded, ...added].sort(
    (a, b) => a.startOffsetNanos - b.startOffsetNanos || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0),
  );
}

/** Children of span `i` in the trace that are not loaded yet (windowed outlines). */
export function unloadedChildren(tree: SpanTree, i: number): number {
  return Math.max(0, (tree.spans[i].childCount ?? 0) - tree.children[i].length);
}

/** Span indices in tree order, skipping the descendants of collapsed spans. */
export function visibleRows(tree: SpanTree, collapsed: ReadonlySet<number>): number[] {
  const rows: number[] = [];
  const stack = [...tree.roots].reverse();
  while (stack.length) {
    const i = stack.pop()!;
    rows.push(i);
    if (collapsed.has(i)) continue;
    const kids = tree.children[i];
    for (let k = kids.length - 1; k >= 0; k--) stack.push(kids[k]);
  }
  return rows;
}

/** Collapses every span deeper than `depth` that has children. */
export function collapseBelow(tree: SpanTree, depth: number): Set<number> {
  const collapsed = new Set<number>();
  tree.children.forEach((kids, i) => {
    if (kids.length && tree.depth[i] >= depth) collapsed.add(i);
  });
  return collapsed;
}

/** Traces above this many spans open with deep subtrees collapsed. */
const COLLAPSE_ABOVE = 2000;
const COLLAPSED_DEPTH = 3;

/**
 * The collapsed spans a URL's `collapse` base names: `none`, `below-N`
 * (every span with children at depth N or deeper), or, when absent, the
 * default (deep subtrees of traces too big to open whole).
 */
export function baseCollapsed(tree: SpanTree, base: string | null): Set<number> {
  if (base === 'none') return new Set();
  const depth = base?.match(/^below-(\d+)$/)?.[1];
  if (depth !== undefined) return collapseBelow(tree, Number(depth));
  return tree.spans.length > COLLAPSE_ABOVE ? collapseBelow(tree, COLLAPSED_DEPTH) : new Set();
}

/**
 * The collapsed spans of a URL: the base, with the spans named in
 * `toggled` (span IDs, comma-separated) flipped. Unknown IDs are ignored.
 */
export function collapsedFromUrl(tree: SpanTree, base: string | null, toggledIds: string): Set<number> {
  const collapsed = baseCollapsed(tree, base);
  for (const id of toggledIds.split(',')) {
    const i = tree.index.get(id);
    if (i === undefined || !tree.children[i].length) continue;
    if (collapsed.has(i)) collapsed.delete(i);
    else collapsed.add(i);
  }
  return collapsed;
}

/** The span IDs whose state in `collapsed` differs from the base: what the URL keeps. */
export function toggledIds(tree: SpanTree, base: string | null, collapsed: ReadonlySet<number>): string {
  const from = baseCollapsed(tree, base);
  const ids: string[] = [];
  tree.children.forEach((kids, i) => {
    if (kids.length && from.has(i) !== collapsed.has(i)) ids.push(tree.spans[i].spanId);
  });
  return ids.join(',');
}

/** Expands the ancestors of span `i` so it becomes visible. */
export function reveal(tree: SpanTree, collapsed: ReadonlySet<number>, i: number): Set<number> {
  const next = new Set(collapsed);
  for (let p = tree.parent[i]; p !== -1; p = tree.parent[p]) next.delete(p);
  return next;
}

const end = (s: OutlineSpan) => s.startOffsetNanos + s.durationNanos;

/**
 * The critical path: from the end of the longest root backwards, the child
 * that finished last before the current point is what the parent waited
 * for; its own critical path is followed, then the search continues before
 * that child started. Returns the spans on the path.
 */
export function criticalPath(tree: SpanTree): Set<number> {
  const path = new Set<number>();
  if (!tree.roots.length) return path;
  const root = tree.roots.reduce((a, b) => (end(tree.spans[b]) > end(tree.spans[a]) ? b : a));
  const work: [number, number][] = [[root, end(tree.spans[root])]];
  while (work.length) {
    const [i, cutoff] = work.pop()!;
    path.add(i);
    const span = tree.spans[i];
    let cursor = Math.min(end(span), cutoff);
    const kids = [...tree.children[i]].sort((a, b) => end(tree.spans[b]) - end(tree.spans[a]));
    for (const c of kids) {
      if (cursor <= span.startOffsetNanos) break;
      const child = tree.spans[c];
      if (child.startOffsetNanos >= cursor) continue;
      work.push([c, cursor]);
      cursor = child.startOffsetNanos;
    }
  }
  return path;
}

/** Spans whose name, service or ID contains `text` (case-insensitive). */
export function findSpans(tree: SpanTree, text: string): number[] {
  const needle = text.trim().toLowerCase();
  if (!needle) return [];
  const hits: number[] = [];
  tree.spans.forEach((s, i) => {
    if (
      s.name.toLowerCase().includes(needle) ||
      s.serviceName.toLowerCase().includes(needle) ||
      s.spanId.startsWith(needle)
    )
      hits.push(i);
  });
  return hits;
}

/** Span count per service, most spans first. */
export function spansPerService(tree: SpanTree): [string, number][] {
  const counts = new Map<string, number>();
  for (const s of tree.spans) counts.set(s.serviceName, (counts.get(s.serviceName) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}
