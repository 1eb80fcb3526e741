import { useMemo, useState } from 'react';
import { useNavigate } from 'react-router-dom';
import type uPlot from 'uplot';
import { getJson, query } from '../api/client';
import type { Exemplar, MetricInfo, RangeResponse, SeriesInfo } from '../api/types';
import { Chart } from '../components/Chart';
import { RangeBar } from '../components/RangeBar';
import { ErrorBox, Empty, Loading } from '../components/Status';
import { axis } from '../lib/chartTheme';
import { seriesColor } from '../lib/colors';
import { formatCount, formatNumber } from '../lib/format';
import { resolveRange } from '../lib/timeRange';
import { useApi } from '../lib/useApi';
import { useUrlState } from '../lib/useUrlState';
import { aggregationsFor, alignSeries, labelNames } from './metrics/aggregations';

/** Metric catalog, series labels, and query_range charts with exemplars. */
export function MetricsPage() {
  const { params, get, set } = useUrlState();
  const { start, end } = useMemo(() => resolveRange(params), [params]);
  const catalogPath = '/api/v1/metrics' + query({ start, end });
  const catalog = useApi(catalogPath, (signal) => getJson<{ metrics: MetricInfo[]; truncated?: boolean }>(catalogPath, signal));
  const [filter, setFilter] = useState('');
  const name = get('metric');
  const metrics = catalog.state === 'done' ? catalog.data.metrics : [];
  const metric = metrics.find((m) => m.name === name);
  return (
    <div className="metrics-page">
      <aside className="metric-catalog" aria-label="Metric catalog">
        <RangeBar />
        <input type="search" placeholder="Search metrics" aria-label="Search metrics" value={filter} onChange={(e) => setFilter(e.target.value)} />
        {catalog.state === 'loading' && <Loading what="metrics" />}
        {catalog.state === 'error' && <ErrorBox error={catalog.error} />}
        <ul>
          {metrics
            .filter((m) => m.name.toLowerCase().includes(filter.toLowerCase()))
            .map((m) => (
              <li key={m.name}>
                <button className={m.name === name ? 'active' : undefined} onClick={() => set({ metric: m.name, agg: null, group: null, q: null })} title={m.description}>
                  {m.name}
                  <div className="muted">
                    {m.type} {m.unit && `· ${m.unit}`} · {formatCount(m.series)} series
                  </div>
                </button>
              </li>
            ))}
        </ul>
      </aside>
      <section className="metric-main">
        {catalog.state === 'done' && metrics.length === 0 && <Empty>No metrics in this time range.</Empty>}
        {!metric && metrics.length > 0 && <Empty>Choose a metric.</Empty>}
        {metric && <MetricView key={metric.name} metric={metric} start={start} end={end} />}
      </section>
    </div>
  );
}

function MetricView({ metric, start, end }: { metric: MetricInfo; start: string; end: string }) {
  const { get, set } = useUrlState();
  const aggregations = aggregationsFor(metric.type);
  const aggregation = aggregations.includes(get('agg')) ? get('agg') : aggregations[0];
  const quantile = get('q', '0.95');
  const groupBy = get('group');
  // Label matchers (`label=value`, `label!=value`), comma-separated in the
  // URL; the chart, its exemplars and the series list all use them.
  const matchText = get('match');
  const matchers = useMemo(() => parseMatchers(matchText), [matchText]);
  const seriesPath =
    `/api/v1/metrics/${encodeURIComponent(metric.name)}/series` + query({ start, end, limit: '200', match: matchers });
  const series = useApi(seriesPath, (signal) => getJson<{ series: SeriesInfo[]; truncated?: boolean }>(seriesPath, signal));
  const labels = series.state === 'done' ? labelNames(series.data.series) : [];
  const rangePath =
    '/api/v1/metrics/query_range' +
    query({
      metric: metric.name,
      aggregation,
      quantile: aggregation === 'quantile' ? quantile : undefined,
      group_by: groupBy || undefined,
      match: matchers,
      start,
      end,
    });
  const range = useApi(rangePath, (signal) => getJson<RangeResponse>(rangePath, signal));
  const bounds = useMemo(() => [Date.parse(start) / 1000, Date.parse(end) / 1000] as [number, number], [start, end]);
  const exemplarPath =
    `/api/v1/metrics/${encodeURIComponent(metric.name)}/exemplars` + query({ start, end, match: matchers });
  const addMatcher = (matcher: string) =>
    set({ match: matchers.includes(matcher) ? matchText : [...matchers, matcher].join(', ') });
  const exemplars = useApi(exemplarPath, (signal) => getJson<{ exemplars: Exemplar[] }>(exemplarPath, signal));

  return (
    <>
      <h2>
        {metric.name} <small className="muted">{metric.type} {metric.unit}</small>
      </h2>
      {metric.description && <p className="muted">{metric.description}</p>}
      <div className="toolbar">
        <label>
          Aggregation{' '}
          <select aria-label="Aggregation" value={aggregation} onChange={(e) => set({ agg: e.target.value })}>
            {aggregations.map((a) => (
              <option key={a}>{a}</option>
            ))}
          </select>
        </label>
        {aggregation === 'quantile' && (
          <label>
            Quantile{' '}
            <select aria-label="Quantile" value={quantile} onChange={(e) => set({ q: e.target.value })}>
              {['0.5', '0.9', '0.95', '0.99'].map((q) => (
                <option key={q}>{q}</option>
              ))}
            </select>
          </label>
        )}
        <MatcherInput key={matchText} text={matchText} onChange={(text) => set({ match: text })} />
        <label>
          Group by{' '}
          <select aria-label="Group by" value={groupBy} onChange={(e) => set({ group: e.target.value })}>
            <option value="">nothing</option>
            {labels.map((l) => (
              <option key={l}>{l}</option>
            ))}
          </select>
        </label>
      </div>
      {range.state === 'loading' && <Loading what="chart" />}
      {range.state === 'error' && <ErrorBox error={range.error} />}
      {range.state === 'done' && (
        <RangeChart
          range={range.data}
          exemplars={exemplars.state === 'done' ? exemplars.data.exemplars : []}
          bounds={bounds}
        />
      )}
      {exemplars.state === 'error' && <ErrorBox error={exemplars.error} />}
      <h3>Series {series.state === 'done' && `(${formatCount(series.data.series.length)}${series.data.truncated ? '+' : ''})`}</h3>
      {series.state === 'error' && <ErrorBox error={series.error} />}
      {series.state === 'done' && (
        <table className="results" aria-label="Series">
          <tbody>
            {series.data.series.map((s) => (
              <tr key={s.series_id}>
                <td className="mono">{s.series_id}</td>
                <td className="labels">
                  {Object.entries(s.labels).map(([k, v]) => (
                    <button
                      type="button"
                      key={k}
                      className="label-chip"
                      title="Show only series with this label"
                      onClick={() => addMatcher(`${k}=${v}`)}
                    >
                      {k}={v}
                    </button>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** Lines per group; exemplars as points on their own scale, a click opens the span. */
function RangeChart({ range, exemplars, bounds }: { range: RangeResponse; exemplars: Exemplar[]; bounds: [number, number] }) {
  const navigate = useNavigate();
  const linked = useMemo(() => exemplars.filter((e) => e.trace_id && e.value !== null), [exemplars]);
  const { data, options } = useMemo(() => {
    const data = alignSeries(range.series, linked) as uPlot.AlignedData;
    const label = (labels: Record<string, string>) =>
      Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ') || range.aggregation;
    const exemplarAt = new Map<number, Exemplar>();
    linked.forEach((e) => exemplarAt.set(e.time_ms / 1000, e));
    // A quantile is in the metric's unit, like the exemplar values: one axis.
    // Other aggregations (rates, sums) get a second axis for the exemplars.
    const shared = range.aggregation === 'quantile';
    const fewPoints = range.series.every((s) => s.points.length < 30);
    const options: Omit<uPlot.Options, 'width' | 'height'> = {
      scales: { x: { time: true, range: bounds }, ex: {} },
      axes: [
        axis(),
        axis({ values: (_u: uPlot, t: number[]) => t.map(formatNumber), size: 60 }),
        ...(shared
          ? []
          : [axis({ scale: 'ex', side: 1, label: 'exemplar value', values: (_u: uPlot, t: number[]) => t.map(formatNumber), size: 60, grid: { show: false } })]),
      ],
      series: [
        {},
        ...range.series.map((s, i) => ({
          label: label(s.labels),
          stroke: seriesColor(i),
          width: 2,
          spanGaps: true,
          points: { show: fewPoints, size: 6, fill: seriesColor(i) },
        })),
        {
          label: 'exemplars',
          scale: shared ? 'y' : 'ex',
          paths: () => null,
          points: { show: true, size: 9, fill: '#e15759', stroke: '#e15759' },
        },
      ],
      hooks: {
        ready: [
          (u: uPlot) =>
            u.over.addEventListener('click', () => {
              const i = u.cursor.idx;
              const e = i == null ? undefined : exemplarAt.get(u.data[0][i] as number);
              if (e?.trace_id) navigate(`/trace/${e.trace_id}${e.span_id ? `?span=${e.span_id}` : ''}`);
            }),
        ],
      },
    };
    return { data, options };
  }, [range, linked, navigate, bounds]);
  const points = range.series.reduce((n, s) => n + s.points.length, 0);
  if (!range.series.length) return <Empty>No points in this time range.</Empty>;
  return (
    <div data-testid="metric-chart" data-points={points} data-exemplars={linked.length}>
      <Chart options={options} data={data} height={300} />
      <p className="muted">
        {formatCount(range.series.length)} series · step {range.step_ms / 1000} s · {formatCount(linked.length)} exemplars
        (red points; click one to open its span)
      </p>
      {linked.length > 0 && (
        <details>
          <summary>Exemplars</summary>
          <ul className="mono">
            {linked.slice(0, 50).map((e, i) => (
              <li key={i}>
                <a href={`/trace/${e.trace_id}?span=${e.span_id ?? ''}`} onClick={(ev) => (ev.preventDefault(), navigate(`/trace/${e.trace_id}?span=${e.span_id ?? ''}`))}>
                  {formatNumber(e.value ?? 0)} → trace {e.trace_id?.slice(0, 12)}… span {e.span_id}
                </a>
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

/** The matchers of a comma-separated `label=value, label!=value` text. */
export function parseMatchers(text: string): string[] {
  return text
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
}

/** The label matchers, applied on Enter or when the field is left. */
function MatcherInput({ text, onChange }: { text: string; onChange: (text: string) => void }) {
  const [draft, setDraft] = useState(text);
  const apply = () => {
    const normalized = parseMatchers(draft).join(', ');
    if (normalized !== text) onChange(normalized);
  };
  return (
    <label>
      Match{' '}
      <input
        aria-label="Label matchers"
        placeholder="label=value, label!=value"
        value={draft}
        size={32}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={apply}
        onKeyDown={(e) => {
          if (e.key === 'Enter') apply();
        }}
      />
    </label>
  );
}
