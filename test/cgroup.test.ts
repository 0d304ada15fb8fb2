// Under a real memory cgroup: a child cgroup this test makes (and removes) with a 1 GiB limit, and
// a process in it that bursts to 70 % of the limit three times with housekeeping on. Dropped or
// freed memory must leave the cgroup's charge at once (not when V8 happens to collect), and the
// next burst must not be what gets the process OOM-killed, with the native page helper and
// without it, with a budget and without; and under the budget, memory the pool holds free in one
// class serves the others before anything is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { nodePageOps } from '../src/node/pages.js';
import { needs, ownCgroup, sweepGroups } from './helpers.js';

const MiB = 1 << 20;
const LIMIT = 1024 * MiB;

// This process's own memory cgroup, v1 (memory controller) or v2; a child directory in it.

// Makes the child cgroup with the limit, or says why it cannot.
function makeChild(): { dir: string; v2: boolean } | string {
  const own = ownCgroup();
  if (!own) return 'no memory cgroup found for this process';
  const dir = `${own.dir}/memsys-test-${process.pid}`;
  sweepGroups(own.dir, 'memsys-test-'); // a run that was killed cannot have removed its group
  try {
    mkdirSync(dir);
    writeFileSync(`${dir}/${own.v2 ? 'memory.max' : 'memory.limit_in_bytes'}`, String(LIMIT));
    if (own.v2) writeFileSync(`${dir}/memory.swap.max`, '0');
    return { dir, v2: own.v2 };
  } catch (e) {
    try { rmdirSync(dir); } catch { /* it was not made */ }
    return `cannot make a memory cgroup under ${own.dir} (${(e as Error).message}; run as root)`;
  }
}

const child = makeChild();
const native = nodePageOps().discard !== undefined;

needs('the memory cgroup suite', typeof child === 'object', typeof child === 'string' ? child : '', () => {
  const cg = child as { dir: string; v2: boolean };
  test.after(() => { try { rmdirSync(cg.dir); } catch { /* left by a test that failed: nothing of ours runs in it */ } });

  // Runs the burst script inside the cgroup; the shell moves itself in, then becomes node.
  function bursts(mode: 'native' | 'fallback', budget: 'budget' | 'none') {
    const script = new URL('./fixtures/cgroup-bursts.mjs', import.meta.url).pathname;
    const r = spawnSync('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.dir, process.execPath, script, mode, budget], {
      encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, MEMSYS_TEST_CGROUP: cg.dir, MEMSYS_TEST_CGROUP_V2: cg.v2 ? '1' : '0', MEMSYS_TEST_LIMIT: String(LIMIT) },
    });
    assert.is(r.signal, null, `${mode}/${budget}: killed by ${r.signal} (the OOM killer, under a 1 GiB limit)\n${r.stderr}`);
    assert.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      base: number; rounds: { ok: boolean; peak: number; arenas: number; after: number; fellMs: number; pool: number; retired: number }[];
      reclaim?: { refused: string; got: number[]; sgl: boolean; arenas: number };
    };
  }

  const modes = native ? (['native', 'fallback'] as const) : (['fallback'] as const);
  for (const mode of modes) {
    for (const budget of ['none', 'budget'] as const) {
      test(`${mode === 'native' ? 'native page helper' : 'no page helper (drop and collect)'}, ${budget === 'budget' ? 'a 1 GiB ceiling' : 'no budget'}: three bursts of 70 % survive and each falls back within a second`, () => {
        const r = bursts(mode, budget);
        assert.is(r.rounds.length, 3);
        for (const [i, x] of r.rounds.entries()) {
          const mb = (n: number) => (n / MiB).toFixed(0);
          const what = `burst ${i + 1}: ${mb(r.base)} -> peak ${mb(x.peak)} -> ${mb(x.after)} MiB, fell in ${x.fellMs.toFixed(0)} ms, ${x.arenas} -> ${x.pool} arenas`;
          assert.ok(x.ok, `${what}: contents intact`);
          assert.ok(x.peak - r.base > 0.6 * LIMIT, `${what}: the burst was charged`);
          assert.ok(x.fellMs >= 0 && x.fellMs < 1000, `${what}: back below a quarter of the burst within a second, no gc() by the test`);
          assert.ok(x.after - r.base < 0.25 * LIMIT, what);
        }
        if (budget === 'budget') {
          assert.equal(r.reclaim, { refused: 'ERR_MEMSYS_BUDGET', got: [128, 4096, 32768, 131072], sgl: true, arenas: 16 },
            'a half-limit pool full of 64 KiB buffers, a quarter freed: other classes and a 64 MiB SGL are served from it');
        }
      });
    }
  }
  if (!native) console.warn(`\n!!! the cgroup runs with the native page helper are not run: ${nodePageOps().missing}\n`);
});

test.run();
