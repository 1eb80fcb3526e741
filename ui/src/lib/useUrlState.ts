import { useCallback } from 'react';
import { useSearchParams } from 'react-router-dom';

/**
 * One screen's state in the URL query: read with `get`, change with `set`
 * (one history entry per change, so the back button undoes it).
 */
export function useUrlState() {
  const [params, setParams] = useSearchParams();
  const get = useCallback((key: string, fallback = '') => params.get(key) ?? fallback, [params]);
  const set = useCallback(
    (changes: Record<string, string | null>, replace = false) =>
      setParams(
        (prev) => {
          const next = new URLSearchParams(prev);
          for (const [key, value] of Object.entries(changes)) {
            if (value === null || value === '') next.delete(key);
            else next.set(key, value);
          }
          return next;
        },
        { replace },
      ),
    [setParams],
  );
  return { params, get, set };
}
