// Two traces compared by operation: span counts and summed durations per
// (service, span name), so structural differences and slow parts stand out.
import type { TraceOutline } from '../../api/types';

export interface OperationDiff {
  service: string;
  name: string;
  countA: number;
  countB: number;
  nanosA: number;
  nanosB: number;
}

function tally(trace: TraceOutline): Map<string, { service: string; name: string; count: number; nanos: number }> {
  const map = new Map<string, { service: string; name: string; count: number; nanos: number }>();
  for (const s of trace.spans) {
    const key = s.serviceName + '\u0000' + s.name;
    const entry = map.get(key) ?? { service: s.serviceName, name: s.name, count: 0, nanos: 0 };
    entry.count++;
    entry.nanos += s.durationNanos;
    map.set(key, entry);
  }
  return map;
}

/** Every operation of either trace; the biggest duration change first. */
export function diffTraces(a: TraceOutline, b: TraceOutline): OperationDiff[] {
  const ta = tally(a);
  const tb = tally(b);
  const keys = new Set([...ta.keys(), ...tb.keys()]);
  return [...keys]
    .map((k) => {
      const x = ta.get(k);
      const y = tb.get(k);
      return {
        service: (x ?? y)!.service,
        name: (x ?? y)!.name,
        countA: x?.count ?? 0,
        countB: y?.count ?? 0,
        nanosA: x?.nanos ?? 0,
        nanosB: y?.nanos ?? 0,
      };
    })
    .sort((p, q) => Math.abs(q.nanosB - q.nanosA) - Math.abs(p.nanosB - p.nanosA) || p.name.localeCompare(q.name));
}
