// uPlot draws on a canvas, which cannot read CSS variables: axis colours are
// functions that read the theme's variables at each draw, and charts redraw
// when the theme changes (components/Chart.tsx).
export function themeColor(name: string, fallback: string): string {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export function axis(extra: Record<string, unknown> = {}) {
  const muted = () => themeColor('--muted', '#667085');
  const grid = () => themeColor('--border', '#d9dde3');
  return { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, ...extra };
}
