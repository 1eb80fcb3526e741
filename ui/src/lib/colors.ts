// Stable service colours: the same service has the same colour on every
// screen and in every trace.
const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948',
  '#ff9da7', '#9c755f', '#3b8bd0', '#8cd17d', '#d37295', '#a0cbe8',
];

export function serviceColor(service: string): string {
  let hash = 2166136261;
  for (let i = 0; i < service.length; i++) hash = Math.imul(hash ^ service.charCodeAt(i), 16777619);
  return PALETTE[(hash >>> 0) % PALETTE.length];
}

export function seriesColor(index: number): string {
  return PALETTE[index % PALETTE.length];
}
