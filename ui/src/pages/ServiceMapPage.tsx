import { useMemo } from 'react';
import { useNavigate } from 'react-router-dom';
import { getJson, query } from '../api/client';
import type { ServiceEdge, ServiceNode } from '../api/types';
import { RangeBar } from '../components/RangeBar';
import { ErrorBox, Empty, Loading } from '../components/Status';
import { serviceColor } from '../lib/colors';
import { formatDuration, formatNumber } from '../lib/format';
import { resolveRange } from '../lib/timeRange';
import { useApi } from '../lib/useApi';
import { useUrlState } from '../lib/useUrlState';
import { layout, NODE_HEIGHT, NODE_WIDTH } from './map/layout';

interface MapData {
  edges: ServiceEdge[];
  services: Map<string, { spans: number; errors: number }>;
}

async function loadMap(start: string, end: string, signal: AbortSignal): Promise<MapData> {
  const graph = await getJson<{ nodes: ServiceNode[]; edges: ServiceEdge[] }>('/api/v1/service_graph' + query({ start, end }), signal);
  return { edges: graph.edges, services: new Map(graph.nodes.map((n) => [n.service, n])) };
}

/** Who calls whom in the time range, with calls, errors and callee latency on the edges. */
export function ServiceMapPage() {
  const { params } = useUrlState();
  const { start, end } = useMemo(() => resolveRange(params), [params]);
  const map = useApi(start + end, (signal) => loadMap(start, end, signal));
  return (
    <div className="service-map">
      <div className="toolbar">
        <RangeBar />
        <span className="muted">Edges: a span whose parent span is in another service. Click a service for its operations.</span>
      </div>
      {map.state === 'loading' && <Loading what="service map" />}
      {map.state === 'error' && <ErrorBox error={map.error} />}
      {map.state === 'done' &&
        (map.data.services.size === 0 ? <Empty>No spans in this time range.</Empty> : <Graph data={map.data} />)}
    </div>
  );
}

function Graph({ data }: { data: MapData }) {
  const navigate = useNavigate();
  const placed = useMemo(() => {
    const names = new Set(data.services.keys());
    for (const e of data.edges) names.add(e.caller).add(e.callee);
    return layout([...names].sort(), data.edges);
  }, [data]);
  return (
    <svg viewBox={`0 0 ${placed.width} ${placed.height}`} style={{ width: placed.width, maxWidth: '100%', maxHeight: '75vh' }} role="img" aria-label="Service map">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" fill="currentColor" />
        </marker>
      </defs>
      {placed.edges.map(({ edge, points }) => {
        const mid = points[Math.floor(points.length / 2)] ?? { x: 0, y: 0 };
        const errorRate = edge.errors / edge.calls;
        return (
          <g key={edge.caller + '>' + edge.callee} className={'edge' + (errorRate > 0 ? ' err' : '')} data-testid="map-edge">
            <path d={'M' + points.map((p) => `${p.x},${p.y}`).join(' L')} markerEnd="url(#arrow)" />
            <text x={mid.x} y={mid.y - 4} textAnchor="middle">
              {formatNumber(edge.calls)} calls · {(100 * errorRate).toFixed(1)}% err · p95 {formatDuration(edge.p95_nanos)}
            </text>
          </g>
        );
      })}
      {placed.nodes.map((n) => {
        const s = data.services.get(n.id);
        return (
          <g
            key={n.id}
            className="node"
            transform={`translate(${n.x - NODE_WIDTH / 2},${n.y - NODE_HEIGHT / 2})`}
            onClick={() => navigate('/services' + query({ service: n.id }))}
            data-testid="map-node"
          >
            <rect width={NODE_WIDTH} height={NODE_HEIGHT} style={{ stroke: serviceColor(n.id) }} />
            <text x={10} y={20}>
              {n.id}
            </text>
            <text x={10} y={38} className="sub">
              {s ? `${formatNumber(s.spans)} spans · ${((100 * s.errors) / Math.max(s.spans, 1)).toFixed(1)}% err` : 'no spans in range'}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
