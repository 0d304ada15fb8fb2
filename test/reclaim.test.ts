// Reclaim before refuse: memory the pool already holds (other classes' free runs, every magazine
// of this realm) serves a request before it is refused for want of a new arena, under a budget's
// ceiling and when the engine cannot map one; and under an address-space limit the pool keeps its
// last arena instead of dropping it and failing to map another.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { MMSA, type MemStats } from '../src/index.js';
import { inUse } from './helpers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const roomy = (): MemStats => ({ total: 64 * GiB, free: 60 * GiB, available: 60 * GiB });

function pool(opts: Record<string, unknown>) {
  const mm = new MMSA({ name: 'rc', housekeeping: false, memStats: roomy, minFree: 2 * GiB, env: {}, ...opts });
  mm.init();
  return mm;
}

// Fills the pool with 64 KiB buffers until it is refused, then frees the last quarter (contiguous
// pages, so that any class can be carved there): a quarter of the pool is free, in the 64 KiB
// class's magazine and runs.
function quarterFree(mm: MMSA): { held: Uint8Array[]; refused: string } {
  const held: Uint8Array[] = [];
  let refused = '';
  try { for (;;) held.push(mm.allocSize(65536)); } catch (e) { refused = (e as { code: string }).code; }
  held.splice(held.length - Math.floor(held.length / 4)).forEach((b) => mm.free(b));
  return { held, refused };
}

// Arena creation that fails after `n` memories, as under an address-space or commit limit.
function mapLimit(n: number): () => void {
  const Real = WebAssembly.Memory;
  let made = 0;
  (WebAssembly as { Memory: unknown }).Memory = function (d: WebAssembly.MemoryDescriptor) {
    if (d.initial > 1 && ++made > n) throw new RangeError('WebAssembly.Memory(): could not allocate memory');
    return new Real(d);
  } as unknown as typeof WebAssembly.Memory;
  return () => { (WebAssembly as { Memory: unknown }).Memory = Real; };
}

const cases: [string, () => { mm: MMSA; done: () => void }][] = [
  ['under a 256 MiB ceiling', () => {
    const mm = pool({ arenaSize: 16 * MiB, budget: { ceiling: 256 * MiB } });
    return { mm, done: () => {} };
  }],
  ['when no arena can be mapped', () => {
    const undo = mapLimit(16);
    const mm = pool({ arenaSize: 16 * MiB });
    return { mm, done: undo };
  }],
];

for (const [what, make] of cases) {
  test(`${what}, with a quarter of the pool free as 64 KiB buffers: other classes and a 48 MiB SGL are served`, () => {
    const { mm, done } = make();
    try {
      const { held, refused } = quarterFree(mm);
      assert.ok(refused === 'ERR_MEMSYS_BUDGET' || refused === 'ERR_MEMSYS_OUT_OF_MEMORY', refused);
      assert.is(mm.stats().arenas, 16);
      const got = [128, 4096, 32768, 131072].map((n) => mm.allocSize(n));
      assert.equal(got.map((b) => b.length), [128, 4096, 32768, 131072]);
      const sgl = mm.newSGL(48 * MiB);
      sgl.write(new Uint8Array(48 * MiB).fill(5));
      assert.is(sgl.len, 48 * MiB);
      assert.is(mm.stats().arenas, 16, 'no arena added: the pool used what it held');
      sgl.free();
      got.forEach((b) => mm.free(b));
      held.forEach((b) => mm.free(b));
      assert.is(inUse(mm), 0);
      mm.check();
      mm.terminate();
    } finally {
      done();
    }
  });
}

test('a refused SGL under a 2 MiB ceiling leaves nothing that blocks the next request', () => {
  const mm = pool({ arenaSize: MiB, budget: { ceiling: 2 * MiB } });
  let err = '';
  try { mm.newSGL(3 * MiB); } catch (e) { err = (e as { code: string }).code; }
  assert.is(err, 'ERR_MEMSYS_BUDGET');
  assert.is(inUse(mm), 0);
  const b = mm.allocSize(32768);
  assert.is(b.length, 32768, 'served at once, with no housekeeping pass between');
  mm.free(b);
  const sgl = mm.newSGL(MiB);
  sgl.free();
  mm.check();
  mm.terminate();
});

test('a refusal happens only when the memory is not there, and the next request is served once it is', () => {
  const mm = pool({ arenaSize: MiB, budget: { ceiling: 2 * MiB } });
  const held: Uint8Array[] = [];
  let err = '';
  try { for (;;) held.push(mm.allocSize(4096)); } catch (e) { err = (e as { code: string }).code; }
  assert.is(err, 'ERR_MEMSYS_BUDGET');
  let refused = '';
  try { mm.allocSize(131072); } catch (e) { refused = (e as { code: string }).code; }
  assert.is(refused, 'ERR_MEMSYS_BUDGET', 'every page is in use: refused');
  held.splice(0, 64).forEach((b) => mm.free(b)); // 64 pages, but scattered through the magazine
  held.splice(held.length - 64).forEach((b) => mm.free(b)); // and 64 contiguous at the end
  const big = mm.allocSize(131072);
  assert.is(big.length, 131072);
  mm.free(big);
  held.forEach((b) => mm.free(b));
  mm.check();
  mm.terminate();
});

test('a refused SGL under an address-space limit keeps the arena it mapped: the next request is served', () => {
  const undo = mapLimit(1);
  try {
    const mm = pool({ arenaSize: 4 * MiB, memStats: () => ({ ...roomy(), addressSpace: 30 * GiB }) });
    mm.hostStats();
    mm.freeMem(); // reads the limit: the pool keeps its last arena from now on
    let err = '';
    try { mm.newSGL(6 * MiB); } catch (e) { err = (e as { code: string }).code; }
    assert.is(err, 'ERR_MEMSYS_OUT_OF_MEMORY');
    assert.is(mm.stats().arenas, 1, 'the arena mapped for it stays');
    mm.free(mm.allocSize(32768));
    mm.terminate();
  } finally {
    undo();
  }
});

// A child process under `ulimit -v`, where each arena's ~10 GiB reservation counts.
for (const gib of [12, 20]) {
  test(`under ulimit -v ${gib} GiB the pool keeps its last arena, so the next burst is served`, () => {
    const script = new URL('./fixtures/address-space.mjs', import.meta.url).pathname;
    const r = spawnSync('/bin/bash', ['-c', `ulimit -v ${gib * 1024 * 1024} && exec "$0" "$1"`, process.execPath, script], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.ok(out.limit > 0, 'the provider read the limit');
    assert.equal(out.afterFree, 1, 'freeMem kept one arena');
    assert.equal(out.afterHigh, 1, 'a High pass kept one arena');
    assert.ok(out.again > 0, `the next burst was served (${out.again} buffers)`);
    assert.is(out.error, undefined, out.error);
  });
}

test.run();
