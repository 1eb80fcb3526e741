import { useMemo } from 'react';
import type { TraceLogsResponse } from '../../api/types';
import { SeverityBadge } from '../../components/SeverityBadge';
import { Loading } from '../../components/Status';
import { formatUtc, nanosToMillis } from '../../lib/format';
import { bodyLine, formatOffset, offsetNanos } from '../../lib/logs';
import type { Loaded } from '../../lib/useApi';

/** The logs of one span: the trace's logs that carry its span ID. */
export function SpanLogs({
  logs,
  spanId,
  traceStartNanos,
}: {
  logs: Loaded<TraceLogsResponse>;
  spanId: string;
  traceStartNanos: string;
}) {
  const mine = useMemo(() => (logs.state === 'done' ? logs.data.logs.filter((r) => r.spanId === spanId) : []), [logs, spanId]);
  return (
    <section className="span-logs" aria-label="Logs of this span">
      <h4>
        Logs ({logs.state === 'done' ? mine.length : logs.state === 'error' ? 'failed' : '…'}
        {logs.state === 'done' && logs.data.truncated ? '+' : ''}) <small className="muted">time from trace start</small>
      </h4>
      {logs.state === 'loading' && <Loading what="logs" />}
      {/* The trace's Logs panel shows the server's error in full. */}
      {logs.state === 'error' && (
        <p className="muted">The trace's logs could not be loaded: {logs.error instanceof Error ? logs.error.message : String(logs.error)}</p>
      )}
      {mine.map((r, i) => (
        <div key={i} className="span-log" data-testid="span-log">
          <span className="log-offset" title={`${formatUtc(nanosToMillis(r.timeUnixNano))} (UTC)`}>
            {formatOffset(offsetNanos(r.timeUnixNano, traceStartNanos))}
          </span>
          <SeverityBadge record={r} />
          <span className="log-body-line">{bodyLine(r.body) || <span className="muted">(no body)</span>}</span>
        </div>
      ))}
    </section>
  );
}
