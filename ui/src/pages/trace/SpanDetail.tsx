import { Link } from 'react-router-dom';
import { getJson } from '../../api/client';
import type { OutlineSpan, Span, TraceLogsResponse } from '../../api/types';
import { Attributes, AttributeTable } from '../../components/Attributes';
import { ErrorBox, Loading } from '../../components/Status';
import { Time } from '../../components/Time';
import { serviceColor } from '../../lib/colors';
import { formatDuration, nanosToMillis } from '../../lib/format';
import { useApi, type Loaded } from '../../lib/useApi';
import { SpanLogs } from './SpanLogs';

/** One span in full, fetched on demand: the outline has no attributes. */
export function SpanDetail({
  traceId,
  outlineSpan,
  traceStartNanos,
  logs,
  onClose,
}: {
  traceId: string;
  outlineSpan: OutlineSpan;
  traceStartNanos: string;
  /** The whole trace's logs, loaded once by the trace view. */
  logs: Loaded<TraceLogsResponse>;
  onClose: () => void;
}) {
  const span = useApi(outlineSpan.spanId, (signal) =>
    getJson<Span>(`/api/v1/traces/${traceId}/spans/${outlineSpan.spanId}`, signal),
  );
  return (
    <aside className="span-detail" aria-label="Span detail">
      <div className="detail-title">
        <span className="svc-dot" style={{ background: serviceColor(outlineSpan.serviceName) }} />
        <h3>{outlineSpan.name}</h3>
        <button onClick={onClose} aria-label="Close span detail">
          ✕
        </button>
      </div>
      {span.state === 'loading' && <Loading what="span" />}
      {span.state === 'error' && <ErrorBox error={span.error} />}
      {span.state === 'done' && <SpanBody span={span.data} traceStartNanos={traceStartNanos} />}
      <SpanLogs logs={logs} spanId={outlineSpan.spanId} traceStartNanos={traceStartNanos} />
      {span.state === 'done' && <LinkedFrom traceId={traceId} spanId={outlineSpan.spanId} />}
    </aside>
  );
}

function SpanBody({ span, traceStartNanos }: { span: Span; traceStartNanos: string }) {
  const startMs = nanosToMillis(span.startTimeUnixNano);
  const offsetNs = (startMs - nanosToMillis(traceStartNanos)) * 1e6;
  const isError = span.status.code === 'error';
  return (
    <div className="detail-body">
      <dl className="facts-grid">
        <dt>Service</dt>
        <dd>{span.serviceName}</dd>
        <dt>Kind</dt>
        <dd>{span.kind}</dd>
        <dt>Status</dt>
        <dd className={isError ? 'err-text' : undefined} data-testid="span-status">
          {span.status.code}
          {span.status.message && `: ${span.status.message}`}
        </dd>
        <dt>Start</dt>
        <dd>
          <Time millis={startMs} /> <span className="muted">(+{formatDuration(offsetNs)})</span>
        </dd>
        <dt>Duration</dt>
        <dd>{formatDuration(span.durationNanos)}</dd>
        <dt>Span ID</dt>
        <dd className="mono">{span.spanId}</dd>
        <dt>Parent</dt>
        <dd className="mono">
          {span.parentSpanId ? <Link to={`?span=${span.parentSpanId}`}>{span.parentSpanId}</Link> : 'none (root)'}
        </dd>
        {span.traceState && (
          <>
            <dt>Trace state</dt>
            <dd className="mono">{span.traceState}</dd>
          </>
        )}
      </dl>
      <Attributes title="Span attributes" attributes={span.attributes} dropped={span.droppedAttributesCount} />
      <Attributes title="Resource" attributes={span.resource.attributes} />
      <Attributes
        title={`Scope ${span.scope.name}${span.scope.version ? ' ' + span.scope.version : ''}`}
        attributes={span.scope.attributes}
      />
      <section>
        <h4>Events ({span.events.length})</h4>
        {span.events.map((e, i) => (
          <details key={i} className="event" open={span.events.length <= 3}>
            <summary>
              <span className="muted">+{formatDuration((nanosToMillis(e.timeUnixNano) - startMs) * 1e6)}</span> {e.name}
            </summary>
            <AttributeTable attributes={e.attributes} />
          </details>
        ))}
        {!!span.droppedEventsCount && <p className="muted">{span.droppedEventsCount} events dropped by the SDK</p>}
      </section>
      <section>
        <h4>Links ({span.links.length})</h4>
        {span.links.map((l) => (
          <div key={l.traceId + l.spanId} className="link-item">
            <Link to={`/trace/${l.traceId}?span=${l.spanId}`} className="span-link mono">
              {l.traceId === span.traceId ? 'this trace' : `trace ${l.traceId.slice(0, 12)}…`} / span {l.spanId}
            </Link>
            <AttributeTable attributes={l.attributes} />
          </div>
        ))}
      </section>
    </div>
  );
}

interface LinkingSpan {
  traceId: string;
  spanId: string;
  name: string;
  serviceName: string;
}

/** Spans (of any trace) whose links point at this one: the other direction of a link. */
function LinkedFrom({ traceId, spanId }: { traceId: string; spanId: string }) {
  const linked = useApi(spanId, (signal) =>
    getJson<{ spans: LinkingSpan[]; truncated?: boolean }>(
      `/api/v1/traces/${traceId}/spans/${spanId}/linked_from`,
      signal,
    ),
  );
  if (linked.state === 'loading') return <Loading what="links to this span" />;
  if (linked.state === 'error') return <ErrorBox error={linked.error} />;
  const spans = linked.data.spans;
  return (
    <section className="detail-body">
      <h4>
        Linked from ({spans.length}
        {linked.data.truncated ? '+' : ''}) <small className="muted">spans starting within an hour</small>
      </h4>
      {spans.map((l) => (
        <div key={l.traceId + l.spanId} className="link-item">
          <Link to={`/trace/${l.traceId}?span=${l.spanId}`} className="linked-from">
            <span className="svc-dot" style={{ background: serviceColor(l.serviceName) }} />
            {l.serviceName}: {l.name}
          </Link>{' '}
          <span className="muted mono">{l.traceId === traceId ? 'this trace' : `trace ${l.traceId.slice(0, 12)}…`}</span>
        </div>
      ))}
    </section>
  );
}
