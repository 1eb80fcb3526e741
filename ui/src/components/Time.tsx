import { formatAgo, formatLocal, formatUtc } from '../lib/format';

/** A time in local time; UTC on hover. */
export function Time({ millis, ago = false }: { millis: number; ago?: boolean }) {
  return (
    <time dateTime={formatUtc(millis)} title={`${formatUtc(millis)} (UTC)`}>
      {ago ? formatAgo(millis) : formatLocal(millis)}
    </time>
  );
}
