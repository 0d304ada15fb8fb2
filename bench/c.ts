// Part 8 of `npm run bench`: the core compiled to C by wasm2c against glibc malloc/free, in one
// process (bench/c/bench.c says how it measures). Needs wasm2c and cc; without them it says how
// to get them and ends, so that the rest of the bench stands.
//
//   node --import tsx bench/c.ts [ms per repetition]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHost, root, toolchain, wasm2cVersion } from '../scripts/embed.js';

const tc = toolchain();
if (tc.missing !== undefined) {
  console.log(`part 8 skipped: ${tc.missing}`);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'memsys-bench-c-'));
let out: string;
try {
  const wasm = join(root, 'build', 'memsys.st.wasm');
  const bin = buildHost(tc, {
    dir, out: join(dir, 'bench'), sources: [join(root, 'bench', 'c', 'bench.c')],
    modules: [
      { name: 'memsys_g', wasm },
      { name: 'memsys_b', wasm, cflags: ['-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0', '-DWASM_RT_USE_STACK_DEPTH_COUNT=0'] },
    ],
  });
  out = execFileSync(bin, [process.argv[2] ?? '100'], { encoding: 'utf8' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const rows = new Map<string, Record<string, [number, number]>>();
const info: Record<string, string> = {};
for (const line of out.trim().split('\n')) {
  const f = line.split('\t');
  if (f.length === 2) { info[f[0]] = f[1]; continue; }
  const [loop, who, median, best] = f;
  if (!rows.has(loop)) rows.set(loop, {});
  rows.get(loop)![who] = [Number(median), Number(best)];
}
const ns = ([m, b]: [number, number]) => `${m.toFixed(1)} (${b.toFixed(1)})`;
const ratio = (a: [number, number], b: [number, number]) => `${(a[0] / b[0]).toFixed(2)}x`;
const lines = [
  '### 8. alloc+free through the core compiled to C (wasm2c), against glibc malloc/free',
  '',
  `build/memsys.st.wasm through wasm2c ${wasm2cVersion(tc)}, ${info.cc ?? 'cc'} -O2, ${info.libc ?? 'libc'}; one process. ` +
  'ns per alloc+free pair, median of 7 repetitions of ~100 ms (best in brackets); the contenders alternate within each ' +
  'repetition. Each pair writes byte 0 of its buffer. The core is called directly (`alloc`, then `free`: one call each); ' +
  '"core" is wasm2c\'s default on 64-bit Linux (guard pages, no bounds check in the code), "bounds-checked" the same ' +
  'module compiled with `WASM_RT_MEMCHECK_SIGNAL_HANDLER=0`. glibc gets the same sizes (the class sizes). Random classes: ' +
  'uniform over the 64, one pre-drawn sequence for all. 1024 live: each step frees the oldest of 1024 buffers and ' +
  'allocates one. Ratio: core time / glibc time (below 1: the core is faster).',
  '',
  '| loop | glibc ns | core ns | core / glibc | bounds-checked ns | bounds-checked / glibc |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...[...rows].map(([loop, r]) => `| ${loop} | ${ns(r.glibc)} | ${ns(r.core)} | ${ratio(r.core, r.glibc)} | ` +
    `${ns(r['core-checked'])} | ${ratio(r['core-checked'], r.glibc)} |`),
];
console.log(lines.join('\n'));
