// The p-th percentile of sorted figures (the nearest rank), NaN of none: the load generator's
// latencies and the server's own times are read the same way.
export function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
