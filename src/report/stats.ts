// stats(): the pool's figures as this realm sees them, per class and whole.

import { PAGE } from '../core/arena.js';
import { CSTAT_FREE, CSTAT_RUNS } from '#abi';
import type { Pool } from '../pool/pool.js';

/** One size class's figures. */
export interface ClassStats {
  /** Buffer size, bytes. */
  size: number;
  /** Allocations served, all realms (as published; this realm's exactly). */
  hits: number;
  /** Buffers in users' hands, all realms. */
  inUse: number;
  /** Buffers in this realm's magazine. */
  cached: number;
  /** Free buffers in the arenas' runs. */
  free: number;
  /** Runs of this class carved in the arenas. */
  runs: number;
  /** Ms since the last allocation seen (0 if none ever was). */
  idle: number;
}

/** What `mm.stats()` returns. */
export interface MMSAStats {
  /** The MMSA's name. */
  name: string;
  /** 'shared' where the arenas are shared memories (workers can attach), else 'single-threaded'. */
  mode: 'shared' | 'single-threaded';
  /** Debug mode. */
  debug: boolean;
  /** Arenas this realm holds. */
  arenas: number;
  /** Bytes per arena. */
  arenaSize: number;
  /** Bytes of all arenas. */
  bytes: number;
  /** Bytes of pages in no run of any class. */
  freeBytes: number;
  /** Of those, bytes given back to the OS in place (they fault in again when used). */
  returnedBytes: number;
  /** Arenas dropped pool-wide whose memory may still be resident (not yet collected). */
  retired: number;
  /** The minimum free host memory pressure is judged by, bytes. */
  minFree: number;
  /** The 64 size classes, smallest first. */
  classes: ClassStats[];
}

/** @internal */
export function poolStats(pool: Pool, minFree: number, idleFor: (c: number, now: number) => number, now: number): MMSAStats {
  const classes: ClassStats[] = [];
  const arenas = pool.arenas.list;
  let freePages = 0;
  let cleanPages = 0;
  pool.adoptOrphans();
  for (const a of arenas) { freePages += a.freePages; cleanPages += a.cleanPages; }
  for (let c = 0; c < pool.slabs.length; c++) {
    const s = pool.slabs[c];
    pool.publish(s);
    let free = 0;
    let runs = 0;
    for (const a of arenas) {
      if (!a.core) continue;
      free += a.core.class_stat(c, CSTAT_FREE);
      runs += a.core.class_stat(c, CSTAT_RUNS);
    }
    classes.push({
      size: s.size, hits: Number(Atomics.load(pool.control.hits, c)), inUse: Atomics.load(pool.control.inUse, c),
      cached: s.mag.length, free, runs, idle: idleFor(c, now),
    });
  }
  const { name, shared, debug, arenaSize } = pool.cfg;
  return {
    name, mode: shared ? 'shared' : 'single-threaded', debug,
    arenas: arenas.length, arenaSize, bytes: arenas.length * arenaSize,
    freeBytes: freePages * PAGE, returnedBytes: cleanPages * PAGE,
    retired: pool.control.retired, minFree, classes,
  };
}
