import { useMemo } from 'react';
import type uPlot from 'uplot';
import type { SqlColumn } from '../../api/types';
import { Chart } from '../../components/Chart';
import { isNumeric } from '../../components/ResultTable';
import { seriesColor } from '../../lib/colors';
import { axis } from '../../lib/chartTheme';
import { formatNumber } from '../../lib/format';

/** The first timestamp column, and every numeric column to draw against it. */
export function chartColumns(columns: SqlColumn[]): { time: number; values: number[] } | null {
  const time = columns.findIndex((c) => c.type.startsWith('Timestamp') || c.type.startsWith('Date'));
  const values = columns.map((c, i) => (isNumeric(c.type) ? i : -1)).filter((i) => i >= 0);
  return time >= 0 && values.length ? { time, values } : null;
}

/** A line per numeric column over the result's time column. */
export function QuickChart({ columns, rows }: { columns: SqlColumn[]; rows: unknown[][] }) {
  const plan = useMemo(() => chartColumns(columns), [columns]);
  const { data, options } = useMemo(() => {
    if (!plan) return { data: [[]] as uPlot.AlignedData, options: { series: [] } };
    const sorted = rows
      .map((r) => [Date.parse(String(r[plan.time])) / 1000, ...plan.values.map((v) => r[v] as number | null)])
      .filter((r) => Number.isFinite(r[0]))
      .sort((a, b) => (a[0] as number) - (b[0] as number));
    const data = [0, ...plan.values].map((_, k) => sorted.map((r) => r[k])) as uPlot.AlignedData;
    const options: Omit<uPlot.Options, 'width' | 'height'> = {
      axes: [axis(), axis({ values: (_u: uPlot, t: number[]) => t.map(formatNumber), size: 60 })],
      series: [{}, ...plan.values.map((v, k) => ({ label: columns[v].name, stroke: seriesColor(k), width: 1.5 }))],
    };
    return { data, options };
  }, [plan, columns, rows]);
  if (!plan) return <p className="muted">A chart needs a timestamp column and a numeric column.</p>;
  return <Chart options={options} data={data} height={220} testId="sql-chart" />;
}
