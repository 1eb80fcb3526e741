import { describe, expect, it } from 'vitest';
import { toggled } from './sets';
import { pinnedPage, rangeFields, submitParams, withoutCursor } from './useUrlForm';

describe('URL forms', () => {
  it('reads start/end without a range as an absolute range', () => {
    expect(rangeFields(new URLSearchParams(''))).toEqual({ range: '1h', start: '', end: '' });
    expect(rangeFields(new URLSearchParams('range=6h'))).toEqual({ range: '6h', start: '', end: '' });
    expect(rangeFields(new URLSearchParams('start=2024-01-01T00:00:00Z'))).toEqual({
      range: 'custom',
      start: '2024-01-01T00:00:00Z',
      end: '',
    });
  });

  it('writes the non-empty fields, not range=custom, and a fresh t', () => {
    const form = { service: 'shop', q: '', range: 'custom', start: 'a', end: 'b' };
    expect(submitParams(form, 42).toString()).toBe('service=shop&start=a&end=b&t=42');
  });

  it('pins a relative range for the next page and drops the cursor for the first', () => {
    const params = new URLSearchParams('service=shop&range=1h');
    const next = pinnedPage(params, { start: 'S', end: 'E' }, 'c1');
    expect(next.toString()).toBe('service=shop&start=S&end=E&cursor=c1');
    expect(withoutCursor(next).toString()).toBe('service=shop&start=S&end=E');
    expect(params.toString()).toBe('service=shop&range=1h');
  });
});

describe('toggled', () => {
  it('adds or removes, leaving the input alone', () => {
    const set = new Set([1]);
    expect([...toggled(set, 2)]).toEqual([1, 2]);
    expect([...toggled(set, 1)]).toEqual([]);
    expect([...set]).toEqual([1]);
  });
});
