// Large traces come as windows of their outline (docs/api.md): the top
// levels first, then each subtree as it is opened, and the spans a search,
// the critical path or a link points at with their ancestors. This hook
// keeps the spans loaded so far and loads more.

import { useCallback, useEffect, useEffectEvent, useMemo, useState } from 'react';
import { getJson, query } from '../../api/client';
import type { TraceOutline, TraceOverview } from '../../api/types';
import { mergeSpans, type SpanTree } from '../../lib/tree';
import { useApi, type Loaded } from '../../lib/useApi';

/** Traces with more spans than this open as a window of their outline. */
export const WINDOW_SPANS = 10_000;

export function outlinePath(traceId: string, params: Record<string, string | undefined> = {}): string {
  return `/api/v1/traces/${encodeURIComponent(traceId)}/outline${query(params)}`;
}

/** The first outline of a trace: whole when small, else a window that shows `spanId` too. */
export function firstOutline(traceId: string, spanId: string | null, signal: AbortSignal): Promise<TraceOutline> {
  return getJson<TraceOutline>(
    outlinePath(traceId, { max_spans: String(WINDOW_SPANS), reveal: spanId ?? undefined }),
    signal,
  );
}

export interface TraceWindows {
  /** The spans loaded so far, in start order. */
  spans: TraceOutline['spans'];
  /** The server's summary of a windowed trace. */
  overview: Loaded<TraceOverview> | null;
  /** Loads the children (and levels below, within the window) of a span. */
  loadChildren: (spanId: string) => Promise<boolean>;
  /** Loads a span with its ancestors. */
  reveal: (spanId: string) => Promise<boolean>;
  /** Span IDs whose children are being loaded. */
  loading: ReadonlySet<string>;
  /** The last failed load, shown until the next one works. */
  failure: unknown;
  /** Whether the server is still counting the matches of `find` in a windowed trace. */
  searching: boolean;
  /** Span indices matching `find` and their total (in the whole trace when windowed). */
  found: (tree: SpanTree) => { hits: number[]; total: number } | null;
  /** Span indices on the critical path, when windowed. */
  critical: (tree: SpanTree) => Set<number> | null;
}

/**
 * The loaded spans of `outline`. When it is a window, `find` and the
 * critical path are asked of the server, which sends the spans they name.
 */
export function useTraceWindows(outline: TraceOutline, find: string, showCritical: boolean): TraceWindows {
  const traceId = outline.traceId;
  const windowed = outline.windowed === true;
  const [spans, setSpans] = useState(outline.spans);
  const [loading, setLoading] = useState<ReadonlySet<string>>(new Set());
  const [failure, setFailure] = useState<unknown>(null);
  const overview = useApi(windowed ? traceId : null, (signal) =>
    getJson<TraceOverview>(`/api/v1/traces/${encodeURIComponent(traceId)}/summary`, signal),
  );
  const load = useCallback(
    async (params: Record<string, string>) => {
      try {
        const more = await getJson<TraceOutline>(outlinePath(traceId, params));
        setSpans((loaded) => mergeSpans(loaded, more.spans));
        setFailure(null);
        return true;
      } catch (e) {
        setFailure(e);
        return false;
      }
    },
    [traceId],
  );
  const loadChildren = useCallback(
    async (spanId: string) => {
      setLoading((ids) => new Set(ids).add(spanId));
      const done = await load({ under: spanId, max_spans: String(WINDOW_SPANS) });
      setLoading((ids) => {
        const next = new Set(ids);
        next.delete(spanId);
        return next;
      });
      return done;
    },
    [load],
  );
  const reveal = useCallback((spanId: string) => load({ max_spans: '1', reveal: spanId }), [load]);

  const needle = find.trim();
  const merge = useCallback((more: TraceOutline) => setSpans((loaded) => mergeSpans(loaded, more.spans)), []);
  const foundWindow = useWindowAnswer(
    windowed && needle ? `find:${needle}` : null,
    outlinePath(traceId, { max_spans: '1', find: needle }),
    merge,
    setFailure,
  );
  const criticalWindow = useWindowAnswer(
    windowed && showCritical ? 'critical' : null,
    outlinePath(traceId, { max_spans: '1', critical_path: 'true' }),
    merge,
    setFailure,
  );

  const found = useCallback(
    (tree: SpanTree) => {
      if (!windowed || !foundWindow) return null;
      const hits = indices(tree, foundWindow.foundSpanIds ?? []);
      return { hits, total: foundWindow.foundCount ?? hits.length };
    },
    [windowed, foundWindow],
  );
  const critical = useCallback(
    (tree: SpanTree) =>
      windowed && criticalWindow ? new Set(indices(tree, criticalWindow.criticalPathSpanIds ?? [])) : null,
    [windowed, criticalWindow],
  );
  const searching = windowed && needle !== '' && foundWindow === null && failure === null;
  return useMemo(
    () => ({
      spans,
      overview: windowed ? overview : null,
      loadChildren,
      reveal,
      loading,
      failure,
      searching,
      found,
      critical,
    }),
    [spans, windowed, overview, loadChildren, reveal, loading, failure, searching, found, critical],
  );
}

/**
 * The answer to `path` while `key` stays the same (null before it comes or
 * without a key); its spans go to `merge` as it arrives, so they stay loaded
 * after the key changes.
 */
function useWindowAnswer(
  key: string | null,
  path: string,
  merge: (outline: TraceOutline) => void,
  fail: (error: unknown) => void,
): TraceOutline | null {
  const [answer, setAnswer] = useState<{ key: string; outline: TraceOutline } | null>(null);
  const ask = useEffectEvent((signal: AbortSignal) => getJson<TraceOutline>(path, signal));
  useEffect(() => {
    if (key === null) return;
    const abort = new AbortController();
    ask(abort.signal).then(
      (outline) => {
        if (abort.signal.aborted) return;
        merge(outline);
        setAnswer({ key, outline });
      },
      (error: unknown) => !abort.signal.aborted && fail(error),
    );
    return () => abort.abort();
  }, [key, merge, fail]);
  return answer !== null && answer.key === key ? answer.outline : null;
}

/** The indices of the spans with these IDs that the tree holds. */
function indices(tree: SpanTree, ids: string[]): number[] {
  const out: number[] = [];
  for (const id of ids) {
    const i = tree.index.get(id);
    if (i !== undefined) out.push(i);
  }
  return out;
}
