import { useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';

/**
 * Only the rows on screen in the DOM: a virtualizer over `count` rows of
 * about `rowHeight` pixels, scrolling the element `scroller` is attached to.
 */
export function useVirtualRows(count: number, rowHeight: number, overscan: number) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => rowHeight,
    overscan,
  });
  return { scroller, virtual };
}
