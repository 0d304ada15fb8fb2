// Part 1's hot loops against two builds of memsys, side by side: `node bench/compare.mjs <build
// dir A> <build dir B> [rounds]` (each a build/ made by `npm run build`, e.g. of another checkout).
// Each round runs one process per build, alternating which goes first; two builds loaded into one
// process time differently by load order alone (the second one's loops ran ~25 % slower for the
// same code on the development VM), so each build gets processes of its own. Reports the median
// ns per alloc+free pair over all repetitions, the best, and the ratio B/A.

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SIZE = 32 * 1024;
const RING = 8;
const ITERS = 2_000_000;
const REPS = 5;

// The loops, as source: each build gets its own copy of each, so every call site is monomorphic.
const LOOPS = {
  'slab ring': `(s, n) => { const ring = []; for (let j = 0; j < ${RING}; j++) { const b = s.alloc(); b[0] = j; ring.push(b); }
    for (let i = 0; i < n; i++) { const k = i & ${RING - 1}; const b = s.alloc(); b[0] = i; const old = ring[k]; ring[k] = b; s.free(old); }
    let sum = 0; for (let j = 0; j < ${RING}; j++) { sum += ring[j][0]; s.free(ring[j]); } return sum; }`,
  'slab LIFO': `(s, n) => { let sum = 0; for (let i = 0; i < n; i++) { const b = s.alloc(); b[0] = i; sum += b[0]; s.free(b); } return sum; }`,
  'allocSize': `(m, n) => { let sum = 0; for (let i = 0; i < n; i++) { const b = m.allocSize(1000 + (i & 1023) * 64); b[0] = i; sum += b[0]; m.free(b); } return sum; }`,
};
LOOPS['mm ring'] = LOOPS['slab ring'];
LOOPS['mm LIFO'] = LOOPS['slab LIFO'];

async function child(dir) {
  const { MMSA } = await import(resolve(dir, 'node.js'));
  const mm = new MMSA({ name: 'compare', housekeeping: false, env: {} });
  mm.init();
  const slab = mm.getSlab(SIZE);
  const gc = globalThis.gc ?? (() => {});
  // The loop's name goes into its source: V8 caches a compiled Function by its source text, with its
  // feedback, so two loops of the same text would share one (the slab's and the MMSA's calls would
  // meet at one polymorphic site).
  const runs = Object.entries(LOOPS).map(([name, src]) => ({ name, f: new Function(`// ${name}\nreturn ${src}`)(), on: name.startsWith('slab') ? slab : mm, t: [] }));
  let sink = 0;
  for (const r of runs) sink += r.f(r.on, ITERS / 8);
  for (let rep = 0; rep < REPS; rep++) {
    for (const r of rep & 1 ? [...runs].reverse() : runs) {
      gc();
      const t0 = process.hrtime.bigint();
      sink += r.f(r.on, ITERS);
      r.t.push(Number(process.hrtime.bigint() - t0) / ITERS);
    }
  }
  process.stdout.write(JSON.stringify({ sink: sink & 1, t: Object.fromEntries(runs.map((r) => [r.name, r.t])) }));
}

function main(a, b, rounds) {
  const self = fileURLToPath(import.meta.url);
  const all = { A: {}, B: {} };
  for (let r = 0; r < rounds; r++) {
    for (const [label, dir] of r & 1 ? [['B', b], ['A', a]] : [['A', a], ['B', b]]) {
      const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', self, '--child', dir], { encoding: 'utf8' }));
      for (const [k, v] of Object.entries(out.t)) (all[label][k] ??= []).push(...v);
    }
  }
  const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
  console.log(`A: ${a}\nB: ${b}\n${rounds} processes each, alternating; ns per alloc+free, median of ${rounds * REPS} repetitions (best)\n`);
  console.log('| loop | A | B | B / A |\n|---|---:|---:|---:|');
  for (const k of Object.keys(LOOPS)) {
    const x = all.A[k], y = all.B[k];
    console.log(`| ${k} | ${med(x).toFixed(2)} (${Math.min(...x).toFixed(2)}) | ${med(y).toFixed(2)} (${Math.min(...y).toFixed(2)}) | ${(med(y) / med(x)).toFixed(2)} |`);
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') await child(argv[1]);
else if (argv.length < 2) console.error('usage: node bench/compare.mjs <build dir A> <build dir B> [rounds]');
else main(argv[0], argv[1], Number(argv[2] ?? 6));
