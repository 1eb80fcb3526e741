import { useEffect, useMemo } from 'react';
import { Link } from 'react-router-dom';
import type { LogRecord, TraceLogsResponse, TraceOutline } from '../../api/types';
import { SeverityBadge } from '../../components/SeverityBadge';
import { ErrorBox, Empty, Loading } from '../../components/Status';
import { serviceColor } from '../../lib/colors';
import { formatCount, formatUtc, nanosToMillis } from '../../lib/format';
import { bodyLine, formatOffset, offsetNanos, traceLogsRange } from '../../lib/logs';
import type { Loaded } from '../../lib/useApi';
import type { SpanTree } from '../../lib/tree';
import { useVirtualRows } from '../../lib/useVirtualRows';

const ROW_HEIGHT = 24;
const NO_LOGS: LogRecord[] = [];

/** "Logs (12)", "Logs (10,000+)" while the panel is closed too. */
export function logsLabel(logs: Loaded<TraceLogsResponse>): string {
  if (logs.state === 'loading') return 'Logs (…)';
  if (logs.state === 'error') return 'Logs (failed)';
  return `Logs (${formatCount(logs.data.logs.length)}${logs.data.truncated ? '+' : ''})`;
}

/**
 * The trace's logs, oldest first, with their time from the trace's start;
 * only the rows on screen are in the DOM. A log that names a span of this
 * trace selects it on click.
 */
export function TraceLogs({
  logs,
  outline,
  tree,
  selectedSpanId,
  onSelect,
  onClose,
}: {
  logs: Loaded<TraceLogsResponse>;
  outline: TraceOutline;
  tree: SpanTree;
  selectedSpanId: string | null;
  onSelect: (span: number) => void;
  onClose: () => void;
}) {
  const records = logs.state === 'done' ? logs.data.logs : NO_LOGS;
  const search = useMemo(() => {
    const { start, end } = traceLogsRange(outline.startTimeUnixNano, outline.durationNanos, records);
    return `/logs?trace_id=${outline.traceId}&start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
  }, [outline, records]);
  const { scroller, virtual } = useVirtualRows(records.length, ROW_HEIGHT, 20);
  // Show the first log of a span selected elsewhere (the waterfall, a link).
  const firstOfSelected = selectedSpanId ? records.findIndex((r) => r.spanId === selectedSpanId) : -1;
  useEffect(() => {
    if (firstOfSelected >= 0) virtual.scrollToIndex(firstOfSelected, { align: 'auto' });
  }, [firstOfSelected, virtual]);

  return (
    <section className="trace-logs" aria-label="Trace logs">
      <div className="trace-logs-head">
        <h3>
          {logsLabel(logs)} <small className="muted">time from trace start</small>
        </h3>
        {logs.state === 'done' && logs.data.truncated && (
          <span className="badge warn" title="The server returns at most 10,000 records of a trace">
            truncated: more logs are stored
          </span>
        )}
        <Link to={search}>Search these logs</Link>
        <button onClick={onClose} aria-label="Close logs">
          ✕
        </button>
      </div>
      {logs.state === 'loading' && <Loading what="logs" />}
      {logs.state === 'error' && <ErrorBox error={logs.error} />}
      {logs.state === 'done' && records.length === 0 && <Empty>No logs carry this trace's ID.</Empty>}
      {records.length > 0 && (
        <div ref={scroller} className="trace-logs-rows" role="list" aria-label="Logs of this trace">
          <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
            {virtual.getVirtualItems().map((item) => {
              const r = records[item.index];
              const span = r.spanId ? tree.index.get(r.spanId) : undefined;
              const classes = ['trace-log'];
              if (span !== undefined) classes.push('has-span');
              if (r.spanId && r.spanId === selectedSpanId) classes.push('on-selected');
              const body = bodyLine(r.body);
              return (
                <div
                  key={item.key}
                  role="listitem"
                  className={classes.join(' ')}
                  data-testid="trace-log"
                  data-log-span-id={r.spanId ?? undefined}
                  style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
                  title={span === undefined && r.spanId ? `span ${r.spanId} is not in this trace` : undefined}
                  onClick={() => span !== undefined && onSelect(span)}
                >
                  <span className="log-offset" title={`${formatUtc(nanosToMillis(r.timeUnixNano))} (UTC)`}>
                    {formatOffset(offsetNanos(r.timeUnixNano, outline.startTimeUnixNano))}
                  </span>
                  <SeverityBadge record={r} />
                  <span className="log-service">
                    <span className="svc-dot" style={{ background: serviceColor(r.serviceName) }} />
                    {r.serviceName}
                  </span>
                  <span className="log-text" title={body}>
                    {body || <span className="muted">(no body)</span>}
                  </span>
                  {span !== undefined && <span className="log-span">{tree.spans[span].name}</span>}
                </div>
              );
            })}
          </div>
        </div>
      )}
    </section>
  );
}
