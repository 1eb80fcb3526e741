import { useEffect, useMemo, type KeyboardEvent } from 'react';
import { serviceColor } from '../../lib/colors';
import { formatCount, formatDuration } from '../../lib/format';
import { toggled } from '../../lib/sets';
import { unloadedChildren, visibleRows, type SpanTree } from '../../lib/tree';
import { useVirtualRows } from '../../lib/useVirtualRows';

const ROW_HEIGHT = 24;
const INDENT = 14;

export interface WaterfallProps {
  tree: SpanTree;
  durationNanos: number;
  collapsed: Set<number>;
  setCollapsed: (update: (c: Set<number>) => Set<number>) => void;
  selected: number | undefined;
  onSelect: (i: number) => void;
  critical: Set<number>;
  hits: number[];
  /** Reports the first and last visible row, for the minimap. */
  onViewport: (rows: [number, number]) => void;
  scrollTo: { row: number } | null;
  /** Loads the children of span `i` the outline window left out. */
  onLoadChildren: (i: number) => void;
  /** Spans whose children are being loaded. */
  loading: ReadonlySet<number>;
}

/**
 * The timeline: one row per visible span, only the rows on screen in the
 * DOM, so 100k-span traces scroll like small ones. Keys: ↑/↓ move, ←/→
 * collapse/expand (or go to parent/child), Home/End, Enter toggles.
 */
export function Waterfall(props: WaterfallProps) {
  const { tree, durationNanos, collapsed, setCollapsed, selected, onSelect, critical, hits, onViewport, scrollTo } = props;
  const { onLoadChildren, loading } = props;
  const rows = useMemo(() => visibleRows(tree, collapsed), [tree, collapsed]);
  const rowOf = useMemo(() => {
    const map = new Map<number, number>();
    rows.forEach((span, row) => map.set(span, row));
    return map;
  }, [rows]);
  const hitSet = useMemo(() => new Set(hits), [hits]);
  const { scroller, virtual } = useVirtualRows(rows.length, ROW_HEIGHT, 20);
  const items = virtual.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  useEffect(() => onViewport([first, last]), [first, last, onViewport]);
  useEffect(() => {
    if (scrollTo) virtual.scrollToIndex(scrollTo.row, { align: 'start' });
  }, [scrollTo, virtual]);
  // Keep the selected span on screen when it changes (keys, search, links).
  const selectedRow = selected === undefined ? undefined : rowOf.get(selected);
  useEffect(() => {
    if (selectedRow !== undefined) virtual.scrollToIndex(selectedRow, { align: 'auto' });
  }, [selectedRow, virtual]);

  // A span whose children were left out of the outline window loads them
  // when opened; one whose children are loaded collapses and expands.
  const toggle = (i: number) => {
    if (!tree.children[i].length && unloadedChildren(tree, i)) onLoadChildren(i);
    else setCollapsed((c) => toggled(c, i));
  };

  const onKey = (e: KeyboardEvent) => {
    if (!rows.length) return;
    const row = selectedRow ?? -1;
    const move = (r: number) => onSelect(rows[Math.max(0, Math.min(rows.length - 1, r))]);
    const span = selected;
    switch (e.key) {
      case 'ArrowDown':
        move(row + 1);
        break;
      case 'ArrowUp':
        move(row - 1);
        break;
      case 'Home':
        move(0);
        break;
      case 'End':
        move(rows.length - 1);
        break;
      case 'PageDown':
        move(row + 20);
        break;
      case 'PageUp':
        move(row - 20);
        break;
      case 'ArrowRight':
        if (span === undefined) return move(0);
        if (collapsed.has(span) || (!tree.children[span].length && unloadedChildren(tree, span))) toggle(span);
        else if (tree.children[span].length) onSelect(tree.children[span][0]);
        break;
      case 'ArrowLeft':
        if (span === undefined) return;
        if (tree.children[span].length && !collapsed.has(span)) toggle(span);
        else if (tree.parent[span] !== -1) onSelect(tree.parent[span]);
        break;
      case 'Enter':
        if (span !== undefined && (tree.children[span].length || unloadedChildren(tree, span))) toggle(span);
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  const total = Math.max(durationNanos, 1);
  return (
    <div className="waterfall">
      <div className="waterfall-head">
        <div className="name-col">Service: span</div>
        <div className="time-col">
          {[0, 0.25, 0.5, 0.75, 1].map((f) => (
            <span key={f} style={{ left: `${f * 100}%` }}>
              {formatDuration(f * durationNanos)}
            </span>
          ))}
        </div>
      </div>
      <div
        ref={scroller}
        className="waterfall-rows"
        tabIndex={0}
        role="tree"
        aria-label="Spans"
        onKeyDown={onKey}
      >
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {items.map((item) => {
            const i = rows[item.index];
            const s = tree.spans[i];
            const loadedKids = tree.children[i].length;
            const unloaded = unloadedChildren(tree, i);
            const kids = loadedKids + unloaded;
            // Children not loaded at all show as a collapsed subtree.
            const isCollapsed = collapsed.has(i) || (!loadedKids && unloaded > 0);
            const left = (100 * s.startOffsetNanos) / total;
            const width = Math.max((100 * s.durationNanos) / total, 0.1);
            const classes = ['span-row'];
            if (i === selected) classes.push('selected');
            if (s.error) classes.push('error');
            if (critical.has(i)) classes.push('critical');
            if (hitSet.has(i)) classes.push('hit');
            return (
              <div
                key={item.key}
                className={classes.join(' ')}
                role="treeitem"
                aria-level={tree.depth[i] + 1}
                aria-expanded={kids ? !isCollapsed : undefined}
                aria-selected={i === selected}
                data-span-id={s.spanId}
                style={{ transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
                onClick={() => onSelect(i)}
              >
                <div className="name-col" style={{ paddingLeft: tree.depth[i] * INDENT }}>
                  {kids ? (
                    <button
                      className="twisty"
                      aria-label={isCollapsed ? `Expand ${kids} children` : 'Collapse'}
                      aria-busy={loading.has(i) || undefined}
                      onClick={(e) => {
                        e.stopPropagation();
                        toggle(i);
                      }}
                    >
                      {isCollapsed ? '▸' : '▾'}
                    </button>
                  ) : (
                    <span className="twisty" />
                  )}
                  <span className="svc-dot" style={{ background: serviceColor(s.serviceName) }} />
                  <span className="svc-name">{s.serviceName}</span>
                  <span className="span-name">{s.name}</span>
                  {isCollapsed && (
                    <span className="badge" title={loadedKids ? 'children' : 'spans below, not loaded yet'}>
                      {loadedKids ? kids : formatCount(tree.spans[i].descendantCount ?? unloaded)}
                    </span>
                  )}
                  {!isCollapsed && unloaded > 0 && (
                    <button
                      className="badge more"
                      disabled={loading.has(i)}
                      onClick={(e) => {
                        e.stopPropagation();
                        onLoadChildren(i);
                      }}
                    >
                      {loading.has(i) ? 'loading…' : `+${formatCount(unloaded)} more`}
                    </button>
                  )}
                  {s.linkCount > 0 && <span className="badge" title="links">⛓ {s.linkCount}</span>}
                </div>
                <div className="time-col">
                  <div
                    className="bar"
                    style={{ left: `${left}%`, width: `${width}%`, background: s.error ? undefined : serviceColor(s.serviceName) }}
                  />
                  <span className="bar-label" style={{ left: `${Math.min(left + width, 85)}%` }}>
                    {formatDuration(s.durationNanos)}
                  </span>
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
