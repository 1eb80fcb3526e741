import { useState, type FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { getJson } from '../api/client';
import type { TraceOutline } from '../api/types';
import { ErrorBox, Empty, Loading } from '../components/Status';
import { serviceColor } from '../lib/colors';
import { formatCount, formatDuration } from '../lib/format';
import { useApi } from '../lib/useApi';
import { useUrlState } from '../lib/useUrlState';
import { diffTraces } from './compare/diff';

const outline = (id: string, signal: AbortSignal) =>
  getJson<TraceOutline>(`/api/v1/traces/${encodeURIComponent(id)}/outline`, signal);

/** Two traces side by side, diffed by operation. */
export function ComparePage() {
  const { get, set } = useUrlState();
  const [a, b] = [get('a'), get('b')];
  const [form, setForm] = useState({ a, b });
  const pair = useApi(a && b ? a + b : null, (signal) => Promise.all([outline(a, signal), outline(b, signal)]));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    set({ a: form.a.trim(), b: form.b.trim() });
  };
  return (
    <div>
      <form className="compare-form" onSubmit={submit}>
        <input aria-label="Trace A" placeholder="trace ID A" value={form.a} onChange={(e) => setForm({ ...form, a: e.target.value })} />
        <input aria-label="Trace B" placeholder="trace ID B" value={form.b} onChange={(e) => setForm({ ...form, b: e.target.value })} />
        <button className="primary" type="submit">
          Compare
        </button>
      </form>
      {!(a && b) && <Empty>Enter two trace IDs (the trace view's “Compare…” fills in the first).</Empty>}
      {a && b && pair.state === 'loading' && <Loading what="traces" />}
      {a && b && pair.state === 'error' && <ErrorBox error={pair.error} />}
      {a && b && pair.state === 'done' && <Comparison a={pair.data[0]} b={pair.data[1]} />}
    </div>
  );
}

function Delta({ a, b, format }: { a: number; b: number; format: (n: number) => string }) {
  const d = b - a;
  if (d === 0) return <span className="muted">=</span>;
  return <span className={d > 0 ? 'delta-up' : 'delta-down'}>{(d > 0 ? '+' : '−') + format(Math.abs(d))}</span>;
}

function Comparison({ a, b }: { a: TraceOutline; b: TraceOutline }) {
  const rows = diffTraces(a, b);
  const only = rows.filter((r) => r.countA === 0 || r.countB === 0).length;
  return (
    <>
      <table className="results" aria-label="Traces compared">
        <thead>
          <tr>
            <th />
            <th>A</th>
            <th>B</th>
            <th>B − A</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <td>Trace</td>
            <td><Link to={`/trace/${a.traceId}`} className="mono">{a.traceId}</Link></td>
            <td><Link to={`/trace/${b.traceId}`} className="mono">{b.traceId}</Link></td>
            <td />
          </tr>
          <tr>
            <td>Duration</td>
            <td>{formatDuration(a.durationNanos)}</td>
            <td>{formatDuration(b.durationNanos)}</td>
            <td><Delta a={a.durationNanos} b={b.durationNanos} format={formatDuration} /></td>
          </tr>
          <tr>
            <td>Spans</td>
            <td>{formatCount(a.spanCount)}</td>
            <td>{formatCount(b.spanCount)}</td>
            <td><Delta a={a.spanCount} b={b.spanCount} format={formatCount} /></td>
          </tr>
          <tr>
            <td>Errors</td>
            <td>{formatCount(a.errorCount)}</td>
            <td>{formatCount(b.errorCount)}</td>
            <td><Delta a={a.errorCount} b={b.errorCount} format={formatCount} /></td>
          </tr>
        </tbody>
      </table>
      <h3>
        By operation <small className="muted">{formatCount(only)} only in one trace; sorted by the largest change in summed duration</small>
      </h3>
      <table className="results" aria-label="Operations compared">
        <thead>
          <tr>
            <th>Service: operation</th>
            <th className="num">Spans A</th>
            <th className="num">Spans B</th>
            <th className="num">Δ spans</th>
            <th className="num">Time A</th>
            <th className="num">Time B</th>
            <th className="num">Δ time</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.service + r.name} className={r.countA === 0 || r.countB === 0 ? 'only' : undefined}>
              <td>
                <span className="svc-dot" style={{ background: serviceColor(r.service) }} />
                {r.service}: {r.name} {r.countA === 0 && <span className="badge">only in B</span>}
                {r.countB === 0 && <span className="badge">only in A</span>}
              </td>
              <td className="num">{formatCount(r.countA)}</td>
              <td className="num">{formatCount(r.countB)}</td>
              <td className="num"><Delta a={r.countA} b={r.countB} format={formatCount} /></td>
              <td className="num">{formatDuration(r.nanosA)}</td>
              <td className="num">{formatDuration(r.nanosB)}</td>
              <td className="num"><Delta a={r.nanosA} b={r.nanosB} format={formatDuration} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
