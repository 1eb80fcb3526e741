import { describe, expect, it } from 'vitest';
import { aggregationsFor, alignSeries, labelNames } from './aggregations';

describe('metrics explorer helpers', () => {
  it('offers the aggregations the API accepts for each type', () => {
    expect(aggregationsFor('gauge')).not.toContain('rate');
    expect(aggregationsFor('histogram')[0]).toBe('quantile');
    expect(aggregationsFor('sum')[0]).toBe('rate');
  });

  it('lists label names by how many series carry them', () => {
    expect(labelNames([{ labels: { a: '1', b: '2' } }, { labels: { b: '3' } }])).toEqual(['b', 'a']);
  });

  it('aligns series and exemplars on one time axis', () => {
    const data = alignSeries([{ points: [[1000, 1], [3000, 3]] }], [{ time_ms: 2000, value: 9 }]);
    expect(data).toEqual([
      [1, 2, 3],
      [1, null, 3],
      [null, 9, null],
    ]);
  });
});
