import { useEffect, useState } from 'react';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; error: unknown } | { state: 'done'; data: T };

/**
 * Runs `load` whenever `key` changes and keeps its latest outcome; a stale
 * request is aborted so an older answer never replaces a newer one.
 */
export function useApi<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [result, setResult] = useState<Loaded<T>>({ state: 'loading' });
  useEffect(() => {
    if (key === null) return;
    const abort = new AbortController();
    setResult({ state: 'loading' });
    load(abort.signal).then(
      (data) => !abort.signal.aborted && setResult({ state: 'done', data }),
      (error) => !abort.signal.aborted && setResult({ state: 'error', error }),
    );
    return () => abort.abort();
    // `load` is recreated every render; `key` says when the request changes.
  }, [key]);
  return result;
}
