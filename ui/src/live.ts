// The unified stats stream (SSE, node-registration document): one
// EventSource for the whole fleet. EventSource cannot send headers, so the
// token rides in ?token= as the document prescribes; it is the only URL
// that carries it besides the WebSocket's.
import { token } from "./api";

export interface LiveNode {
  id: number;
  hostname: string;
  status: string; // online | stale | offline
  cpu_percent: number | null;
  memory_percent: number | null;
  disk_percent: number | null;
  uptime_seconds: number | null;
  last_seen: string | null;
}

export function fleetStream(onNodes: (nodes: LiveNode[], at: string) => void, onState: (open: boolean) => void, interval = 2): () => void {
  const t = token();
  if (!t) return () => {};
  const es = new EventSource(`/api/v1/metrics/nodes/stats/stream?interval=${interval}&token=${encodeURIComponent(t)}`);
  es.onopen = () => onState(true);
  es.onerror = () => onState(false);
  es.onmessage = (ev) => {
    try {
      const m = JSON.parse(ev.data);
      if (Array.isArray(m.nodes)) onNodes(m.nodes, m.timestamp);
    } catch {
      /* a malformed event is skipped */
    }
  };
  return () => es.close();
}
