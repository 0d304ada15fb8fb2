// Prometheus text exposition (format 0.0.4) of an MMSA's figures, for servers to serve at
// /metrics: pool size, per-class counters, pressure and the host figures it was computed from.

import type { MemStats } from '../platform/host.js';

export interface MetricsInput {
  name: string;
  arenas: number;
  bytes: number;
  classes: { size: number; hits: number; inUse: number; cached: number; free: number }[];
  pressure: number;
  minFree: number;
  lowWM: number;
  host: MemStats | undefined;
}

type Sample = [labels: Record<string, string | number>, value: number];

export function metricsText(m: MetricsInput): string {
  const out: string[] = [];
  const mm = { mmsa: m.name };
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]) => {
    if (samples.length === 0) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) out.push(`${name}{${labelText(labels)}} ${Number.isFinite(v) ? v : 'NaN'}`);
  };
  const used = m.classes.filter((c) => c.hits || c.inUse || c.cached || c.free);
  const perClass = (f: (c: MetricsInput['classes'][number]) => number): Sample[] => used.map((c) => [{ ...mm, size: c.size }, f(c)]);
  metric('memsys_pool_bytes', 'gauge', 'Bytes of arena memory the pool holds.', [[mm, m.bytes]]);
  metric('memsys_arenas', 'gauge', 'Arenas (WebAssembly memories) the pool holds.', [[mm, m.arenas]]);
  metric('memsys_buffer_allocs_total', 'counter', 'Buffers handed out, per buffer size.', perClass((c) => c.hits));
  metric('memsys_buffers_in_use', 'gauge', 'Buffers in use (all realms), per buffer size.', perClass((c) => c.inUse));
  metric('memsys_buffers_cached', 'gauge', 'Buffers cached in this realm\'s magazines, per buffer size.', perClass((c) => c.cached));
  metric('memsys_buffers_free', 'gauge', 'Free buffers in carved runs, per buffer size.', perClass((c) => c.free));
  metric('memsys_pressure', 'gauge', 'Memory pressure: 0 low, 1 moderate, 2 high, 3 extreme, 4 OOM.', [[mm, m.pressure]]);
  metric('memsys_min_free_bytes', 'gauge', 'The minimum free memory pressure is measured against.', [[mm, m.minFree]]);
  metric('memsys_low_watermark_bytes', 'gauge', 'Free memory above which pressure is low.', [[mm, m.lowWM]]);
  const h = m.host;
  if (h) {
    metric('memsys_host_total_bytes', 'gauge', 'Memory this process may use: host RAM or its cgroup limit.', [[mm, h.total]]);
    metric('memsys_host_free_bytes', 'gauge', 'Free memory, reclaimable page cache counted, as pressure reads it.', [[mm, h.free]]);
    if (h.available !== undefined) metric('memsys_host_available_bytes', 'gauge', 'Memory available without swapping.', [[mm, h.available]]);
    if (h.swap) metric('memsys_host_swap_used_bytes', 'gauge', 'Swap in use.', [[mm, h.swap.used]]);
    if (h.commit?.headroom !== undefined) metric('memsys_host_commit_headroom_bytes', 'gauge', 'Commit headroom under strict overcommit.', [[mm, h.commit.headroom]]);
    if (h.psi) {
      const lines: Sample[] = [[{ ...mm, kind: 'some' }, h.psi.some.avg10]];
      if (h.psi.full) lines.push([{ ...mm, kind: 'full' }, h.psi.full.avg10]);
      metric('memsys_host_psi_memory_avg10', 'gauge', 'PSI memory stall, % of the last 10 s.', lines);
    }
  }
  return out.join('\n') + '\n';
}

// Label values escape backslash, double quote and newline.
function labelText(labels: Record<string, string | number>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}
