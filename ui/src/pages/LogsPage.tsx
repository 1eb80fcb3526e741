import { useCallback, useMemo } from 'react';
import { getJson, query } from '../api/client';
import type { LogsResponse, LogVolume } from '../api/types';
import { ServiceSelect } from '../components/ServiceSelect';
import { ErrorBox, Empty, Loading } from '../components/Status';
import { TimeRangePicker } from '../components/TimeRangePicker';
import { formatCount } from '../lib/format';
import { SEVERITY_BANDS } from '../lib/logs';
import { useApi } from '../lib/useApi';
import { rangeFields, useUrlForm } from '../lib/useUrlForm';
import { LogList } from './logs/LogList';
import { LogVolumeChart } from './logs/LogVolumeChart';

const DEFAULT_LIMIT = '100';

/** Log search: filters, a volume histogram by severity, the records newest first. */
export function LogsPage() {
  const { params, setParams, form, setForm, range, set, rangeValue, submit, nextPage, firstPage } = useUrlForm(formFromParams);
  const services = useApi('services', (signal) => getJson<{ services: string[] }>('/api/v1/services', signal));

  // Both requests run from the URL, so back/forward and shared links repeat them.
  const filters = useMemo(
    () => ({
      service: params.get('service') ?? undefined,
      severity: params.get('severity') ?? undefined,
      q: params.get('q') ?? undefined,
      attr: (params.get('attr') ?? '').split('\n').map((s) => s.trim()).filter(Boolean),
      trace_id: params.get('trace_id')?.trim() || undefined,
      span_id: params.get('span_id')?.trim() || undefined,
      start: range.start,
      end: range.end,
    }),
    [params, range],
  );
  const refresh = '#' + (params.get('t') ?? '');
  const listQuery = query({ ...filters, limit: params.get('limit') ?? DEFAULT_LIMIT, cursor: params.get('cursor') ?? undefined });
  const volumeQuery = query(filters);
  const logs = useApi(listQuery + refresh, (signal) => getJson<LogsResponse>('/api/v1/logs' + listQuery, signal));
  const volume = useApi(volumeQuery + refresh, (signal) => getJson<LogVolume>('/api/v1/logs/volume' + volumeQuery, signal));

  const zoom = useCallback(
    (startMs: number, endMs: number) => {
      const start = new Date(startMs).toISOString();
      const end = new Date(endMs).toISOString();
      setForm((f) => ({ ...f, range: 'custom', start, end }));
      setParams((prev) => {
        const next = new URLSearchParams(prev);
        next.delete('range');
        next.delete('cursor');
        next.set('start', start);
        next.set('end', end);
        return next;
      });
    },
    [setForm, setParams],
  );

  return (
    <div className="logs-page">
      <form className="search-form" onSubmit={submit} aria-label="Search logs">
        <label>
          Service
          <ServiceSelect services={services} value={form.service} onChange={set('service')} />
        </label>
        <label>
          Minimum severity
          <select value={form.severity} onChange={(e) => set('severity')(e.target.value)}>
            <option value="">Any</option>
            {SEVERITY_BANDS.filter((b) => b !== 'unspecified').map((b) => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
        </label>
        <label>
          Body contains
          <input type="search" value={form.q} placeholder="text, any case" onChange={(e) => set('q')(e.target.value)} />
        </label>
        <label className="wide">
          Attributes <small>key=value, one per line; log or resource</small>
          <textarea rows={2} value={form.attr} onChange={(e) => set('attr')(e.target.value)} placeholder="http.route=/cart" />
        </label>
        <label>
          Trace ID
          <input className="mono" value={form.trace_id} placeholder="32 hex digits" onChange={(e) => set('trace_id')(e.target.value)} />
        </label>
        <label>
          Span ID
          <input className="mono" value={form.span_id} placeholder="16 hex digits" onChange={(e) => set('span_id')(e.target.value)} />
        </label>
        <label>
          Time range
          <TimeRangePicker value={rangeValue} onChange={(v) => setForm({ ...form, ...v })} />
        </label>
        <label>
          Limit
          <input type="number" min={1} max={1000} value={form.limit} onChange={(e) => set('limit')(e.target.value)} />
        </label>
        <button type="submit" className="primary">
          Find logs
        </button>
      </form>
      {services.state === 'error' && <ErrorBox error={services.error} />}
      {volume.state === 'error' && <ErrorBox error={volume.error} />}
      {volume.state === 'done' && volume.data.total > 0 && <LogVolumeChart volume={volume.data} onZoom={zoom} />}
      {logs.state === 'loading' && <Loading what="logs" />}
      {logs.state === 'error' && <ErrorBox error={logs.error} />}
      {logs.state === 'done' &&
        (logs.data.logs.length === 0 ? (
          <Empty>No log records match. Widen the time range or remove a filter.</Empty>
        ) : (
          <>
            <div className="log-list-head muted">
              <span data-testid="log-count">
                {formatCount(logs.data.logs.length)} {logs.data.logs.length === 1 ? 'record' : 'records'}{params.get('cursor') ? ' (older page)' : ''}, newest first
              </span>
              <span className="pager">
                {params.get('cursor') && <button onClick={firstPage}>← Newest</button>}
                {logs.data.nextCursor && <button onClick={() => nextPage(logs.data.nextCursor!)}>Older →</button>}
              </span>
            </div>
            {/* A new result is a new list: expanded rows and scroll start over. */}
            <LogList key={listQuery + refresh} logs={logs.data.logs} />
          </>
        ))}
    </div>
  );
}

/** The form, from the URL; its fields are the URL parameters a search writes. */
function formFromParams(params: URLSearchParams) {
  const get = (k: string) => params.get(k) ?? '';
  return {
    service: get('service'),
    severity: get('severity'),
    q: get('q'),
    attr: get('attr'),
    trace_id: get('trace_id'),
    span_id: get('span_id'),
    ...rangeFields(params),
    limit: get('limit') || DEFAULT_LIMIT,
  };
}
