import { RELATIVE_RANGES, fromLocalInput, toLocalInput } from '../lib/timeRange';

export interface RangeValue {
  range: string;
  start: string;
  end: string;
}

/** Relative ranges, or an absolute start and end in local time. */
export function TimeRangePicker({ value, onChange }: { value: RangeValue; onChange: (v: RangeValue) => void }) {
  const absolute = value.range === 'custom' || Boolean(value.start || value.end);
  return (
    <span className="range-picker">
      <select
        aria-label="Time range"
        value={absolute ? 'custom' : value.range || '1h'}
        onChange={(e) =>
          onChange(e.target.value === 'custom' ? { ...value, range: 'custom' } : { range: e.target.value, start: '', end: '' })
        }
      >
        {RELATIVE_RANGES.map(([v, label]) => (
          <option key={v} value={v}>
            {label}
          </option>
        ))}
        <option value="custom">Absolute…</option>
      </select>
      {absolute && (
        <>
          <input
            type="datetime-local"
            aria-label="From"
            step="1"
            value={toLocalInput(value.start)}
            onChange={(e) => onChange({ ...value, range: 'custom', start: fromLocalInput(e.target.value) })}
          />
          <input
            type="datetime-local"
            aria-label="To"
            step="1"
            value={toLocalInput(value.end)}
            onChange={(e) => onChange({ ...value, range: 'custom', end: fromLocalInput(e.target.value) })}
          />
        </>
      )}
    </span>
  );
}
