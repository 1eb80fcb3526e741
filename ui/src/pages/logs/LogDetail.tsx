import { Link } from 'react-router-dom';
import type { LogRecord } from '../../api/types';
import { Attributes } from '../../components/Attributes';
import { SeverityBadge } from '../../components/SeverityBadge';
import { Time } from '../../components/Time';
import { nanosToMillis } from '../../lib/format';
import { bodyPretty } from '../../lib/logs';

/** Everything a record carries: its body in full, IDs that open the trace, typed attributes. */
export function LogDetail({ record }: { record: LogRecord }) {
  const { traceId, spanId } = record;
  return (
    <div className="log-detail" data-testid="log-detail">
      <dl className="facts-grid">
        <dt>Time</dt>
        <dd>
          <Time millis={nanosToMillis(record.timeUnixNano)} /> <span className="muted mono">{record.timeUnixNano} ns</span>
        </dd>
        <dt>Observed</dt>
        <dd>{record.observedTimeUnixNano ? <Time millis={nanosToMillis(record.observedTimeUnixNano)} /> : <span className="muted">not sent</span>}</dd>
        <dt>Severity</dt>
        <dd>
          <SeverityBadge record={record} /> <span className="muted">number {record.severityNumber}</span>
        </dd>
        <dt>Service</dt>
        <dd>{record.serviceName}</dd>
        {record.eventName && (
          <>
            <dt>Event</dt>
            <dd className="mono">{record.eventName}</dd>
          </>
        )}
        <dt>Trace ID</dt>
        <dd className="mono">{traceId ? <Link to={`/trace/${traceId}`}>{traceId}</Link> : <span className="muted">none</span>}</dd>
        <dt>Span ID</dt>
        <dd className="mono">
          {traceId && spanId ? (
            <Link to={`/trace/${traceId}?span=${spanId}`} title="Open the trace with this span selected">
              {spanId}
            </Link>
          ) : (
            spanId ?? <span className="muted">none</span>
          )}
        </dd>
        {!!record.flags && (
          <>
            <dt>Flags</dt>
            <dd className="mono">{record.flags}</dd>
          </>
        )}
      </dl>
      <section>
        <h4>
          Body {record.body && <span className="type-tag">{record.body.type}</span>}
        </h4>
        {record.body ? <pre className="log-body">{bodyPretty(record.body)}</pre> : <p className="muted">no body</p>}
      </section>
      <Attributes title="Attributes" attributes={record.attributes ?? []} dropped={record.droppedAttributesCount} />
      <Attributes title="Resource" attributes={record.resource?.attributes ?? []} dropped={record.resource?.droppedAttributesCount} />
      <Attributes
        title={`Scope ${record.scope?.name ?? ''}${record.scope?.version ? ' ' + record.scope.version : ''}`.trimEnd()}
        attributes={record.scope?.attributes ?? []}
        dropped={record.scope?.droppedAttributesCount}
      />
    </div>
  );
}
