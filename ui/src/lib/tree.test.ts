import { describe, expect, it } from 'vitest';
import type { OutlineSpan } from '../api/types';
import {
  baseCollapsed,
  buildTree,
  collapseBelow,
  collapsedFromUrl,
  criticalPath,
  findSpans,
  mergeSpans,
  reveal,
  toggledIds,
  unloadedChildren,
  visibleRows,
} from './tree';

function span(spanId: string, parentSpanId: string | null, start: number, duration: number): OutlineSpan {
  return {
    spanId,
    parentSpanId,
    name: 'op ' + spanId,
    serviceName: spanId.startsWith('d') ? 'db' : 'api',
    kind: 'internal',
    startOffsetNanos: start,
    durationNanos: duration,
    error: false,
    linkCount: 0,
    eventCount: 0,
  };
}

// root(0..100) → a(0..30), b(20..90) → d1(25..85); c(40..50) under root
const spans = [
  span('r', null, 0, 100),
  span('a', 'r', 0, 30),
  span('b', 'r', 20, 70),
  span('d1', 'b', 25, 60),
  span('c', 'r', 40, 10),
  span('x', 'gone', 5, 1),
];

describe('buildTree', () => {
  it('links parents and children and counts orphans', () => {
    const tree = buildTree(spans);
    expect(tree.roots).toEqual([0, 5]);
    expect(tree.orphans).toBe(1);
    expect(tree.children[0]).toEqual([1, 2, 4]);
    expect(Array.from(tree.depth)).toEqual([0, 1, 1, 2, 1, 0]);
  });
});

describe('visibleRows', () => {
  it('lists depth-first and hides collapsed subtrees', () => {
    const tree = buildTree(spans);
    expect(visibleRows(tree, new Set())).toEqual([0, 1, 2, 3, 4, 5]);
    expect(visibleRows(tree, new Set([2]))).toEqual([0, 1, 2, 4, 5]);
    const collapsed = collapseBelow(tree, 1);
    expect([...collapsed]).toEqual([2]);
    expect(visibleRows(tree, reveal(tree, collapsed, 3))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('handles a chain thousands deep without recursion', () => {
    const chain = Array.from({ length: 50_000 }, (_, i) => span(`s${i}`, i ? `s${i - 1}` : null, i, 50_000 - i));
    const tree = buildTree(chain);
    expect(visibleRows(tree, new Set()).length).toBe(50_000);
    expect(tree.depth[49_999]).toBe(49_999);
    expect(criticalPath(tree).size).toBe(50_000);
  });
});

describe('collapsed subtrees in the URL', () => {
  it('reads a base and the spans flipped from it, and writes back only the flips', () => {
    const tree = buildTree(spans);
    expect([...baseCollapsed(tree, null)]).toEqual([]);
    expect([...baseCollapsed(tree, 'none')]).toEqual([]);
    expect([...baseCollapsed(tree, 'below-0')].sort()).toEqual([0, 2]);
    // r flipped open from below-0; b (collapsed there) stays; leaves and unknown IDs are ignored.
    const collapsed = collapsedFromUrl(tree, 'below-0', 'r,a,nope');
    expect([...collapsed]).toEqual([2]);
    expect(toggledIds(tree, 'below-0', collapsed)).toBe('r');
    expect(toggledIds(tree, null, collapsed)).toBe('b');
    expect(collapsedFromUrl(tree, null, toggledIds(tree, null, new Set([0, 2])))).toEqual(new Set([0, 2]));
  });

  it('collapses deep subtrees of a huge trace by default', () => {
    const wide = [span('root', null, 0, 10)];
    for (let i = 0; i < 700; i++) {
      wide.push(span(`p${i}`, 'root', 0, 5), span(`q${i}`, `p${i}`, 0, 4), span(`s${i}`, `q${i}`, 0, 3));
      wide.push(span(`t${i}`, `s${i}`, 0, 1));
    }
    const tree = buildTree(wide);
    // Depth 3 and deeper with children: each s (depth 3, parent of t).
    expect(baseCollapsed(tree, null).size).toBe(700);
    expect(toggledIds(tree, null, baseCollapsed(tree, null))).toBe('');
  });
});

describe('criticalPath', () => {
  it('follows the last-finishing children back in time', () => {
    const tree = buildTree(spans);
    const path = [...criticalPath(tree)].map((i) => spans[i].spanId).sort();
    // b ends at 90 (d1 inside it), then before b started at 20: a.
    expect(path).toEqual(['a', 'b', 'd1', 'r']);
  });
});

describe('findSpans', () => {
  it('matches names, services and span ID prefixes', () => {
    const tree = buildTree(spans);
    expect(findSpans(tree, 'DB')).toEqual([3]);
    expect(findSpans(tree, 'op c')).toEqual([4]);
    expect(findSpans(tree, ' ')).toEqual([]);
  });
});

describe('windows of a large trace', () => {
  const withCounts = (s: OutlineSpan, childCount: number) => ({ ...s, childCount, descendantCount: childCount });
  const top = [withCounts(spans[0], 3)];
  it('merge into one outline in start order, each span once', () => {
    const merged = mergeSpans(top, [spans[4], spans[2], spans[0]]);
    expect(merged.map((s) => s.spanId)).toEqual(['r', 'b', 'c']);
    expect(mergeSpans(merged, [spans[2]])).toBe(merged);
    // Equal starts are ordered by span ID, as the server orders them.
    const tie = mergeSpans([span('q', null, 7, 1)], [span('p', null, 7, 1)]);
    expect(tie.map((s) => s.spanId)).toEqual(['p', 'q']);
  });

  it('know which children are not loaded yet', () => {
    expect(unloadedChildren(buildTree(top), 0)).toBe(3);
    const tree = buildTree(mergeSpans(top, [spans[2]]));
    expect(unloadedChildren(tree, 0)).toBe(2);
    expect(unloadedChildren(tree, 1)).toBe(0);
  });
});
