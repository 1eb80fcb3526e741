import { useMemo, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router-dom';
import type { RangeValue } from '../components/TimeRangePicker';
import { resolveRange, type Resolved } from './timeRange';

/** A search form's fields, each a URL parameter of the same name. */
export type UrlForm = RangeValue & Record<string, string>;

/** The form's time range as the URL gives it: `start`/`end` without `range` is an absolute one. */
export function rangeFields(params: URLSearchParams): RangeValue {
  const get = (k: string) => params.get(k) ?? '';
  return { range: get('range') || (get('start') || get('end') ? 'custom' : '1h'), start: get('start'), end: get('end') };
}

/** The URL a submit writes: the non-empty fields, and a new `t` so the same search runs again. */
export function submitParams(form: UrlForm, now = Date.now()): URLSearchParams {
  const next = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (value && !(key === 'range' && value === 'custom')) next.set(key, value);
  }
  next.set('t', String(now));
  return next;
}

/**
 * The page after `cursor`. It must repeat the same filters, so a relative
 * range is pinned to the times this page used; back returns to this page.
 */
export function pinnedPage(params: URLSearchParams, range: Resolved, cursor: string): URLSearchParams {
  const next = new URLSearchParams(params);
  next.delete('range');
  next.set('start', range.start);
  next.set('end', range.end);
  next.set('cursor', cursor);
  return next;
}

export function withoutCursor(params: URLSearchParams): URLSearchParams {
  const next = new URLSearchParams(params);
  next.delete('cursor');
  return next;
}

/**
 * A search page's form kept in the URL: edits stay local until submit; the
 * request runs from the URL (`params`, `range`), so back/forward and shared
 * links repeat it. `fromParams` reads the form, and so names its fields.
 */
export function useUrlForm<F extends UrlForm>(fromParams: (params: URLSearchParams) => F) {
  const [params, setParams] = useSearchParams();
  const [form, setForm] = useState(() => fromParams(params));
  const range = useMemo(() => resolveRange(params), [params]);
  return {
    params,
    setParams,
    form,
    setForm,
    range,
    set: (key: keyof F) => (value: string) => setForm({ ...form, [key]: value }),
    rangeValue: { range: form.range, start: form.start, end: form.end },
    submit: (e: FormEvent) => {
      e.preventDefault();
      setParams(submitParams(form));
    },
    nextPage: (cursor: string) => setParams(pinnedPage(params, range, cursor)),
    firstPage: () => setParams(withoutCursor(params)),
  };
}
