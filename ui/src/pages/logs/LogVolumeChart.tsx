import { useMemo } from 'react';
import uPlot from 'uplot';
import type { LogVolume } from '../../api/types';
import { Chart } from '../../components/Chart';
import { axis } from '../../lib/chartTheme';
import { formatCount, formatLocal, formatNumber } from '../../lib/format';
import { severityColor, volumeChartData } from '../../lib/logs';

/** Whole-number ticks: counts of records have no halves. */
const COUNT_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((p) => m * p)).sort((a, b) => a - b);

/**
 * Records per step as bars stacked by severity band; drag across the chart
 * to search that stretch of time.
 */
export function LogVolumeChart({ volume, onZoom }: { volume: LogVolume; onZoom: (startMs: number, endMs: number) => void }) {
  const { data, options } = useMemo(() => {
    const chart = volumeChartData(volume);
    const bars = uPlot.paths.bars!({ size: [0.9, 40], align: 1 });
    const options: Omit<uPlot.Options, 'width' | 'height'> = {
      legend: { show: true },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      scales: {
        x: { time: true, range: [volume.start / 1000, volume.end / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max(max, 1)] },
      },
      axes: [axis(), axis({ values: (_u: uPlot, ticks: number[]) => ticks.map(formatNumber), incrs: COUNT_INCRS, size: 50 })],
      series: [
        { value: (_u, v) => (v == null ? '' : formatLocal(v * 1000)) },
        ...chart.series.map((s) => ({
          label: s.band,
          fill: severityColor(s.band),
          stroke: severityColor(s.band),
          width: 0,
          paths: bars,
          points: { show: false },
          // The legend shows the band's own count, not the top of its stack.
          value: (_u: uPlot, _v: number | null, _si: number, i: number | null) => (i == null ? '' : formatCount(s.counts[i])),
        })),
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 2) return;
            const from = u.posToVal(u.select.left, 'x') * 1000;
            const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
            onZoom(Math.floor(from), Math.ceil(to));
          },
        ],
      },
    };
    return { data: [chart.xs, ...chart.series.map((s) => s.stacked)] as uPlot.AlignedData, options };
  }, [volume, onZoom]);
  return (
    <section className="panel log-volume" aria-label="Log volume" data-total={volume.total}>
      <h3>
        Volume <span className="muted" data-testid="log-total">{formatCount(volume.total)} {volume.total === 1 ? 'record' : 'records'}</span>{' '}
        <small className="muted">drag across the chart to narrow the time range</small>
      </h3>
      <Chart options={options} data={data} height={150} testId="log-volume" />
    </section>
  );
}
