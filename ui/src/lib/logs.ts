// Log records for people: severity bands and their colours, bodies as text,
// and the volume histogram's series.
import type { LogRecord, LogVolume, SeverityBand, TypedValue } from '../api/types';
import { formatDuration, nanosToMillis } from './format';
import { plainValue, renderValue } from './values';

/** Bands in severity order, the API's names (`severity=` takes the same). */
export const SEVERITY_BANDS: SeverityBand[] = ['unspecified', 'trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** One colour per band on every screen: badges, histogram, trace logs. */
export const SEVERITY_COLORS: Record<SeverityBand, string> = {
  unspecified: '#98a2b3',
  trace: '#76b7b2',
  debug: '#59a14f',
  info: '#4e79a7',
  warn: '#f28e2b',
  error: '#e15759',
  fatal: '#8e1b3a',
};

/** OTLP severity numbers come in bands of four: 1–4 trace … 21–24 fatal; 0 is unspecified. */
export function severityBand(severityNumber: number | null | undefined): SeverityBand {
  const n = Number(severityNumber);
  if (!Number.isInteger(n) || n < 1 || n > 24) return 'unspecified';
  return SEVERITY_BANDS[Math.ceil(n / 4)];
}

/** The record's band: the server's, or computed when it sent an unknown one. */
export function recordBand(record: Pick<LogRecord, 'severity' | 'severityNumber'>): SeverityBand {
  return SEVERITY_BANDS.includes(record.severity) ? record.severity : severityBand(record.severityNumber);
}

export function severityColor(band: SeverityBand): string {
  return SEVERITY_COLORS[band] ?? SEVERITY_COLORS.unspecified;
}

/** What the badge says: the SDK's own text (`WARNING`, `E`) or the band. */
export function severityLabel(record: Pick<LogRecord, 'severity' | 'severityNumber' | 'severityText'>): string {
  return record.severityText || recordBand(record).toUpperCase();
}

/**
 * A body on one line: strings as they are (line breaks shown as ⏎), arrays
 * and maps as compact JSON, bytes as their base64; '' for no body.
 */
export function bodyLine(body: TypedValue | null | undefined): string {
  if (!body) return '';
  return renderValue(body).replace(/\r?\n/g, ' ⏎ ');
}

/** A body for the expanded view: strings unchanged, structures as indented JSON. */
export function bodyPretty(body: TypedValue | null | undefined): string {
  if (!body) return '';
  if (body.type === 'array' || body.type === 'kvlist') return JSON.stringify(plainValue(body), null, 2);
  return renderValue(body);
}

/**
 * `b - a` for nanosecond strings, exactly (the strings exceed 2^53), as a
 * number of nanoseconds; NaN when either is not an integer.
 */
export function offsetNanos(time: string, start: string): number {
  try {
    return Number(BigInt(time) - BigInt(start));
  } catch {
    return NaN;
  }
}

/** A time from the trace's start: `+12.3 ms`, or `-4 ms` for a log before it. */
export function formatOffset(nanos: number): string {
  if (!Number.isFinite(nanos)) return '';
  return nanos < 0 ? formatDuration(nanos) : `+${formatDuration(nanos)}`;
}

export interface VolumeSeries {
  band: SeverityBand;
  /** Records per step, aligned with `xs`. */
  counts: number[];
  /** Top of this band's bar: its count plus every lower band's (null for none). */
  stacked: (number | null)[];
}

export interface VolumeChartData {
  /** Step starts in Unix seconds (uPlot's time scale). */
  xs: number[];
  /** In drawing order: the most severe (the top of each stack) first. */
  series: VolumeSeries[];
}

/** At most this many steps are filled in, whatever the server says. */
const MAX_STEPS = 5000;

/**
 * The volume response as stacked bars: every step of the range (the server
 * leaves empty ones out), each band's bar from zero to its cumulative count.
 * Drawn most severe first, each lower band paints over the bottom of the
 * stack, so what shows of a band is exactly its own count.
 */
export function volumeChartData(volume: LogVolume): VolumeChartData {
  const step = volume.step_ms;
  const seen = new Set<number>();
  for (const s of volume.series) for (const [t] of s.counts) seen.add(t);
  // Step starts are on the server's grid: extend it over the whole range.
  if (step > 0 && Number.isFinite(step)) {
    const anchor = seen.size ? Math.min(...seen) : volume.start;
    let t = anchor + Math.floor((volume.start - anchor) / step) * step;
    for (let i = 0; t < volume.end && i < MAX_STEPS; i++, t += step) seen.add(t);
  }
  const times = [...seen].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const order = [...volume.series].sort((a, b) => SEVERITY_BANDS.indexOf(a.severity) - SEVERITY_BANDS.indexOf(b.severity));
  const running = times.map(() => 0);
  const series: VolumeSeries[] = order.map((s) => {
    const counts = times.map(() => 0);
    for (const [t, n] of s.counts) counts[index.get(t)!] += n;
    const stacked = counts.map((n, i) => (running[i] += n) || null);
    return { band: s.severity, counts, stacked };
  });
  return { xs: times.map((t) => t / 1000), series: series.reverse() };
}

/** Margin around a trace when its logs are searched by time as well as trace ID. */
const SEARCH_MARGIN_MS = 60_000;

/**
 * A time range for searching a trace's logs on the log screen: the trace and
 * every log it returned, a minute either side (logs may come before the
 * first span or after the last).
 */
export function traceLogsRange(traceStartNanos: string, durationNanos: number, logs: Pick<LogRecord, 'timeUnixNano'>[]) {
  const traceStart = nanosToMillis(traceStartNanos);
  let from = traceStart;
  let to = traceStart + durationNanos / 1e6;
  for (const l of logs) {
    const t = nanosToMillis(l.timeUnixNano);
    if (t < from) from = t;
    if (t > to) to = t;
  }
  return {
    start: new Date(Math.floor(from - SEARCH_MARGIN_MS)).toISOString(),
    end: new Date(Math.ceil(to + SEARCH_MARGIN_MS)).toISOString(),
  };
}
