import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router-dom';
import { getJson, request } from '../../api/client';
import type { TraceLogsResponse, TraceOutline, TraceOverview } from '../../api/types';
import { ErrorBox, Loading } from '../../components/Status';
import { Time } from '../../components/Time';
import { serviceColor } from '../../lib/colors';
import { formatCount, formatDuration, nanosToMillis } from '../../lib/format';
import {
  buildTree,
  collapsedFromUrl,
  criticalPath,
  findSpans,
  reveal,
  spansPerService,
  toggledIds,
  type SpanTree,
} from '../../lib/tree';
import { adjustSkew } from '../../lib/skew';
import { saveBlob } from '../../lib/download';
import { useApi, type Loaded } from '../../lib/useApi';
import { Minimap } from './Minimap';
import { OverviewPanel } from './OverviewPanel';
import { SpanDetail } from './SpanDetail';
import { logsLabel, TraceLogs } from './TraceLogs';
import { Waterfall } from './Waterfall';
import { firstOutline, useTraceWindows } from './windows';

export function TracePage() {
  const { traceId = '' } = useParams();
  const [params] = useSearchParams();
  // A large trace opens as a window that also holds the span the URL names.
  const outline = useApi(traceId, (signal) => firstOutline(traceId, params.get('span'), signal));
  // Requested beside the outline, not after it; a failure shows only where
  // the logs would be.
  const logs = useApi(traceId, (signal) =>
    getJson<TraceLogsResponse>(`/api/v1/traces/${encodeURIComponent(traceId)}/logs`, signal),
  );
  if (outline.state === 'loading') return <Loading what={`trace ${traceId}`} />;
  if (outline.state === 'error') return <ErrorBox error={outline.error} />;
  return <TraceView key={traceId} outline={outline.data} logs={logs} />;
}

function TraceView({ outline, logs }: { outline: TraceOutline; logs: Loaded<TraceLogsResponse> }) {
  const [params, setParams] = useSearchParams();
  const find = params.get('find') ?? '';
  const showCritical = params.get('critical') === '1';
  const windows = useTraceWindows(outline, find, showCritical);
  const raw = useMemo(() => buildTree(windows.spans), [windows.spans]);
  // Raw times by default; adjusted ones only when asked for, with a count.
  const skew = params.get('skew') === '1';
  const adjusted = useMemo(() => (skew ? adjustSkew(raw) : null), [raw, skew]);
  const tree = useMemo(() => (adjusted ? buildTree(adjusted.spans) : raw), [adjusted, raw]);
  const selectedId = params.get('span');
  const selected = selectedId ? tree.index.get(selectedId) : undefined;
  // Collapsed subtrees live in the URL (a base and the spans flipped from
  // it), so a shared link or a reload shows the same tree.
  const collapseBase = params.get('collapse') ?? (outline.windowed ? 'none' : null);
  const toggledParam = params.get('toggled') ?? '';
  const collapsed = useMemo(
    () => collapsedFromUrl(tree, collapseBase, toggledParam),
    [tree, collapseBase, toggledParam],
  );
  const showLogs = params.get('logs') === '1';
  // A window's critical path and matches come from the server (the whole
  // trace); a whole trace's are computed here.
  const critical = useMemo(
    () => (showCritical ? (windows.critical(tree) ?? (outline.windowed ? new Set<number>() : criticalPath(tree))) : new Set<number>()),
    [tree, showCritical, windows, outline.windowed],
  );
  const found = useMemo(() => windows.found(tree), [windows, tree]);
  const hits = useMemo(
    () => found?.hits ?? (outline.windowed ? [] : findSpans(tree, find)),
    [found, tree, find, outline.windowed],
  );
  const hitTotal = found?.total ?? hits.length;
  const [viewport, setViewport] = useState<[number, number]>([0, 0]);
  const [scrollTo, setScrollTo] = useState<{ row: number } | null>(null);

  const setParam = useCallback(
    (key: string, value: string | null, replace = true) => {
      setParams(
        (prev) => {
          const next = new URLSearchParams(prev);
          if (value === null || value === '') next.delete(key);
          else next.set(key, value);
          return next;
        },
        { replace },
      );
    },
    [setParams],
  );
  const setCollapsed = useCallback(
    (update: (c: Set<number>) => Set<number>) => {
      const ids = toggledIds(tree, collapseBase, update(collapsed));
      if (ids !== toggledParam) setParam('toggled', ids);
    },
    [tree, collapseBase, collapsed, toggledParam, setParam],
  );
  const setCollapseBase = (base: string | null) =>
    setParams(
      (prev) => {
        const next = new URLSearchParams(prev);
        next.delete('toggled');
        if (base === null) next.delete('collapse');
        else next.set('collapse', base);
        return next;
      },
      { replace: true },
    );
  // A span chosen from outside the waterfall (a link, the back button) is
  // shown: its collapsed ancestors open.
  useEffect(() => {
    if (selected !== undefined) setCollapsed((c) => reveal(tree, c, selected));
    // Only when the selection changes: the user may collapse around it after.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [selected]);
  const select = useCallback(
    (i: number | undefined) => setParam('span', i === undefined ? null : tree.spans[i].spanId),
    [setParam, tree],
  );
  // Selects span `i` and opens its ancestors in one URL update (two would
  // each start from the same URL, and the second would undo the first).
  const focusSpan = (i: number) => {
    const ids = toggledIds(tree, collapseBase, reveal(tree, collapsed, i));
    setParams(
      (prev) => {
        const next = new URLSearchParams(prev);
        next.set('span', tree.spans[i].spanId);
        if (ids) next.set('toggled', ids);
        else next.delete('toggled');
        return next;
      },
      { replace: true },
    );
  };
  // Opening a subtree the window left out loads it; it shows open, since a
  // window's base collapses nothing.
  const loadChildren = (i: number) => void windows.loadChildren(tree.spans[i].spanId);
  // A span named from the summary is loaded with its ancestors, then selected.
  const revealSpan = (spanId: string) => {
    void windows.reveal(spanId).then((done) => done && setParam('span', spanId, false));
  };
  const loadingRows = useMemo(() => {
    const rows = new Set<number>();
    for (const id of windows.loading) {
      const i = tree.index.get(id);
      if (i !== undefined) rows.add(i);
    }
    return rows;
  }, [windows.loading, tree]);
  const hitPosition = selected !== undefined ? hits.indexOf(selected) : -1;
  const nextHit = (step: number) => {
    if (!hits.length) return;
    focusSpan(hits[(hitPosition + step + hits.length) % hits.length]);
  };

  return (
    <div className="trace-page">
      <TraceHeader outline={outline} tree={tree} overview={windows.overview} />
      {windows.overview && (
        <OverviewPanel
          overview={windows.overview}
          loadedSpans={tree.spans.length}
          spanCount={outline.spanCount}
          onReveal={revealSpan}
          onShowCritical={() => setParam('critical', '1')}
        />
      )}
      {windows.failure !== null && <ErrorBox error={windows.failure} />}
      <div className="trace-toolbar">
        <input
          type="search"
          aria-label="Find spans"
          placeholder="Find span by name, service or ID"
          value={find}
          onChange={(e) => setParam('find', e.target.value)}
          onKeyDown={(e) => e.key === 'Enter' && nextHit(e.shiftKey ? -1 : 1)}
        />
        {find && (
          <span className="muted">
            <span data-testid="find-count" aria-live="polite">
              {windows.searching
                ? 'searching…'
                : hitTotal
                  ? `${hitPosition + 1 || '–'} / ${formatCount(hitTotal)}`
                  : 'no match'}
            </span>
            <button onClick={() => nextHit(-1)} aria-label="Previous match">↑</button>
            <button onClick={() => nextHit(1)} aria-label="Next match">↓</button>
          </span>
        )}
        <label className="check">
          <input type="checkbox" checked={showCritical} onChange={(e) => setParam('critical', e.target.checked ? '1' : null)} />
          Critical path
        </label>
        <label className="check" title="Move spans of another service that start before or end after their parent into it">
          <input type="checkbox" checked={skew} onChange={(e) => setParam('skew', e.target.checked ? '1' : null)} />
          Adjust clock skew
          {adjusted && <span className="muted">({formatCount(adjusted.shifted)} spans shifted)</span>}
        </label>
        <button
          aria-pressed={showLogs}
          className={logs.state === 'error' ? 'err-text' : undefined}
          onClick={() => setParam('logs', showLogs ? null : '1')}
        >
          {logsLabel(logs)}
        </button>
        <button onClick={() => setCollapseBase('none')}>Expand all</button>
        <button onClick={() => setCollapseBase('below-1')}>Collapse all</button>
        <Link to={`/compare?a=${outline.traceId}`}>Compare…</Link>
        <button
          onClick={() => {
            request(`/api/v1/traces/${outline.traceId}?format=otlp`)
              .then((response) => response.blob())
              .then((blob) => saveBlob(blob, `trace-${outline.traceId}.json`))
              .catch((e: unknown) => window.alert(`download failed: ${String(e)}`));
          }}
        >
          Download OTLP/JSON
        </button>
      </div>
      <Minimap tree={tree} collapsed={collapsed} viewport={viewport} onJump={(row) => setScrollTo({ row })} />
      <div className="trace-body">
        <Waterfall
          tree={tree}
          durationNanos={outline.durationNanos}
          collapsed={collapsed}
          setCollapsed={setCollapsed}
          selected={selected}
          onSelect={select}
          critical={critical}
          hits={hits}
          onViewport={setViewport}
          scrollTo={scrollTo}
          onLoadChildren={loadChildren}
          loading={loadingRows}
        />
        {selected !== undefined && (
          <SpanDetail
            key={tree.spans[selected].spanId}
            traceId={outline.traceId}
            outlineSpan={tree.spans[selected]}
            traceStartNanos={outline.startTimeUnixNano}
            logs={logs}
            onClose={() => select(undefined)}
          />
        )}
      </div>
      {showLogs && (
        <TraceLogs
          logs={logs}
          outline={outline}
          tree={tree}
          selectedSpanId={selectedId}
          onSelect={focusSpan}
          onClose={() => setParam('logs', null)}
        />
      )}
    </div>
  );
}

function TraceHeader({
  outline,
  tree,
  overview,
}: {
  outline: TraceOutline;
  tree: SpanTree;
  overview: Loaded<TraceOverview> | null;
}) {
  const root = tree.spans[tree.roots[0]];
  // A window's counts per service and depth are the server's (the whole trace).
  const whole = overview?.state === 'done' ? overview.data : undefined;
  const perService: [string, number][] = whole
    ? whole.services.map((s) => [s.serviceName, s.spanCount])
    : outline.windowed
      ? outline.services.map((s) => [s, NaN])
      : spansPerService(tree);
  const orphans = whole ? whole.orphanCount : tree.orphans;
  const depth = whole ? whole.depth : tree.depth.reduce((a, b) => Math.max(a, b), 0) + 1;
  return (
    <section className="trace-header">
      <h2>
        {root ? `${root.serviceName}: ${root.name}` : outline.traceId}
        {orphans > 0 && (
          <span className="badge warn" title="Some spans name a parent that was not received">
            partial: {formatCount(orphans)} spans without their parent
          </span>
        )}
      </h2>
      <div className="facts">
        <span className="mono">{outline.traceId}</span>
        <span>
          <Time millis={nanosToMillis(outline.startTimeUnixNano)} />
        </span>
        <span>{formatDuration(outline.durationNanos)}</span>
        <span>{formatCount(outline.spanCount)} spans</span>
        <span className={outline.errorCount ? 'err-text' : undefined}>{formatCount(outline.errorCount)} {outline.errorCount === 1 ? 'error' : 'errors'}</span>
        <span>depth {depth}</span>
      </div>
      <div className="services">
        {perService.map(([service, n]) => (
          <span key={service} className="svc-tag" style={{ borderColor: serviceColor(service) }}>
            <span className="svc-dot" style={{ background: serviceColor(service) }} />
            {service} {!Number.isNaN(n) && <small>{formatCount(n)}</small>}
          </span>
        ))}
      </div>
    </section>
  );
}
