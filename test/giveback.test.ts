// Giving memory back for real: the core's scavenge protocol, free pages madvised in place by the
// native page helper (RSS falls at once, the arena is reused), and without it whole arenas dropped,
// retired (counted, reused before a new mapping) and collected on request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { MMSA, type MemStats, Pressure, pageOps, setPageOps } from '../src/index.js';
import { type CoreExports, instantiate } from '../src/core/module.js';
import { defaultMemStats, setDefaultMemStats } from '../src/platform/host.js';
import { nodePageOps } from '../src/node/pages.js';
import { inUse, needs } from './helpers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const PAGE = 4096;
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const native = nodePageOps();

// Runs fn with these page ops installed, then puts back what was there.
async function withOps<T>(ops: Parameters<typeof setPageOps>[0], fn: () => T | Promise<T>): Promise<T> {
  const before = pageOps();
  setPageOps(ops);
  try { return await fn(); } finally { setPageOps(before); }
}

function arena(bytes: number, shared: boolean): { x: CoreExports; u32: Uint32Array } {
  const pages = bytes / 65536;
  const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  const x = instantiate(mem, shared, false);
  assert.is(x.init(0, 1, 1), 0);
  return { x, u32: new Uint32Array(mem.buffer) };
}

const STAT_PAGES = 1, STAT_DATA_PAGE = 2, STAT_FREE_PAGES = 3, STAT_RAW_PAGES = 4, STAT_ARENA_ID = 6, STAT_CLEAN = 8;

for (const shared of [true, false]) {
  const t = shared ? 'threaded:' : 'single-threaded:';

  test(`${t} scavenge takes exactly the free pages that may hold data, as raw spans, and scavenged returns them clean`, () => {
    const { x, u32 } = arena(8 * MiB, shared);
    const data = x.arena_stat(STAT_PAGES) - x.arena_stat(STAT_DATA_PAGE);
    assert.is(x.arena_stat(STAT_CLEAN), data, 'a fresh arena is all clean');
    const scratch = x.raw_alloc(1);
    assert.is(x.scavenge(scratch, 512), 0, 'nothing to give back in a fresh arena');
    // Carve 64 KiB runs of class 47, free every other one: their pages are dirty.
    const offs: number[] = [];
    for (let off: number; (off = x.alloc(47) >>> 0) !== 0;) offs.push(off);
    const freed = offs.filter((_, i) => i % 2 === 0);
    for (const off of freed) assert.is(x.free(off, 47), 0);
    assert.is(x.trim(47, 0), freed.length);
    assert.is(x.arena_stat(STAT_CLEAN), data - 1 - offs.length * 16, 'the runs and the scratch page were carved from the clean span');
    const tail = data - 1 - offs.length * 16;
    const n = x.scavenge(scratch, 512);
    const pairs: [number, number][] = [];
    for (let i = 0; i < n; i++) pairs.push([u32[scratch / 4 + 2 * i], u32[scratch / 4 + 2 * i + 1]]);
    assert.equal(pairs.map((p) => p[0]).sort((a, b) => a - b), [...freed].sort((a, b) => a - b), 'each freed run, as one span');
    assert.ok(pairs.every((p) => p[1] === 16 * PAGE));
    assert.is(x.arena_stat(STAT_RAW_PAGES), 1 + freed.length * 16, 'taken as raw spans');
    assert.is(x.arena_stat(STAT_FREE_PAGES), tail, 'only the clean tail is left free');
    assert.is(x.alloc(47), 0, 'nothing can hand them out meanwhile');
    assert.is(x.check(), 0);
    for (const [off] of pairs) assert.is(x.scavenged(off), 0);
    assert.is(x.scavenged(pairs[0][0]), -3, 'a span returned twice: E_NOT_SLOT');
    assert.is(x.arena_stat(STAT_CLEAN), tail + freed.length * 16);
    assert.is(x.scavenge(scratch, 512), 0, 'clean spans are not taken again');
    assert.is(x.check(), 0);
    // A clean span used again and freed is dirty again; merged with a clean neighbour, dirty.
    const again = x.alloc(47) >>> 0;
    assert.is(x.arena_stat(STAT_CLEAN), tail + (freed.length - 1) * 16);
    assert.is(x.free(again, 47), 0);
    assert.is(x.trim(47, 0), 1);
    assert.is(x.scavenge(scratch, 512), 1);
    assert.is(u32[scratch / 4], again);
    assert.is(x.scavenged(again), 0);
    // Freeing the live runs between the clean ones merges everything into one span: dirty.
    for (const off of offs.filter((_, i) => i % 2 === 1)) assert.is(x.free(off, 47), 0);
    x.trim(47, 0);
    assert.is(x.arena_stat(STAT_CLEAN), 0, 'one span, merged with dirty runs: dirty');
    assert.is(x.scavenge(scratch, 512), 1);
    assert.is(u32[scratch / 4 + 1], (data - 1) * PAGE, 'the whole free span, once');
    assert.is(x.check(), 0);
    assert.is(x.scavenged(u32[scratch / 4]), 0);
    assert.is(x.arena_stat(STAT_CLEAN), data - 1);
    assert.is(x.scavenge(scratch + 4090, 1), -8, 'an array that leaves the memory: E_ARG');
    assert.is(x.scavenged(scratch + 1), -2);
    assert.is(x.scavenged(0), -2);
  });

  test(`${t} a span longer than a raw span comes as several pairs, and a call takes whole spans only`, () => {
    const { x, u32 } = arena(400 * MiB, shared);
    const scratch = x.raw_alloc(1);
    const a = x.raw_alloc(65535), b = x.raw_alloc(20000);
    assert.ok(a && b);
    assert.is(x.raw_free(a), 0);
    assert.is(x.raw_free(b), 0);
    const free = x.arena_stat(STAT_FREE_PAGES);
    assert.ok(free > 65535, 'one free span, dirty where a and b were');
    assert.is(x.scavenge(scratch, 1), 0, 'one pair is not enough for it: nothing taken');
    assert.is(x.scavenge(scratch, 2), 2);
    assert.equal([u32[scratch / 4], u32[scratch / 4 + 1] / PAGE, u32[scratch / 4 + 2] - u32[scratch / 4], u32[scratch / 4 + 3] / PAGE],
      [a, 65535, 65535 * PAGE, free - 65535]);
    assert.is(x.check(), 0);
    assert.is(x.scavenged(u32[scratch / 4]), 0);
    assert.is(x.scavenged(u32[scratch / 4 + 2]), 0);
    assert.is(x.arena_stat(STAT_CLEAN), x.arena_stat(STAT_FREE_PAGES), 'all free pages clean, merged');
    assert.is(x.check(), 0);
  });

  test(`${t} raw_free of a span that merged into its left neighbour is refused the second time`, () => {
    const { x } = arena(4 * MiB, shared);
    const a = x.raw_alloc(10), b = x.raw_alloc(20), c = x.raw_alloc(5);
    assert.is(x.raw_free(a), 0);
    assert.is(x.raw_free(b), 0, 'b merges into a');
    const free = x.arena_stat(STAT_FREE_PAGES);
    assert.is(x.raw_free(b), -3, 'E_NOT_SLOT: no stale head is left inside the merged span');
    assert.is(x.raw_free(a), -3);
    assert.is(x.arena_stat(STAT_FREE_PAGES), free);
    assert.is(x.check(), 0);
    assert.is(x.raw_free(c), 0, 'c merges on both sides');
    assert.is(x.raw_free(c), -3);
    assert.is(x.check(), 0);
  });

  test(`${t} every double and bogus raw_free is refused with its code and changes nothing`, () => {
    const { x, u32 } = arena(4 * MiB, shared);
    const bytes = new Uint8Array(u32.buffer);
    const refused = (off: number, code: number, what: string) => {
      const before = bytes.slice();
      assert.is(x.raw_free(off), code, what);
      assert.ok(bytes.every((b, i) => b === before[i]), `${what}: the arena is byte-identical`);
    };
    const data = x.arena_stat(STAT_DATA_PAGE) * PAGE;
    const end = x.arena_stat(STAT_PAGES) * PAGE;
    const [a, b, c, d, e] = [3, 4, 5, 6, 7].map((n) => x.raw_alloc(n) >>> 0);
    const run = x.alloc(47) >>> 0; // a 16-page run of class 47
    // Never a raw span's start: E_OFFSET for what is not a page of the data area, E_NOT_SLOT else.
    refused(a + 1, -2, 'inside a page');
    refused(a + 128, -2, 'a granule, not a page');
    refused(0, -2, 'the header');
    refused(data - PAGE, -2, 'a table page');
    refused(end, -2, 'past the end');
    refused(2 ** 32 - PAGE, -2, 'far past the end');
    refused(a + PAGE, -3, 'a raw span\'s second page');
    refused(run, -3, 'a run');
    refused(run + PAGE, -3, 'a run\'s inner page');
    const tail = e + 7 * PAGE; // the free span after the last raw span
    refused(tail, -3, 'a free span\'s head');
    refused(tail + 5 * PAGE, -3, 'inside a free span');
    // Merges on either side: b freed alone, then a (b merges to its right), then c (merges into
    // a's span on its left) and e (merges with the free tail on its right), then d (both sides).
    assert.is(x.raw_free(b), 0);
    refused(b, -3, 'b twice');
    assert.is(x.raw_free(a), 0, 'a takes in b on its right');
    refused(a, -3, 'a twice, after a right merge');
    refused(b, -3, 'b inside the merged span');
    assert.is(x.raw_free(c), 0, 'c merges into a on its left');
    refused(c, -3, 'c twice, after a left merge');
    assert.is(x.raw_free(e), 0, 'e merges with the free tail');
    refused(e, -3, 'e twice');
    assert.is(x.raw_free(d), 0, 'd merges on both sides');
    for (const [off, what] of [[a, 'a'], [b, 'b'], [c, 'c'], [d, 'd'], [e, 'e']] as const) refused(off, -3, `${what} after every merge`);
    assert.is(x.check(), 0);
    assert.is(x.free(run, 47), 0);
    assert.is(x.release(), 16);
    assert.is(x.arena_stat(STAT_FREE_PAGES), x.arena_stat(STAT_PAGES) - x.arena_stat(STAT_DATA_PAGE), 'all free again');
    assert.is(x.arena_stat(STAT_RAW_PAGES), 0);
    assert.is(x.check(), 0);
  });

  test(`${t} reopen: only a closed arena, under a new id`, () => {
    const { x } = arena(4 * MiB, shared);
    assert.is(x.reopen(9), -6, 'E_FORMAT: it is open');
    assert.is(x.close(), 1);
    assert.is(x.alloc(0), 0);
    assert.is(x.reopen(9), 0);
    assert.is(x.arena_stat(STAT_ARENA_ID), 9);
    assert.ok(x.alloc(0) !== 0, 'it hands out again');
    assert.is(x.check(), 0);
  });
}

function pool(host: () => MemStats, opts: Record<string, unknown> = {}) {
  const mm = new MMSA({ name: 'back', arenaSize: 16 * MiB, housekeeping: false, memStats: host, minFree: 2 * GiB, env: {}, ...opts });
  mm.init();
  return mm;
}
const roomy = (): MemStats => ({ total: 64 * GiB, free: 60 * GiB, available: 60 * GiB });
const tight = (): MemStats => ({ total: 64 * GiB, free: 2.1 * GiB, available: 2.1 * GiB });

function fill(mm: MMSA, bytes: number, size = 32768): Uint8Array[] {
  const held: Uint8Array[] = [];
  for (let i = 0; i < bytes / size; i++) { const b = mm.allocSize(size); b.fill(0xab); held.push(b); }
  return held;
}

needs('the native page helper suite', native.discard !== undefined, native.missing ?? '', () => {
  test('native helper: at High pressure housekeeping madvises free pages in place; RSS falls, the arena is reused, bytes read zero', async () => {
    await withOps(native, () => {
      let host = roomy;
      const mm = pool(() => host());
      const held = fill(mm, 256 * MiB);
      const kept = held.filter((_, i) => i % 64 === 0); // one buffer in each 2 MiB keeps every arena open
      const arenas = mm.stats().arenas;
      for (const b of held) if (!kept.includes(b)) mm.free(b);
      const before = rssMiB();
      host = tight;
      const r = mm.housekeep();
      assert.is(r.pressure, Pressure.High);
      assert.is(r.dropped, 0, 'every arena still has a buffer out');
      assert.ok(r.returned > 200 * MiB, `returned ${r.returned / MiB} MiB in place`);
      const after = rssMiB();
      assert.ok(before - after > 180, `RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB with no collection`);
      const st = mm.stats();
      assert.ok(st.returnedBytes >= r.returned, 'the pages never touched count as given back too');
      assert.is(st.arenas, arenas);
      mm.check();
      const again = fill(mm, 128 * MiB);
      assert.is(mm.stats().arenas, arenas, 'the second burst fits in the arenas kept');
      assert.ok(mm.stats().returnedBytes < r.returned, 'pages in use again are no longer counted as given back');
      mm.check();
      for (const b of [...kept, ...again]) mm.free(b);
      assert.is(mm.housekeep().returned > 0, true, 'a second pass gives back only what was used since');
      assert.is(mm.housekeep().returned, 0, 'and a third nothing');
      mm.terminate();
    });
  });

  test('native helper: a freed page reads zero after it was given back (dontneed); madvise free keeps it usable', async () => {
    await withOps(native, () => {
      for (const madvise of ['dontneed', 'free'] as const) {
        const mm = pool(tight, { madvise, arenaSize: 4 * MiB });
        const keep = mm.allocSize(131072);
        const b = mm.allocSize(131072);
        b.fill(7);
        const raw = new Uint8Array(b.buffer, b.byteOffset, b.length); // the same bytes, kept only to look
        mm.free(b);
        mm.freeMem({ totally: true });
        if (madvise === 'dontneed') assert.ok(raw.every((v) => v === 0), 'MADV_DONTNEED: zero at once');
        const c = mm.allocSize(131072);
        c.fill(9);
        assert.ok(c.every((v) => v === 9));
        mm.free(c);
        mm.free(keep);
        mm.check();
        mm.terminate();
      }
    });
  });

  test('native helper: dropping an empty arena gives its pages back at once, before any collection', async () => {
    await withOps({ discard: native.discard }, () => {
      const mm = pool(roomy);
      let held: Uint8Array[] | undefined = fill(mm, 256 * MiB);
      const before = rssMiB();
      held.forEach((b) => mm.free(b)); // no loop variable left on a suspended frame to keep a view alive
      held = undefined;
      const r = mm.freeMem({ totally: true });
      assert.ok(r.dropped >= 16);
      const after = rssMiB();
      assert.ok(before - after > 200, `RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB, no gc`);
      assert.is(mm.stats().retired, 0, 'given back, so not counted as retired');
      mm.terminate();
    });
  });
});

test('without the helper: a dropped arena is retired (counted, in every realm\'s budget) until collected, and reused before a new one is mapped', async () => {
  let collects = 0;
  const gc = native.collect!;
  await withOps({ collect: () => { collects++; gc(); } }, async () => {
    const mm = pool(roomy, { arenaSize: 4 * MiB, budget: { ceiling: 24 * MiB } });
    let held: Uint8Array[] = fill(mm, 90 * 131072, 131072); // 31 buffers of 128 KiB to a 4 MiB arena: 3 arenas
    assert.is(mm.stats().arenas, 3);
    const memories = new Set(mm.pool.arenas.list.map((a) => a.memory));
    held.forEach((b) => mm.free(b)); // no loop variable left on a suspended frame to keep a view alive
    held = [];
    const r = mm.freeMem({ totally: true });
    assert.is(r.dropped, 3);
    assert.is(mm.stats().retired, 3);
    assert.is(mm.hostStats()?.total, 64 * GiB);
    // Another realm of the pool cannot reuse them, and its budget counts them (its figures: the
    // default provider's, the same roomy host here).
    const provider = defaultMemStats();
    setDefaultMemStats(roomy);
    const other = MMSA.attach(mm.share());
    setDefaultMemStats(provider);
    const w: Uint8Array[] = [];
    let err: { code?: string; message?: string } = {};
    try { for (;;) w.push(other.allocSize(131072)); } catch (e) { err = e as typeof err; }
    assert.is(err.code, 'ERR_MEMSYS_BUDGET');
    assert.match(err.message!, /3 dropped arenas not yet collected included/);
    assert.is(other.stats().arenas, 3, 'three 4 MiB arenas: the ceiling less the three retired');
    w.forEach((b) => other.free(b));
    other.terminate();
    // This realm reuses them: the same memories, no new mapping.
    held = fill(mm, 90 * 131072, 131072);
    const now = new Set(mm.pool.arenas.list.map((a) => a.memory));
    assert.is([...now].filter((m) => memories.has(m)).length, 3, 'the three retired memories, reopened');
    assert.is(mm.stats().retired, 0);
    mm.check();
    held.forEach((b) => mm.free(b)); // no loop variable left on a suspended frame to keep a view alive
    held = [];
    mm.freeMem({ totally: true });
    await new Promise((res) => setTimeout(res, 10));
    assert.ok(collects >= 1, 'a collection was requested');
    memories.clear();
    now.clear();
    for (let i = 0; i < 40 && mm.stats().retired > 0; i++) { gc(); await new Promise((res) => setTimeout(res, 25)); }
    assert.is(mm.stats().retired, 0, 'collected: no longer counted');
    assert.is(inUse(mm), 0);
    mm.terminate();
  });
});

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

test('two realms: a drop and the next burst in one task never leave one arena counted twice or unreceivable', async () => {
  await withOps({}, async () => {
    const r = pool(roomy, { arenaSize: 4 * MiB });
    const b0 = r.allocSize(8192);
    const c = MMSA.attach(r.share());
    await sleep(20); // c adopts the arena
    r.free(b0);
    r.freeMem({ totally: true });
    const b1 = r.allocSize(8192); // another realm is alive: no reuse, a new arena
    await sleep(50);
    const rIn = r.pool.arenas.list, cIn = c.pool.arenas.list;
    assert.is(new Set(cIn.map((a) => a.memory)).size, cIn.length, 'one object per memory in c');
    assert.ok(cIn.every((a) => rIn.some((x) => x.id === a.id)), 'c knows the arenas by r\'s ids');
    const got = r.receive(c.handoff(c.allocSize(8192))) as Uint8Array;
    r.free(got);
    r.free(b1);
    c.terminate();
    r.terminate();
  });
});

test('every realm gives back its scratch page when it lets go of an arena; the last open arena is kept pool-wide under an address-space limit', async () => {
  await withOps({}, async () => {
    const r = pool(roomy, { arenaSize: 4 * MiB });
    const c = MMSA.attach(r.share());
    const b = r.allocSize(8192);
    await sleep(20);
    c.free(c.allocSize(8192)); // c takes its scratch page in r's arena
    c.freeMem({ totally: true, toOS: false });
    r.free(b);
    const arena = r.pool.arenas.list[0];
    r.freeMem({ totally: true });
    await sleep(20); // c lets go of it on r's message
    assert.is(c.pool.arenas.list.length, 0);
    assert.is(arena.core!.arena_stat(STAT_RAW_PAGES), 0, 'no realm\'s scratch page is left in the dropped arena');
    c.terminate();
    r.terminate();
    // Two realms, one arena each, both passes at once: one arena stays open in the pool.
    const limited = (): MemStats => ({ ...roomy(), addressSpace: 12 * GiB });
    const p = pool(limited, { arenaSize: 4 * MiB });
    const q = MMSA.attach(p.share());
    const held = fill(p, 6 * MiB, 131072); // two arenas
    await sleep(20);
    held.forEach((x) => p.free(x));
    p.freeMem({ totally: true });
    q.freeMem({ totally: true });
    assert.is(p.pool.control.open, 1, 'one arena open in the pool');
    q.terminate();
    p.terminate();
  });
});

test.run();
