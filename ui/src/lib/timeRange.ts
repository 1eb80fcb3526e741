// Time ranges in the URL: relative (`range=1h`, ending now) or absolute
// (`start` and `end`, ISO 8601). The API takes RFC 3339 times.

export const RELATIVE_RANGES: [string, string][] = [
  ['5m', 'Last 5 minutes'],
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['6h', 'Last 6 hours'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
];

const UNIT_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

export function relativeMillis(range: string): number | undefined {
  const match = /^(\d+)([smhd])$/.exec(range);
  return match ? Number(match[1]) * UNIT_MS[match[2]] : undefined;
}

export interface Resolved {
  start: string;
  end: string;
}

/** The absolute bounds of the URL's range at `now`; the default is the last hour. */
export function resolveRange(params: URLSearchParams, fallback = '1h', now = Date.now()): Resolved {
  const start = params.get('start');
  const end = params.get('end');
  if (start || end) {
    return {
      start: start ? new Date(start).toISOString() : new Date(0).toISOString(),
      end: end ? new Date(end).toISOString() : new Date(now).toISOString(),
    };
  }
  const span = relativeMillis(params.get('range') ?? fallback) ?? relativeMillis(fallback)!;
  return { start: new Date(now - span).toISOString(), end: new Date(now).toISOString() };
}

/** `<input type="datetime-local">` value for an ISO time, in local time. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60e3);
  return local.toISOString().slice(0, 19);
}

/** ISO time for a local `datetime-local` value. */
export function fromLocalInput(value: string): string {
  return value ? new Date(value).toISOString() : '';
}
