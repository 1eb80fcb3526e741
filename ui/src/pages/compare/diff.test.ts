import { describe, expect, it } from 'vitest';
import type { OutlineSpan, TraceOutline } from '../../api/types';
import { diffTraces } from './diff';

const span = (name: string, duration: number): OutlineSpan => ({
  spanId: name + duration,
  parentSpanId: null,
  name,
  serviceName: 'api',
  kind: 'server',
  startOffsetNanos: 0,
  durationNanos: duration,
  error: false,
  linkCount: 0,
  eventCount: 0,
});
const trace = (spans: OutlineSpan[]): TraceOutline => ({
  traceId: 't',
  startTimeUnixNano: '0',
  durationNanos: 0,
  spanCount: spans.length,
  errorCount: 0,
  services: ['api'],
  spans,
});

describe('diffTraces', () => {
  it('counts and sums per operation, largest change first, one-sided ones included', () => {
    const diff = diffTraces(trace([span('a', 10), span('b', 5)]), trace([span('a', 10), span('a', 30), span('c', 1)]));
    expect(diff.map((d) => [d.name, d.countA, d.countB, d.nanosA, d.nanosB])).toEqual([
      ['a', 1, 2, 10, 40],
      ['b', 1, 0, 5, 0],
      ['c', 0, 1, 0, 1],
    ]);
  });
});
