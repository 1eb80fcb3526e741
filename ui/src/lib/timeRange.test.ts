import { describe, expect, it } from 'vitest';
import { relativeMillis, resolveRange } from './timeRange';

describe('resolveRange', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  it('resolves relative ranges ending now', () => {
    expect(relativeMillis('15m')).toBe(900_000);
    expect(resolveRange(new URLSearchParams('range=6h'), '1h', now)).toEqual({
      start: '2026-01-01T06:00:00.000Z',
      end: '2026-01-01T12:00:00.000Z',
    });
    expect(resolveRange(new URLSearchParams('range=bogus'), '1h', now).start).toBe('2026-01-01T11:00:00.000Z');
  });
  it('prefers absolute bounds', () => {
    const params = new URLSearchParams('range=1h&start=2025-12-31T00:00:00Z&end=2025-12-31T01:00:00Z');
    expect(resolveRange(params, '1h', now)).toEqual({
      start: '2025-12-31T00:00:00.000Z',
      end: '2025-12-31T01:00:00.000Z',
    });
  });
});
