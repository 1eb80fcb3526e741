import { describe, expect, it } from 'vitest';
import type { OutlineSpan } from '../api/types';
import { adjustSkew } from './skew';
import { buildTree } from './tree';

function span(spanId: string, parentSpanId: string | null, serviceName: string, start: number, duration: number): OutlineSpan {
  return {
    spanId,
    parentSpanId,
    name: spanId,
    serviceName,
    kind: 'internal',
    startOffsetNanos: start,
    durationNanos: duration,
    error: false,
    linkCount: 0,
    eventCount: 0,
  };
}

describe('adjustSkew', () => {
  it('moves a remote child (and its subtree) into its parent, leaves same-service spans alone', () => {
    const spans = [
      span('root', null, 'web', 100, 100),
      span('early', 'root', 'db', 50, 20), // 50 ns before its parent: +50
      span('early.child', 'early', 'db', 55, 5), // moves with it
      span('late', 'root', 'cache', 190, 30), // ends 20 ns after: -20
      span('local', 'root', 'web', 90, 5), // same clock: unchanged
    ];
    const { spans: adjusted, shifted } = adjustSkew(buildTree(spans));
    expect(adjusted.map((s) => s.startOffsetNanos)).toEqual([100, 100, 105, 170, 90]);
    expect(shifted).toBe(2);
    expect(spans[1].startOffsetNanos).toBe(50); // the input is not changed
  });
});
