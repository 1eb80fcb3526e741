import { useMemo } from 'react';
import { Link } from 'react-router-dom';
import type uPlot from 'uplot';
import { getJson, query } from '../api/client';
import type { OperationStats, ServiceStatsResponse } from '../api/types';
import { Chart } from '../components/Chart';
import { RangeBar } from '../components/RangeBar';
import { ErrorBox, Empty, Loading } from '../components/Status';
import { axis } from '../lib/chartTheme';
import { serviceColor } from '../lib/colors';
import { formatDuration, formatNumber } from '../lib/format';
import { resolveRange } from '../lib/timeRange';
import { useApi } from '../lib/useApi';
import { useUrlState } from '../lib/useUrlState';

const key = (o: OperationStats) => `${o.service}\u0000${o.operation}\u0000${o.kind}`;

/** Rate, errors and p50/p95/p99 per service and operation, computed from spans. */
export function ServicesPage() {
  const { params, get, set } = useUrlState();
  const { start, end } = useMemo(() => resolveRange(params), [params]);
  const service = get('service');
  const kind = get('kind');
  const path = '/api/v1/service_stats' + query({ start, end, service, kind });
  const stats = useApi(path, (signal) => getJson<ServiceStatsResponse>(path, signal));
  const selectedKey = get('op');

  return (
    <div className="services-page">
      <div className="toolbar">
        <RangeBar />
        <label>
          Kind{' '}
          <select value={kind} onChange={(e) => set({ kind: e.target.value })} aria-label="Span kind">
            <option value="">all</option>
            {['server', 'client', 'consumer', 'producer', 'internal'].map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        {service && (
          <span className="svc-tag" style={{ borderColor: serviceColor(service) }}>
            {service}{' '}
            <button className="link" onClick={() => set({ service: null, op: null })} aria-label="All services">
              ✕
            </button>
          </span>
        )}
      </div>
      {stats.state === 'loading' && <Loading what="service statistics" />}
      {stats.state === 'error' && <ErrorBox error={stats.error} />}
      {stats.state === 'done' &&
        (stats.data.operations.length === 0 ? (
          <Empty>No spans in this time range.</Empty>
        ) : (
          <ServiceStats
            data={stats.data}
            selected={stats.data.operations.find((o) => key(o) === selectedKey) ?? stats.data.operations[0]}
            onSelect={(o) => set({ op: key(o) })}
            onService={(s) => set({ service: s, op: null })}
            range={{ start, end }}
          />
        ))}
    </div>
  );
}

function ServiceStats({
  data,
  selected,
  onSelect,
  onService,
  range,
}: {
  data: ServiceStatsResponse;
  selected: OperationStats;
  onSelect: (o: OperationStats) => void;
  onService: (s: string) => void;
  range: { start: string; end: string };
}) {
  const seconds = (data.end - data.start) / 1000;
  const search = query({ service: selected.service, name: selected.operation, start: range.start, end: range.end });
  return (
    <>
      <section className="panel" aria-label="Operation charts">
        <h3>
          {selected.service}: {selected.operation} <small className="muted">{selected.kind}</small>{' '}
          <Link to={'/' + search}>matching traces →</Link>
        </h3>
        <RedCharts op={selected} stepMs={data.step_ms} start={data.start} end={data.end} />
      </section>
      {data.truncated && (
        <p className="muted">The {data.operations.length} busiest operations; choose a service or kind to see others.</p>
      )}
      <table className="results" aria-label="Operations">
        <thead>
          <tr>
            <th>Service</th>
            <th>Operation</th>
            <th>Kind</th>
            <th className="num">Spans</th>
            <th className="num">Rate</th>
            <th className="num">Errors</th>
            <th className="num">p50</th>
            <th className="num">p95</th>
            <th className="num">p99</th>
          </tr>
        </thead>
        <tbody>
          {data.operations.map((o) => (
            <tr key={key(o)} className={key(o) === key(selected) ? 'selected-row' : undefined} onClick={() => onSelect(o)}>
              <td>
                <button className="link" onClick={(e) => (e.stopPropagation(), onService(o.service))}>
                  <span className="svc-dot" style={{ background: serviceColor(o.service) }} />
                  {o.service}
                </button>
              </td>
              <td>{o.operation}</td>
              <td className="muted">{o.kind}</td>
              <td className="num">{formatNumber(o.total.count)}</td>
              <td className="num">{formatNumber(o.total.count / seconds)}/s</td>
              <td className={'num' + (o.total.errors ? ' err-text' : '')}>
                {((100 * o.total.errors) / o.total.count).toFixed(1)}%
              </td>
              <td className="num">{formatDuration(o.total.p50_nanos)}</td>
              <td className="num">{formatDuration(o.total.p95_nanos)}</td>
              <td className="num">{formatDuration(o.total.p99_nanos)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** Three charts over the steps: requests/s, error %, latency percentiles. */
function RedCharts({ op, stepMs, start, end }: { op: OperationStats; stepMs: number; start: number; end: number }) {
  const charts = useMemo(() => {
    // Every step of the range: no spans is a rate of 0 and no latency.
    const byTime = new Map(op.steps);
    const times: number[] = [];
    for (let t = start; t < end; t += stepMs) times.push(t);
    const steps = times.map((t) => byTime.get(t));
    const xs = times.map((t) => t / 1000);
    const perSecond = steps.map((r) => (r ? r.count / (stepMs / 1000) : 0));
    const errorPct = steps.map((r) => (r ? (100 * r.errors) / r.count : null));
    const ms = (f: (r: OperationStats['total']) => number) => steps.map((r) => (r ? f(r) / 1e6 : null));
    const base = (label: string, format: (v: number) => string) => ({
      axes: [axis(), axis({ values: (_u: uPlot, t: number[]) => t.map(format), size: 70 })],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      series: [{}],
      scales: { x: { time: true, range: [start / 1000, end / 1000] as [number, number] } },
      title: label,
    });
    const line = (label: string, stroke: string) => ({ label, stroke, width: 2, points: { show: op.steps.length < 3 } });
    return [
      {
        options: { ...base('Requests per second', formatNumber), series: [{}, line('req/s', '#4e79a7')] },
        data: [xs, perSecond] as uPlot.AlignedData,
        id: 'rate',
      },
      {
        options: { ...base('Errors (%)', (v) => v.toFixed(1) + '%'), series: [{}, line('errors %', '#e15759')] },
        data: [xs, errorPct] as uPlot.AlignedData,
        id: 'errors',
      },
      {
        options: {
          ...base('Duration', (v) => formatDuration(v * 1e6)),
          series: [{}, line('p50', '#59a14f'), line('p95', '#f28e2b'), line('p99', '#b07aa1')],
        },
        data: [xs, ms((r) => r.p50_nanos), ms((r) => r.p95_nanos), ms((r) => r.p99_nanos)] as uPlot.AlignedData,
        id: 'latency',
      },
    ];
  }, [op, stepMs, start, end]);
  return (
    <div className="chart-grid">
      {charts.map((c) => (
        <Chart key={c.id} options={c.options as Omit<uPlot.Options, 'width' | 'height'>} data={c.data} height={200} testId={`red-${c.id}`} />
      ))}
    </div>
  );
}
