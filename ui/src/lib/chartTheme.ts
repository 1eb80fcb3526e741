// uPlot draws on a canvas, which cannot read CSS variables: resolve the
// theme's colours when a chart is made.
export function themeColor(name: string, fallback: string): string {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export function axis(extra: Record<string, unknown> = {}) {
  const stroke = themeColor('--muted', '#667085');
  const grid = themeColor('--border', '#d9dde3');
  return { stroke, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, ...extra };
}
