// Shapes of Skein's API responses (docs/api.md). Fields are read
// defensively: servers may add fields, and some may be absent.

export interface TraceSummary {
  traceId: string;
  rootServiceName: string;
  rootSpanName: string;
  startTimeUnixNano: string;
  durationNanos: number;
  spanCount: number;
  errorCount: number;
  services?: string[];
  hasRoot?: boolean;
  /** A root, and every span's parent received (docs/api.md). */
  complete?: boolean;
}

export interface SearchResponse {
  traces: TraceSummary[];
  /** Set when the page is full: ask again with `cursor` for the next page. */
  nextCursor?: string | null;
}

export interface OutlineSpan {
  spanId: string;
  parentSpanId: string | null;
  name: string;
  serviceName: string;
  kind: string;
  startOffsetNanos: number;
  durationNanos: number;
  error: boolean;
  linkCount: number;
  eventCount: number;
  /** Children and all spans below it in the whole trace, loaded or not. */
  childCount?: number;
  descendantCount?: number;
}

/** A trace's outline: all spans, or a window of them (`windowed`). Counts are the whole trace's. */
export interface TraceOutline {
  traceId: string;
  startTimeUnixNano: string;
  durationNanos: number;
  spanCount: number;
  errorCount: number;
  services: string[];
  windowed?: boolean;
  foundSpanIds?: string[];
  foundCount?: number;
  criticalPathSpanIds?: string[];
  spans: OutlineSpan[];
}

export interface SummarySpan {
  spanId: string;
  name: string;
  serviceName: string;
  startOffsetNanos: number;
  durationNanos: number;
  depth: number;
  error: boolean;
}

/** `GET /api/v1/traces/{id}/summary`: a trace's shape, computed by the server. */
export interface TraceOverview {
  traceId: string;
  spanCount: number;
  errorCount: number;
  orphanCount: number;
  depth: number;
  services: { serviceName: string; spanCount: number; errorCount: number }[];
  levels: { depth: number; spanCount: number; errorCount: number }[];
  criticalPathSpanCount: number;
  criticalPath: SummarySpan[];
  errorOriginCount: number;
  errorOrigins: (SummarySpan & { ancestors: SummarySpan[] })[];
}

export interface TypedValue {
  type: string;
  value: unknown;
}

export interface Attribute extends TypedValue {
  key: string;
}

export interface SpanEvent {
  timeUnixNano: string;
  name: string;
  attributes: Attribute[];
  droppedAttributesCount?: number;
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState?: string;
  attributes: Attribute[];
}

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  traceState?: string;
  flags?: number;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationNanos: number;
  status: { code: string; message: string };
  serviceName: string;
  attributes: Attribute[];
  droppedAttributesCount?: number;
  events: SpanEvent[];
  droppedEventsCount?: number;
  links: SpanLink[];
  droppedLinksCount?: number;
  resource: { attributes: Attribute[]; schemaUrl?: string };
  scope: { name: string; version: string; attributes: Attribute[]; schemaUrl?: string };
}

export interface SqlColumn {
  name: string;
  type: string;
}

export interface SqlResult {
  columns: SqlColumn[];
  rows: unknown[][];
  rowCount: number;
}

export interface Operation {
  name: string;
  kind: string;
}

export interface MetricInfo {
  name: string;
  type: string;
  unit: string;
  description: string;
  series: number;
}

export interface SeriesInfo {
  series_id: string;
  labels: Record<string, string>;
}

export interface RangeSeries {
  labels: Record<string, string>;
  points: [number, number][];
}

export interface RangeResponse {
  metric: string;
  type: string;
  aggregation: string;
  step_ms: number;
  series: RangeSeries[];
}

export interface Red {
  count: number;
  errors: number;
  p50_nanos: number;
  p95_nanos: number;
  p99_nanos: number;
}

export interface OperationStats {
  service: string;
  operation: string;
  kind: string;
  total: Red;
  steps: [number, Red][];
}

export interface ServiceStatsResponse {
  start: number;
  end: number;
  step_ms: number;
  operations: OperationStats[];
  truncated?: boolean;
}

export interface ServiceNode {
  service: string;
  spans: number;
  errors: number;
}

export interface ServiceEdge {
  caller: string;
  callee: string;
  calls: number;
  errors: number;
  p50_nanos: number;
  p95_nanos: number;
}

export interface Exemplar {
  time_ms: number;
  value: number | null;
  trace_id: string | null;
  span_id: string | null;
  series_id: string;
}

/** The band of a severity number (docs/api.md, `GET /api/v1/logs`). */
export type SeverityBand = 'unspecified' | 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface LogRecord {
  /** The record's time, or its observed time when it has none. */
  timeUnixNano: string;
  observedTimeUnixNano: string | null;
  severityNumber: number;
  severityText: string;
  severity: SeverityBand;
  /** Typed like an attribute value; null when the record has no body. */
  body: TypedValue | null;
  eventName?: string;
  traceId: string | null;
  spanId: string | null;
  flags?: number;
  serviceName: string;
  attributes: Attribute[];
  droppedAttributesCount?: number;
  resource: { attributes: Attribute[]; droppedAttributesCount?: number; schemaUrl?: string };
  scope: { name: string; version: string; attributes: Attribute[]; droppedAttributesCount?: number; schemaUrl?: string };
}

export interface LogsResponse {
  logs: LogRecord[];
  /** Set when the page is full: ask again with `cursor` for older records. */
  nextCursor?: string | null;
}

export interface TraceLogsResponse {
  traceId: string;
  /** Oldest first. */
  logs: LogRecord[];
  /** More records carry the trace's ID than were returned. */
  truncated: boolean;
}

export interface LogVolume {
  start: number;
  end: number;
  step_ms: number;
  total: number;
  /** Bands in severity order; steps without records are left out. */
  series: { severity: SeverityBand; counts: [number, number][] }[];
}
