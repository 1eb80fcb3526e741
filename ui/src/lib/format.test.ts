import { describe, expect, it } from 'vitest';
import { formatAgo, formatDuration, formatNumber, nanosToMillis, parseDuration } from './format';

describe('formatDuration', () => {
  it('picks a unit people read at a glance', () => {
    expect(formatDuration(12)).toBe('12 ns');
    expect(formatDuration(789_000)).toBe('789 µs');
    expect(formatDuration(45_600_000)).toBe('45.6 ms');
    expect(formatDuration(1_230_000_000)).toBe('1.23 s');
    expect(formatDuration(125e9)).toBe('2 min 5 s');
    expect(formatDuration(2 * 3600e9 + 30 * 60e9)).toBe('2 h 30 min');
  });
});

describe('formatNumber', () => {
  it('abbreviates large numbers and trims small ones', () => {
    expect(formatNumber(1_234_567)).toBe('1.23M');
    expect(formatNumber(20_000)).toBe('20k');
    expect(formatNumber(999)).toBe('999');
    expect(formatNumber(0.123456)).toBe('0.1235');
  });
});

describe('nanosToMillis', () => {
  it('keeps millisecond precision of 19-digit nanosecond strings', () => {
    expect(nanosToMillis('1731000000250000000')).toBe(1731000000250);
    expect(nanosToMillis('1500000')).toBe(1.5);
  });
});

describe('parseDuration', () => {
  it('reads the units of the search form', () => {
    expect(parseDuration('250ms')).toBe(250e6);
    expect(parseDuration('2s')).toBe(2e9);
    expect(parseDuration('1.5 m')).toBe(90e9);
    expect(parseDuration('100')).toBe(100);
    expect(parseDuration('fast')).toBeUndefined();
  });
});

describe('formatAgo', () => {
  it('says how long ago', () => {
    expect(formatAgo(1000, 61_000)).toBe('1 min ago');
    expect(formatAgo(0, 7_200_000)).toBe('2 h ago');
  });
});
