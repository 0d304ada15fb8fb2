// A long randomized run against a simple model of the pool: no buffer is ever handed out twice,
// contents survive, every count balances, and the pool is empty at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA } from '../src/index.js';

// Deterministic PRNG (mulberry32) so a failure can be replayed from its seed.
function rng(seed: number): () => number {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const [seed, debug, shared] of [[1, false, true], [2, false, false], [3, true, true]] as const) {
  test(`randomized against a model (seed ${seed}${debug ? ', debug' : ''}${shared ? '' : ', single-threaded'})`, () => {
    const r = rng(seed);
    const mm = new MMSA({ name: 'model', arenaSize: 2 << 20, env: {}, debug, shared, magazineBytes: 64 << 10 });
    mm.init();
    const live = new Map<Uint8Array, { tag: number }>();
    // One byte per 128-byte granule of each arena: 1 while some live buffer covers it.
    const taken = new Map<ArrayBufferLike, Uint8Array>();
    const mark = (b: Uint8Array, on: number) => {
      let map = taken.get(b.buffer);
      if (!map) taken.set(b.buffer, (map = new Uint8Array(b.buffer.byteLength >>> 7)));
      for (let g = b.byteOffset >>> 7, end = (b.byteOffset + b.length) >>> 7; g < end; g++) {
        assert.is.not(map[g], on, `granule ${g} ${on ? 'handed out twice' : 'freed twice'}`);
        map[g] = on;
      }
    };
    const steps = debug ? 3000 : 40000;
    let allocs = 0, frees = 0;
    for (let i = 0; i < steps; i++) {
      if (live.size < 400 && (live.size === 0 || r() < 0.55)) {
        const n = Math.floor(r() ** 3 * 131072);
        const b = mm.allocSize(n);
        assert.ok(b.length >= n && b.length <= Math.max(128, n + 4096), `allocSize(${n}) gave ${b.length}`);
        mark(b, 1);
        const tag = (i * 31) & 255;
        b[0] = tag; b[b.length - 1] = tag ^ 0xff; b[b.length >> 1] = tag;
        live.set(b, { tag });
        allocs++;
      } else {
        const idx = Math.floor(r() * live.size);
        let j = 0;
        for (const [b, m] of live) {
          if (j++ !== idx) continue;
          assert.ok(b[0] === m.tag && b[b.length - 1] === (m.tag ^ 0xff) && b[b.length >> 1] === m.tag, 'contents intact');
          if (r() < 0.5) mm.free(b); else mm.slabOf(b).free(b);
          live.delete(b);
          mark(b, 0);
          frees++;
          break;
        }
      }
      if (i % 5000 === 0) {
        const s = mm.stats();
        const inUse = s.classes.reduce((a, c) => a + c.inUse, 0);
        assert.is(inUse, live.size, 'stats count the live buffers');
        mm.check();
      }
    }
    for (const b of live.keys()) mm.free(b);
    const s = mm.stats();
    let hits = 0;
    for (const c of s.classes) {
      assert.is(c.inUse, 0);
      hits += c.hits;
    }
    assert.is(hits, allocs);
    assert.is(frees + live.size, allocs);
    mm.terminate();
    assert.is(mm.stats().arenas, 0);
  });
}

test.run();
