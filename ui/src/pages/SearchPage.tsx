import { useCallback, useMemo } from 'react';
import { useNavigate } from 'react-router-dom';
import { getJson, query } from '../api/client';
import type { Operation, SearchResponse } from '../api/types';
import { ServiceSelect } from '../components/ServiceSelect';
import { ErrorBox, Empty, Loading } from '../components/Status';
import { TimeRangePicker } from '../components/TimeRangePicker';
import { useApi } from '../lib/useApi';
import { rangeFields, useUrlForm } from '../lib/useUrlForm';
import { SearchResults } from './search/SearchResults';
import { DurationScatter } from './search/DurationScatter';

export function SearchPage() {
  const { params, form, setForm, range, set, rangeValue, submit, nextPage, firstPage } = useUrlForm(formFromParams);
  const navigate = useNavigate();
  const services = useApi('services', (signal) => getJson<{ services: string[] }>('/api/v1/services', signal));
  const operations = useApi(form.service ? `ops:${form.service}` : null, (signal) =>
    getJson<{ operations: Operation[] }>(`/api/v1/services/${encodeURIComponent(form.service)}/operations`, signal),
  );

  // The search runs from the URL, so back/forward and shared links repeat it.
  const apiQuery = useMemo(() => {
    const { start, end } = range;
    return query({
      service: params.get('service') ?? undefined,
      name: params.get('name') ?? undefined,
      attr: (params.get('attr') ?? '').split('\n').map((s) => s.trim()).filter(Boolean),
      min_duration: params.get('min_duration') ?? undefined,
      max_duration: params.get('max_duration') ?? undefined,
      status: params.get('status') ?? undefined,
      start,
      end,
      limit: params.get('limit') ?? '50',
      cursor: params.get('cursor') ?? undefined,
    });
  }, [params, range]);
  const results = useApi(apiQuery + '#' + (params.get('t') ?? ''), (signal) =>
    getJson<SearchResponse>('/api/v1/search' + apiQuery, signal),
  );

  const open = useCallback((traceId: string) => navigate(`/trace/${traceId}`), [navigate]);

  return (
    <div className="search-page">
      <form className="search-form" onSubmit={submit} aria-label="Search traces">
        <label>
          Service
          <ServiceSelect services={services} value={form.service} onChange={(service) => setForm({ ...form, service, name: '' })} />
        </label>
        <label>
          Operation
          <input
            list="operations"
            value={form.name}
            placeholder="any span name"
            onChange={(e) => set('name')(e.target.value)}
          />
          <datalist id="operations">
            {operations.state === 'done' &&
              operations.data.operations.map((o) => <option key={o.name + o.kind} value={o.name} />)}
          </datalist>
        </label>
        <label className="wide">
          Attributes <small>key=value, one per line; span or resource</small>
          <textarea rows={2} value={form.attr} onChange={(e) => set('attr')(e.target.value)} placeholder="http.route=/cart" />
        </label>
        <label>
          Min duration
          <input value={form.min_duration} placeholder="100ms" onChange={(e) => set('min_duration')(e.target.value)} />
        </label>
        <label>
          Max duration
          <input value={form.max_duration} placeholder="5s" onChange={(e) => set('max_duration')(e.target.value)} />
        </label>
        <label>
          Status
          <select value={form.status} onChange={(e) => set('status')(e.target.value)}>
            <option value="">Any</option>
            <option value="error">Error</option>
            <option value="ok">OK</option>
            <option value="unset">Unset</option>
          </select>
        </label>
        <label>
          Time range
          <TimeRangePicker value={rangeValue} onChange={(v) => setForm({ ...form, ...v })} />
        </label>
        <label>
          Limit
          <input type="number" min={1} value={form.limit} onChange={(e) => set('limit')(e.target.value)} />
        </label>
        <button type="submit" className="primary">
          Find traces
        </button>
      </form>
      {services.state === 'error' && <ErrorBox error={services.error} />}
      {results.state === 'loading' && <Loading what="traces" />}
      {results.state === 'error' && <ErrorBox error={results.error} />}
      {results.state === 'done' &&
        (results.data.traces.length === 0 ? (
          <Empty>No traces match. Widen the time range or remove a filter.</Empty>
        ) : (
          <>
            <DurationScatter traces={results.data.traces} onOpen={open} />
            <SearchResults traces={results.data.traces} />
            <div className="pager">
              {params.get('cursor') && (
                <button onClick={firstPage}>← First page</button>
              )}
              {results.data.nextCursor && (
                <button onClick={() => nextPage(results.data.nextCursor!)}>Next page →</button>
              )}
            </div>
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
    name: get('name'),
    attr: get('attr'),
    min_duration: get('min_duration'),
    max_duration: get('max_duration'),
    status: get('status'),
    ...rangeFields(params),
    limit: get('limit') || '50',
  };
}
