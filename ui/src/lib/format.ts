// Numbers, durations and times formatted for people.

/** 1.23 s, 45.6 ms, 789 µs, 12 ns; minutes and hours for long spans. */
export function formatDuration(nanos: number): string {
  if (!Number.isFinite(nanos)) return '–';
  const abs = Math.abs(nanos);
  const sign = nanos < 0 ? '-' : '';
  if (abs < 1e3) return `${sign}${Math.round(abs)} ns`;
  if (abs < 1e6) return `${sign}${trim(abs / 1e3)} µs`;
  if (abs < 1e9) return `${sign}${trim(abs / 1e6)} ms`;
  if (abs < 60e9) return `${sign}${trim(abs / 1e9)} s`;
  if (abs < 3600e9) {
    const m = Math.floor(abs / 60e9);
    return `${sign}${m} min ${Math.round((abs - m * 60e9) / 1e9)} s`;
  }
  const h = Math.floor(abs / 3600e9);
  return `${sign}${h} h ${Math.round((abs - h * 3600e9) / 60e9)} min`;
}

/** Three significant digits, no trailing zeros. */
function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}

/** 1234567 → "1.23M"; small numbers keep up to 3 decimals. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e12) return trim(value / 1e12) + 'T';
  if (abs >= 1e9) return trim(value / 1e9) + 'G';
  if (abs >= 1e6) return trim(value / 1e6) + 'M';
  if (abs >= 1e4) return trim(value / 1e3) + 'k';
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(abs < 1 ? 4 : 3)));
}

/** Counts with thousands separators: 20000 → "20,000". */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** Milliseconds since the epoch from a nanosecond string (exact enough for display). */
export function nanosToMillis(nanos: string | number): number {
  if (typeof nanos === 'number') return nanos / 1e6;
  // Split to avoid losing the millisecond digits in a float of 19 digits.
  const text = nanos.padStart(7, '0');
  return Number(text.slice(0, -6)) + Number(text.slice(-6)) / 1e6;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Local time, `2026-12-06 03:14:15.926`. */
export function formatLocal(millis: number): string {
  const d = new Date(millis);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/** UTC time for the hover text, `2026-12-06T03:14:15.926Z`. */
export function formatUtc(millis: number): string {
  return new Date(millis).toISOString();
}

/** "3 min ago", "2 h ago", or the local date for older times. */
export function formatAgo(millis: number, now = Date.now()): string {
  const seconds = Math.round((now - millis) / 1000);
  if (seconds < 0) return formatLocal(millis);
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatLocal(millis);
}

/** Parses `250ms`, `2s`, `1.5m`, `3h` into nanoseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|min|h)?\s*$/.exec(text);
  if (!match) return undefined;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, min: 60e9, h: 3600e9 };
  return Number(match[1]) * unit[match[2] ?? 'ns'];
}
