// Workers killed mid-operation, a few hundred times, on one shared pool: no realm ever hangs on a
// lock a dead worker held (it is recovered, or the arena quarantined), and the pool stays usable
// and consistent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { MMSA } from '../src/node/index.js';

const KILLS = 200;
const script = new URL('./fixtures/dying.mjs', import.meta.url);
const data = new Uint8Array(300_000).fill(9);

test(`${KILLS} workers terminated while they churn SGLs: nothing hangs, locks are recovered, check() is clean`, async () => {
  const mm = new MMSA({ name: 'dying', arenaSize: 4 << 20, magazineBytes: 0, housekeeping: false, env: {} });
  mm.init();
  const seen = { dead: 0, recovered: 0, quarantined: 0 };
  mm.addEventListener('realm-dead', () => seen.dead++);
  mm.addEventListener('arena-recovered', () => seen.recovered++);
  mm.addEventListener('arena-quarantined', () => seen.quarantined++);
  let slowest = 0;
  for (let i = 0; i < KILLS; i++) {
    const w = new Worker(script);
    const ready = new Promise<void>((res, rej) => { w.once('message', () => res()); w.once('error', rej); });
    w.postMessage({ desc: mm.share(w) });
    await ready;
    await new Promise((r) => setTimeout(r, (i * 7) % 23));
    await w.terminate();
    // The pool serves at once, whatever the worker was doing when it died.
    const t0 = performance.now();
    const sgl = mm.newSGL(0, 128);
    sgl.write(data);
    assert.equal(sgl.readAll().subarray(0, 4), new Uint8Array([9, 9, 9, 9]));
    sgl.free();
    mm.free(mm.allocSize(4096));
    slowest = Math.max(slowest, performance.now() - t0);
  }
  assert.is(seen.dead, KILLS, 'every worker was known dead once it exited');
  assert.ok(seen.recovered + seen.quarantined > 0, `some worker died holding a lock (recovered ${seen.recovered}, quarantined ${seen.quarantined})`);
  mm.check();
  console.log(`  ${KILLS} kills: ${seen.recovered} locks recovered, ${seen.quarantined} arenas quarantined, ${mm.stats().arenas} arenas, slowest call after a kill ${slowest.toFixed(1)} ms`);
  mm.terminate();
});

test.run();
