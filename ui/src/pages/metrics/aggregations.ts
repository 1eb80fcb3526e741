// Which query_range aggregations fit a metric type (docs/metrics.md).
export function aggregationsFor(type: string): string[] {
  switch (type) {
    case 'gauge':
      return ['avg', 'sum', 'min', 'max'];
    case 'sum':
      return ['rate', 'sum', 'avg', 'min', 'max'];
    case 'histogram':
    case 'exponential_histogram':
    case 'summary':
      return ['quantile', 'rate'];
    default:
      return ['avg'];
  }
}

/** Label names over a set of series, most common first. */
export function labelNames(series: { labels: Record<string, string> }[]): string[] {
  const counts = new Map<string, number>();
  for (const s of series) for (const k of Object.keys(s.labels)) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

/** Chart data: one x axis over the step times and the exemplar times. */
export function alignSeries(
  series: { points: [number, number][] }[],
  exemplars: { time_ms: number; value: number | null }[],
): (number | null)[][] {
  const times = new Set<number>();
  for (const s of series) for (const [t] of s.points) times.add(t);
  for (const e of exemplars) if (e.value !== null) times.add(e.time_ms);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column: (number | null)[] = new Array(xs.length).fill(null);
    for (const [t, v] of s.points) column[index.get(t)!] = v;
    return column;
  });
  const ex: (number | null)[] = new Array(xs.length).fill(null);
  for (const e of exemplars) if (e.value !== null) ex[index.get(e.time_ms)!] = e.value;
  return [xs.map((t) => t / 1000), ...columns, ex];
}
