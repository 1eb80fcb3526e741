import { useState } from 'react';
import type { LogRecord } from '../../api/types';
import { SeverityBadge } from '../../components/SeverityBadge';
import { Time } from '../../components/Time';
import { serviceColor } from '../../lib/colors';
import { nanosToMillis } from '../../lib/format';
import { bodyLine, recordBand } from '../../lib/logs';
import { toggled } from '../../lib/sets';
import { useVirtualRows } from '../../lib/useVirtualRows';
import { LogDetail } from './LogDetail';

const ROW_HEIGHT = 28;

/**
 * One line per record, only the rows on screen in the DOM; a click expands
 * a record in place (rows are measured, so expanded ones take their height).
 */
export function LogList({ logs }: { logs: LogRecord[] }) {
  const [expanded, setExpanded] = useState<Set<number>>(() => new Set());
  const { scroller, virtual } = useVirtualRows(logs.length, ROW_HEIGHT, 10);
  const toggle = (i: number) => setExpanded((e) => toggled(e, i));
  return (
    <div ref={scroller} className="log-list" role="list" aria-label="Log records">
      <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
        {virtual.getVirtualItems().map((item) => {
          const record = logs[item.index];
          const open = expanded.has(item.index);
          const body = bodyLine(record.body);
          return (
            <div
              key={item.key}
              ref={virtual.measureElement}
              data-index={item.index}
              className={`log-row sev-${recordBand(record)}${open ? ' open' : ''}`}
              role="listitem"
              data-testid="log-row"
              data-severity={recordBand(record)}
              style={{ transform: `translateY(${item.start}px)` }}
            >
              <button type="button" className="log-summary" aria-expanded={open} onClick={() => toggle(item.index)}>
                <span className="log-time">
                  <Time millis={nanosToMillis(record.timeUnixNano)} />
                </span>
                <SeverityBadge record={record} />
                <span className="log-service">
                  <span className="svc-dot" style={{ background: serviceColor(record.serviceName) }} />
                  {record.serviceName}
                </span>
                <span className="log-text" title={body}>
                  {record.eventName && <span className="label-chip">{record.eventName}</span>}
                  {record.body && record.body.type !== 'string' && <span className="type-tag">{record.body.type}</span>}
                  {body || <span className="muted">(no body)</span>}
                </span>
              </button>
              {open && <LogDetail record={record} />}
            </div>
          );
        })}
      </div>
    </div>
  );
}
