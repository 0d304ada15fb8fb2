// Giving memory back (`npm run bench` runs it after bench/sgl.ts): the cost side of the trade-off
// AIStore's memsys states for Go (GODEBUG=madvdontneed=1: OOM versus page faults).
//
//   6. alloc + touch (one write per 4 KiB page) + free of 32 KiB buffers whose pages were just
//      given back to the kernel (MADV_DONTNEED: each page faults in zeroed; MADV_FREE: no fault
//      while the kernel has not taken them), against the same on warm pages.
//   7. one housekeeping pass at High pressure giving back 1 GiB of free pages in place; dropping
//      1 GiB of empty arenas with the page helper (madvise at drop) and without it (drop, gc, and
//      the time until RSS has fallen).
//
// Each figure is the median of REPS runs in this one process; the page helper must be built.

import { readFileSync } from 'node:fs';
import { MMSA, type MemStats, pageOps, setPageOps } from '../src/node/index.js';

const KiB = 1024, MiB = KiB * KiB, GiB = KiB * MiB;
const REPS = 5;
const N = 4096; // 128 MiB of 32 KiB buffers per timed run
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const ops = pageOps();
if (!ops.discard) {
  console.log(`part 6-7 skipped: ${ops.missing}`);
  process.exit(0);
}
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * KiB;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
let high = false;
const host = (): MemStats => high ? { total: 64 * GiB, free: GiB, available: GiB } : { total: 64 * GiB, free: 60 * GiB, available: 60 * GiB };
let sink = 0;

function pool(madvise: 'dontneed' | 'free', arenaSize = 64 * MiB) {
  const mm = new MMSA({ name: 'gb', arenaSize, housekeeping: false, memStats: host, minFree: 2 * GiB, env: {}, madvise });
  mm.init();
  return mm;
}

// alloc + touch + free of N buffers, ns per buffer.
function cycle(mm: MMSA): number {
  const s = mm.getSlab(32 * KiB);
  const held: Uint8Array[] = new Array(N);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const b = s.alloc();
    for (let p = 0; p < b.length; p += 4096) b[p] = i;
    held[i] = b;
  }
  for (let i = 0; i < N; i++) { sink += held[i][0]; s.free(held[i]); }
  return (ms(t0) * 1e6) / N;
}

// ---- part 6 ----------------------------------------------------------------------------------------
const part6: [string, number][] = [];
for (const madvise of ['dontneed', 'free'] as const) {
  const mm = pool(madvise, 256 * MiB); // one arena holds the run
  const keep = mm.allocSize(32 * KiB); // keeps it open, so its pages go back in place
  cycle(mm);
  const warm: number[] = [];
  const cold: number[] = [];
  for (let r = 0; r < REPS; r++) {
    warm.push(cycle(mm));
    mm.freeMem({ totally: true, toOS: false }); // everything back to the arenas, pages kept
    warm.push(cycle(mm));
    mm.freeMem({ totally: true }); // and now the free pages go back to the kernel
    cold.push(cycle(mm));
  }
  mm.free(keep);
  mm.terminate();
  if (madvise === 'dontneed') part6.push(['warm pages', median(warm)]);
  part6.push([`pages just given back (MADV_${madvise.toUpperCase()})`, median(cold)]);
}

// ---- part 7 ----------------------------------------------------------------------------------------
function fillGiB(mm: MMSA): Uint8Array[] {
  const held: Uint8Array[] = [];
  for (let i = 0; i < GiB / (32 * KiB); i++) { const b = mm.allocSize(32 * KiB); b.fill(1); held.push(b); }
  return held;
}
const inPlace: number[] = [], returned: number[] = [], dropNative: number[] = [], dropGc: number[] = [], fallMs: number[] = [];
for (let r = 0; r < 3; r++) {
  // In place: one buffer per arena stays out, so no arena can be dropped.
  {
    const mm = pool('dontneed');
    const held = fillGiB(mm);
    const per = (64 * MiB) / (32 * KiB);
    const kept = held.filter((_, i) => i % per === 0);
    held.forEach((b, i) => { if (i % per !== 0) mm.free(b); });
    high = true;
    const t0 = process.hrtime.bigint();
    const rep = mm.housekeep();
    inPlace.push(ms(t0));
    returned.push(rep.returned);
    high = false;
    kept.forEach((b) => mm.free(b));
    mm.terminate();
  }
  // Dropped whole, with the helper: madvise at drop.
  {
    const mm = pool('dontneed');
    fillGiB(mm).forEach((b) => mm.free(b));
    const t0 = process.hrtime.bigint();
    mm.freeMem({ totally: true });
    dropNative.push(ms(t0));
    mm.terminate();
  }
  // Dropped whole, without the helper: the arenas go when V8 has collected them.
  {
    setPageOps({ collect: ops.collect });
    const mm = pool('dontneed');
    fillGiB(mm).forEach((b) => mm.free(b));
    const before = rss();
    const t0 = process.hrtime.bigint();
    mm.freeMem({ totally: true });
    mm.terminate();
    gc();
    dropGc.push(ms(t0));
    while (rss() > before - 0.9 * GiB && ms(t0) < 5000) await new Promise((res) => setTimeout(res, 5));
    fallMs.push(ms(t0));
    setPageOps(ops);
  }
}

const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const lines = [
  '### 6. alloc + touch + free, 32 KiB, after the pages were given back',
  '',
  `${N} buffers (128 MiB) allocated, one byte written per 4 KiB page, then freed; median of ${REPS}.`,
  '',
  '| pages | ns per buffer | vs warm |',
  '| --- | ---: | ---: |',
  ...part6.map(([what, ns]) => row([what, ns.toFixed(0), `${(ns / part6[0][1]).toFixed(2)}x`])),
  '',
  '### 7. giving back 1 GiB',
  '',
  '| what | ms (median of 3) | note |',
  '| --- | ---: | --- |',
  row(['housekeeping pass at High, free pages madvised in place', median(inPlace).toFixed(1), `${(median(returned) / GiB).toFixed(2)} GiB returned, 16 arenas kept`]),
  row(['freeMem({ totally }) dropping 16 arenas, madvised at drop', median(dropNative).toFixed(1), 'RSS falls before the call returns']),
  row(['the same without the page helper, then gc()', median(dropGc).toFixed(1), `RSS down by 0.9 GiB after ${median(fallMs).toFixed(0)} ms`]),
];
console.log(lines.join('\n'));
if (sink === 0.5) console.log(sink);
