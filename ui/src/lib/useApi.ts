import { useEffect, useEffectEvent, useState } from 'react';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; error: unknown } | { state: 'done'; data: T };

/** One object, so memos and effects keyed on a result stay put while loading. */
const LOADING = { state: 'loading' } as const;

/**
 * Runs `load` whenever `key` changes and keeps its latest outcome; a stale
 * request is aborted so an older answer never replaces a newer one. A null
 * key loads nothing.
 */
export function useApi<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [outcome, setOutcome] = useState<{ key: string; loaded: Loaded<T> } | null>(null);
  const start = useEffectEvent((signal: AbortSignal) => load(signal));
  useEffect(() => {
    if (key === null) return;
    const abort = new AbortController();
    start(abort.signal).then(
      (data) => !abort.signal.aborted && setOutcome({ key, loaded: { state: 'done', data } }),
      (error) => !abort.signal.aborted && setOutcome({ key, loaded: { state: 'error', error } }),
    );
    return () => abort.abort();
  }, [key]);
  // An outcome for another key is stale: the new request is still loading.
  return outcome !== null && outcome.key === key ? outcome.loaded : LOADING;
}
