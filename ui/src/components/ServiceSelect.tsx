import type { Loaded } from '../lib/useApi';

/** A service filter: blank is all services; the names fill in once loaded. */
export function ServiceSelect({
  services,
  value,
  onChange,
}: {
  services: Loaded<{ services: string[] }>;
  value: string;
  onChange: (service: string) => void;
}) {
  return (
    <select value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">All services</option>
      {services.state === 'done' &&
        services.data.services.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
    </select>
  );
}
