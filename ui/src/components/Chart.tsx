import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  /** uPlot options without width/height; the chart fills its container's width. */
  options: Omit<uPlot.Options, 'width' | 'height'>;
  data: uPlot.AlignedData;
  height?: number;
  testId?: string;
}

/** A uPlot chart that follows its container's width. */
export function Chart({ options, data, height = 240, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const chart = new uPlot({ ...options, width: el.clientWidth || 600, height }, data, el);
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: el.clientWidth || 600, height }));
    observer.observe(el);
    // Axis colours are read at draw time: a theme change only needs a redraw.
    const theme = new MutationObserver(() => chart.redraw(false, true));
    theme.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => {
      observer.disconnect();
      theme.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [options, data, height]);
  return <div ref={box} className="chart" data-testid={testId} />;
}
