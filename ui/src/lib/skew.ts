// Clock-skew adjustment, off by default and always visible when on: a child
// span from another service (another host's clock) that does not fit inside
// its parent is shifted, with its subtree, by the least amount that makes it
// fit (it cannot fit when it is longer than the parent: then it is aligned to
// the parent's start). Spans of one service share a clock and are not moved.
import type { OutlineSpan } from '../api/types';
import type { SpanTree } from './tree';

export interface Adjusted {
  spans: OutlineSpan[];
  /** Spans shifted themselves (not counting the descendants that moved along). */
  shifted: number;
}

export function adjustSkew(tree: SpanTree): Adjusted {
  const spans = tree.spans.map((s) => ({ ...s }));
  let shifted = 0;
  // (span, shift inherited from its ancestors)
  const stack: [number, number][] = tree.roots.map((r) => [r, 0]);
  while (stack.length) {
    const [i, inherited] = stack.pop()!;
    let shift = inherited;
    const p = tree.parent[i];
    if (p !== -1 && spans[p].serviceName !== spans[i].serviceName) {
      const parent = spans[p]; // already adjusted: parents are visited first
      const start = spans[i].startOffsetNanos + inherited;
      const end = start + spans[i].durationNanos;
      const parentEnd = parent.startOffsetNanos + parent.durationNanos;
      let delta = 0;
      if (start < parent.startOffsetNanos || spans[i].durationNanos > parent.durationNanos) {
        delta = parent.startOffsetNanos - start;
      } else if (end > parentEnd) {
        delta = parentEnd - end;
      }
      if (delta !== 0) {
        shift += delta;
        shifted++;
      }
    }
    spans[i].startOffsetNanos += shift;
    for (const c of tree.children[i]) stack.push([c, shift]);
  }
  return { spans, shifted };
}
