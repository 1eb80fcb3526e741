import { TimeRangePicker } from './TimeRangePicker';
import { useUrlState } from '../lib/useUrlState';

/** The time range of a screen, kept in the URL (`range`, or `start` and `end`). */
export function RangeBar() {
  const { get, set } = useUrlState();
  return (
    <TimeRangePicker
      value={{ range: get('range', '1h'), start: get('start'), end: get('end') }}
      onChange={(v) =>
        v.range === 'custom' && !v.start && !v.end
          ? set({ range: 'custom' })
          : set({ range: v.range === 'custom' ? null : v.range, start: v.start || null, end: v.end || null })
      }
    />
  );
}
