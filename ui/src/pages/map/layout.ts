// Layered layout of the service graph with dagre (callers above callees).
import dagre from '@dagrejs/dagre';
import type { ServiceEdge } from '../../api/types';

export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 48;

export interface Placed {
  nodes: { id: string; x: number; y: number }[];
  edges: { edge: ServiceEdge; points: { x: number; y: number }[] }[];
  width: number;
  height: number;
}

export function layout(services: string[], edges: ServiceEdge[]): Placed {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep: 140, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of services) g.setNode(s, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of edges) g.setEdge(e.caller, e.callee, { width: 120, height: 20, labelpos: 'c' });
  dagre.layout(g);
  const graph = g.graph();
  return {
    nodes: services.map((id) => ({ id, x: g.node(id).x, y: g.node(id).y })),
    edges: edges.map((edge) => ({ edge, points: g.edge(edge.caller, edge.callee).points ?? [] })),
    width: graph.width ?? 400,
    height: graph.height ?? 200,
  };
}
