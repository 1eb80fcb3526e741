import { describe, expect, it } from 'vitest';
import type { LogVolume } from '../api/types';
import { bodyLine, bodyPretty, formatOffset, offsetNanos, recordBand, severityBand, severityLabel, traceLogsRange, volumeChartData } from './logs';

describe('severityBand', () => {
  it('maps the OTLP bands of four', () => {
    expect(severityBand(0)).toBe('unspecified');
    expect(severityBand(1)).toBe('trace');
    expect(severityBand(4)).toBe('trace');
    expect(severityBand(5)).toBe('debug');
    expect(severityBand(9)).toBe('info');
    expect(severityBand(13)).toBe('warn');
    expect(severityBand(17)).toBe('error');
    expect(severityBand(20)).toBe('error');
    expect(severityBand(21)).toBe('fatal');
    expect(severityBand(24)).toBe('fatal');
  });

  it('calls anything outside 1..24 unspecified', () => {
    expect(severityBand(25)).toBe('unspecified');
    expect(severityBand(-1)).toBe('unspecified');
    expect(severityBand(undefined)).toBe('unspecified');
    expect(severityBand(2.5)).toBe('unspecified');
  });

  it("prefers the server's band, falls back to the number", () => {
    expect(recordBand({ severity: 'warn', severityNumber: 13 })).toBe('warn');
    expect(recordBand({ severity: 'weird' as never, severityNumber: 18 })).toBe('error');
    expect(severityLabel({ severity: 'warn', severityNumber: 13, severityText: 'WARNING' })).toBe('WARNING');
    expect(severityLabel({ severity: 'info', severityNumber: 9, severityText: '' })).toBe('INFO');
  });
});

describe('bodies', () => {
  const kvlist = {
    type: 'kvlist',
    value: [
      { key: 'user', type: 'string', value: 'ada' },
      { key: 'tags', type: 'array', value: [{ type: 'int', value: 1 }, { type: 'bool', value: true }] },
    ],
  };

  it('puts strings on one line', () => {
    expect(bodyLine({ type: 'string', value: 'payment declined' })).toBe('payment declined');
    expect(bodyLine({ type: 'string', value: 'line 1\nline 2' })).toBe('line 1 ⏎ line 2');
    expect(bodyPretty({ type: 'string', value: 'line 1\nline 2' })).toBe('line 1\nline 2');
  });

  it('shows structures as JSON: compact in the row, indented when expanded', () => {
    expect(bodyLine(kvlist)).toBe('{"user":"ada","tags":[1,true]}');
    expect(bodyPretty(kvlist)).toBe('{\n  "user": "ada",\n  "tags": [\n    1,\n    true\n  ]\n}');
    expect(bodyLine({ type: 'array', value: [{ type: 'string', value: 'a' }, { type: 'double', value: 1.5 }] })).toBe('["a",1.5]');
  });

  it('shows scalars, bytes and nothing', () => {
    expect(bodyLine({ type: 'int', value: '9007199254740993' })).toBe('9007199254740993');
    expect(bodyLine({ type: 'bool', value: false })).toBe('false');
    expect(bodyLine({ type: 'bytes', value: 'aGVsbG8=' })).toBe('aGVsbG8=');
    expect(bodyLine({ type: 'empty', value: null })).toBe('(empty)');
    expect(bodyLine(null)).toBe('');
    expect(bodyPretty(null)).toBe('');
  });
});

describe('offsetNanos', () => {
  it('subtracts nanosecond strings exactly', () => {
    expect(offsetNanos('1700000000000000123', '1700000000000000000')).toBe(123);
    expect(offsetNanos('1699999999999999000', '1700000000000000000')).toBe(-1000);
    expect(offsetNanos('x', '1')).toBeNaN();
    expect(formatOffset(offsetNanos('1700000000012300000', '1700000000000000000'))).toBe('+12.3 ms');
    expect(formatOffset(-4e6)).toBe('-4 ms');
    expect(formatOffset(NaN)).toBe('');
  });
});

describe('volumeChartData', () => {
  const volume: LogVolume = {
    start: 0,
    end: 4000,
    step_ms: 1000,
    total: 9,
    series: [
      { severity: 'info', counts: [[0, 3], [2000, 1]] },
      { severity: 'error', counts: [[2000, 2]] },
      { severity: 'debug', counts: [[0, 1], [3000, 2]] },
    ],
  };

  it('fills every step of the range and stacks bands in severity order', () => {
    const { xs, series } = volumeChartData(volume);
    expect(xs).toEqual([0, 1, 2, 3]);
    // Most severe first: each is drawn over by the bands below it.
    expect(series.map((s) => s.band)).toEqual(['error', 'info', 'debug']);
    expect(series[0].counts).toEqual([0, 0, 2, 0]);
    expect(series[0].stacked).toEqual([4, null, 3, 2]);
    expect(series[1].stacked).toEqual([4, null, 1, 2]);
    expect(series[2].stacked).toEqual([1, null, null, 2]);
  });

  it("keeps the server's step grid when it does not start at the range", () => {
    const { xs } = volumeChartData({
      start: 1500,
      end: 4500,
      step_ms: 1000,
      total: 1,
      series: [{ severity: 'warn', counts: [[3000, 1]] }],
    });
    expect(xs).toEqual([1, 2, 3, 4]);
  });

  it('has the range but no series without records', () => {
    const { xs, series } = volumeChartData({ start: 0, end: 2000, step_ms: 1000, total: 0, series: [] });
    expect(xs).toEqual([0, 1]);
    expect(series).toEqual([]);
  });
});

describe('traceLogsRange', () => {
  it('covers the trace and its logs, a minute either side', () => {
    const start = '1700000000000000000'; // 2023-11-14T22:13:20Z
    expect(traceLogsRange(start, 2e9, [])).toEqual({ start: '2023-11-14T22:12:20.000Z', end: '2023-11-14T22:14:22.000Z' });
    const logs = [{ timeUnixNano: '1699999990000000000' }, { timeUnixNano: '1700000030500000000' }];
    expect(traceLogsRange(start, 2e9, logs)).toEqual({ start: '2023-11-14T22:12:10.000Z', end: '2023-11-14T22:14:50.500Z' });
  });
});
