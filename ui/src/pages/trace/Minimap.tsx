import { useEffect, useMemo, useRef, type MouseEvent } from 'react';
import { serviceColor } from '../../lib/colors';
import { visibleRows, type SpanTree } from '../../lib/tree';

const HEIGHT = 56;

/**
 * Every visible row of the waterfall squeezed into one canvas, with the
 * part on screen outlined; a click scrolls the waterfall there.
 */
export function Minimap({
  tree,
  collapsed,
  viewport,
  onJump,
}: {
  tree: SpanTree;
  collapsed: Set<number>;
  viewport: [number, number];
  onJump: (row: number) => void;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const rows = useMemo(() => visibleRows(tree, collapsed), [tree, collapsed]);
  const total = useMemo(
    () => tree.spans.reduce((m, s) => Math.max(m, s.startOffsetNanos + s.durationNanos), 1),
    [tree],
  );
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    // Drawn in the next frame, not in React's commit: opening a large trace
    // is then two shorter tasks instead of one long one.
    const frame = requestAnimationFrame(() => {
      const width = el.clientWidth || 800;
      el.width = width * devicePixelRatio;
      el.height = HEIGHT * devicePixelRatio;
      const ctx = el.getContext('2d');
      if (!ctx) return;
      ctx.scale(devicePixelRatio, devicePixelRatio);
      ctx.clearRect(0, 0, width, HEIGHT);
      const rowHeight = Math.max(HEIGHT / Math.max(rows.length, 1), 0.5);
      const colors = new Map<string, string>();
      rows.forEach((i, row) => {
        const s = tree.spans[i];
        let color = colors.get(s.serviceName);
        if (color === undefined) colors.set(s.serviceName, (color = serviceColor(s.serviceName)));
        ctx.fillStyle = s.error ? '#e15759' : color;
        ctx.fillRect(
          (s.startOffsetNanos / total) * width,
          (row / rows.length) * HEIGHT,
          Math.max((s.durationNanos / total) * width, 1),
          rowHeight,
        );
    });
    });
    return () => cancelAnimationFrame(frame);
  }, [rows, tree, total]);
  // The viewport is a box over the canvas: scrolling never repaints 100k spans.
  const [first, last] = viewport;
  const top = (first / Math.max(rows.length, 1)) * HEIGHT;
  const height = Math.max(((last + 1 - first) / Math.max(rows.length, 1)) * HEIGHT, 3);
  const click = (e: MouseEvent<HTMLCanvasElement>) => {
    const rect = e.currentTarget.getBoundingClientRect();
    onJump(Math.floor(((e.clientY - rect.top) / rect.height) * rows.length));
  };
  return (
    <div className="minimap" style={{ height: HEIGHT }}>
      <canvas ref={canvas} style={{ height: HEIGHT }} onClick={click} aria-label="Trace minimap" />
      <div className="minimap-view" style={{ top, height }} />
    </div>
  );
}
