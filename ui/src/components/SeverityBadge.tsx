import type { LogRecord } from '../api/types';
import { recordBand, severityColor, severityLabel } from '../lib/logs';

/** A log record's severity in its band's colour (the same on every screen). */
export function SeverityBadge({ record }: { record: Pick<LogRecord, 'severity' | 'severityNumber' | 'severityText'> }) {
  const band = recordBand(record);
  return (
    <span
      className="sev-badge"
      data-severity={band}
      style={{ background: severityColor(band) }}
      title={`${band} (severity number ${record.severityNumber ?? 0})`}
    >
      {severityLabel(record)}
    </span>
  );
}
