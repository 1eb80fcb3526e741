import type { TraceOverview } from '../../api/types';
import { ErrorBox } from '../../components/Status';
import { serviceColor } from '../../lib/colors';
import { formatCount, formatDuration } from '../../lib/format';
import type { Loaded } from '../../lib/useApi';

/** Levels listed before the rest are summed up. */
const LEVELS_SHOWN = 12;

/**
 * What a large trace holds, from the server's summary: how much of it is
 * loaded, spans per level, the critical path and where errors start. A
 * span named here is loaded with its ancestors and selected.
 */
export function OverviewPanel({
  overview,
  loadedSpans,
  spanCount,
  onReveal,
  onShowCritical,
}: {
  overview: Loaded<TraceOverview>;
  loadedSpans: number;
  spanCount: number;
  onReveal: (spanId: string) => void;
  onShowCritical: () => void;
}) {
  return (
    <section className="trace-overview" aria-label="Trace summary">
      <p>
        Large trace: <strong data-testid="loaded-spans">{formatCount(loadedSpans)}</strong> of{' '}
        {formatCount(spanCount)} spans loaded. Opening a subtree loads it; find and the spans named below load
        what they point at.
      </p>
      {overview.state === 'loading' && <p className="muted">Summing up the trace…</p>}
      {overview.state === 'error' && <ErrorBox error={overview.error} />}
      {overview.state === 'done' && <Facts overview={overview.data} onReveal={onReveal} onShowCritical={onShowCritical} />}
    </section>
  );
}

function Facts({
  overview,
  onReveal,
  onShowCritical,
}: {
  overview: TraceOverview;
  onReveal: (spanId: string) => void;
  onShowCritical: () => void;
}) {
  const shown = overview.levels.slice(0, LEVELS_SHOWN);
  const rest = overview.levels.slice(LEVELS_SHOWN).reduce((n, level) => n + level.spanCount, 0);
  return (
    <>
      <div className="levels" aria-label="Spans per level">
        {shown.map((level) => (
          <span key={level.depth} className={level.errorCount ? 'err-text' : undefined}>
            level {level.depth + 1}: {formatCount(level.spanCount)}
          </span>
        ))}
        {rest > 0 && <span>deeper: {formatCount(rest)}</span>}
      </div>
      <div>
        Critical path: {formatCount(overview.criticalPathSpanCount)} spans{' '}
        <button onClick={onShowCritical}>Highlight</button>
      </div>
      {overview.errorOriginCount > 0 && (
        <details open>
          <summary>
            {formatCount(overview.errorOriginCount)} {overview.errorOriginCount === 1 ? 'span' : 'spans'} where errors
            start
            {overview.errorOriginCount > overview.errorOrigins.length && ` (first ${overview.errorOrigins.length})`}
          </summary>
          <ul className="error-origins">
            {overview.errorOrigins.map((origin) => (
              <li key={origin.spanId}>
                <button className="link" onClick={() => onReveal(origin.spanId)}>
                  <span className="svc-dot" style={{ background: serviceColor(origin.serviceName) }} />
                  {origin.serviceName}: {origin.name}
                </button>{' '}
                <small className="muted">
                  {formatDuration(origin.durationNanos)}
                  {origin.ancestors.length > 0 && ' · under '}
                  {origin.depth > origin.ancestors.length && '… › '}
                  {origin.ancestors.map((a) => a.name).join(' › ')}
                </small>
              </li>
            ))}
          </ul>
        </details>
      )}
    </>
  );
}
