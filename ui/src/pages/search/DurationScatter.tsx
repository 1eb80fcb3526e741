import { useMemo } from 'react';
import type uPlot from 'uplot';
import type { TraceSummary } from '../../api/types';
import { Chart } from '../../components/Chart';
import { axis } from '../../lib/chartTheme';
import { formatDuration, formatLocal, nanosToMillis } from '../../lib/format';

/** Duration over start time, one point per trace, errors in red; a click opens the trace. */
export function DurationScatter({ traces, onOpen }: { traces: TraceSummary[]; onOpen: (traceId: string) => void }) {
  const { data, options } = useMemo(() => {
    const sorted = [...traces].sort((a, b) => nanosToMillis(a.startTimeUnixNano) - nanosToMillis(b.startTimeUnixNano));
    const xs = sorted.map((t) => nanosToMillis(t.startTimeUnixNano) / 1000);
    const ok = sorted.map((t) => (t.errorCount ? null : t.durationNanos / 1e6));
    const err = sorted.map((t) => (t.errorCount ? t.durationNanos / 1e6 : null));
    const points = (fill: string) => ({ show: true, size: 8, fill, stroke: fill });
    const options: Omit<uPlot.Options, 'width' | 'height'> = {
      cursor: { points: { size: 10 }, focus: { prox: 16 } },
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [axis(), axis({ values: (_u: uPlot, ticks: number[]) => ticks.map((v) => formatDuration(v * 1e6)), size: 70 })],
      series: [
        { value: (_u, v) => (v == null ? '' : formatLocal(v * 1000)) },
        { label: 'ok', paths: () => null, points: points('#4e79a7') },
        { label: 'error', paths: () => null, points: points('#e15759') },
      ],
      hooks: {
        ready: [
          (u) => {
            u.over.addEventListener('click', () => {
              const i = u.cursor.idx;
              if (i != null && sorted[i]) onOpen(sorted[i].traceId);
            });
          },
        ],
      },
    };
    return { data: [xs, ok, err] as uPlot.AlignedData, options };
  }, [traces, onOpen]);
  return (
    <section className="panel" aria-label="Duration over time">
      <h3>Duration over time</h3>
      <Chart options={options} data={data} height={200} testId="duration-scatter" />
    </section>
  );
}
