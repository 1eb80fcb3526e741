import { Link } from 'react-router-dom';
import type { TraceSummary } from '../../api/types';
import { Time } from '../../components/Time';
import { formatCount, formatDuration, nanosToMillis } from '../../lib/format';
import { serviceColor } from '../../lib/colors';

/** One row per trace: root, start, duration, counts, services, completeness. */
export function SearchResults({ traces }: { traces: TraceSummary[] }) {
  const longest = Math.max(...traces.map((t) => t.durationNanos), 1);
  return (
    <table className="results" aria-label="Traces">
      <thead>
        <tr>
          <th>Trace</th>
          <th>Start</th>
          <th>Duration</th>
          <th className="num">Spans</th>
          <th className="num">Errors</th>
          <th>Services</th>
        </tr>
      </thead>
      <tbody>
        {traces.map((t) => (
          <tr key={t.traceId} className={t.errorCount ? 'has-error' : undefined}>
            <td>
              <Link to={`/trace/${t.traceId}`} className="trace-link">
                <span className="svc-dot" style={{ background: serviceColor(t.rootServiceName) }} />
                {t.rootServiceName}: {t.rootSpanName || '(no name)'}
              </Link>
              <div className="muted mono">
                {t.traceId}
                {partialReason(t) && (
                  <span className="badge warn" title={partialReason(t)}>
                    partial
                  </span>
                )}
              </div>
            </td>
            <td>
              <Time millis={nanosToMillis(t.startTimeUnixNano)} ago />
            </td>
            <td>
              <div className="duration-cell">
                <span>{formatDuration(t.durationNanos)}</span>
                <span className="duration-bar" style={{ width: `${(100 * t.durationNanos) / longest}%` }} />
              </div>
            </td>
            <td className="num">{formatCount(t.spanCount)}</td>
            <td className="num">{t.errorCount ? <span className="badge err">{formatCount(t.errorCount)}</span> : 0}</td>
            <td>
              {(t.services ?? []).map((s) => (
                <span key={s} className="svc-tag" style={{ borderColor: serviceColor(s) }}>
                  {s}
                </span>
              ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Why a trace is marked partial, or undefined when it is complete. */
function partialReason(t: TraceSummary): string | undefined {
  if (t.hasRoot === false) return 'No root span was received: the trace is partial';
  if (t.complete === false) return 'Some spans have a parent that was not received: the trace is partial';
  return undefined;
}
