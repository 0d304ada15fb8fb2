// Fuzzing every public entry point with random and mutated values: each call either works or
// fails with a memsys error (a stable ERR_MEMSYS_* code), and a failed call leaves the pool as it
// was (same buffers in use, same arenas, invariants intact).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA, type MemStats, type SGL } from '../src/index.js';
import { inUse } from './helpers.js';

const GiB = 1 << 30;
const roomy = (): MemStats => ({ total: 64 * GiB, free: 60 * GiB, available: 60 * GiB });

// xorshift32, seeded: a failure names its seed and step.
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}
type R = ReturnType<typeof rng>;

const other = new MMSA({ name: 'other', arenaSize: 2 << 20, housekeeping: false, memStats: roomy, minFree: 0, env: {} });
other.init();
const otherBuf = other.allocSize(4096);

// A hostile value: every JS type, edge numbers, near-miss buffers and objects.
function value(r: R, mm: MMSA, live: Uint8Array[]): unknown {
  const b = live.length ? r.pick(live) : undefined;
  switch (r.int(22)) {
    case 0: return r.pick([NaN, Infinity, -Infinity, -1, -0, 0, 1, 1.5, 127, 128, 129, 4095, 4096, 131072, 131073, 2 ** 31, 2 ** 32, 2 ** 53, Number.MAX_VALUE]);
    case 1: return r.int(1 << 20);
    case 2: return r.pick(['', 'x', '4096', '2GiB', ' ', '\u0000', 'memsys']);
    case 3: return r.pick([null, undefined, true, false]);
    case 4: return r.pick([{}, [], [1, 2], { length: 5 }, Object.create(null)]);
    case 5: return () => {};
    case 6: return Symbol('s');
    case 7: return 10n;
    case 8: return new Uint8Array(r.pick([0, 1, 128, 4096, 32768]));
    case 9: return new Uint16Array(2048);
    case 10: return new ArrayBuffer(r.pick([0, 16, 4096]));
    case 11: return b ? b.subarray(r.int(8), b.length - r.int(8)) : undefined;
    case 12: return b ? new Uint8Array(b.buffer, b.byteOffset, b.length) : undefined;
    case 13: return otherBuf;
    case 14: return b;
    case 15: return new DataView(new ArrayBuffer(8));
    case 16: return mutate(r, { kind: 'memsys.buf', v: 1, mm: mm.id, cls: 32, ticket: 1, arenas: [1], offs: [4096], memories: [] }, mm, live);
    case 17: return mutate(r, mm.share(), mm, live);
    case 18: return { postMessage: 5 };
    case 19: return new Proxy({}, { get() { throw new Error('trap'); } });
    case 20: return { name: r.pick(['', 'n', 5]), arenaSize: value(r, mm, live), budget: r.pick([{}, { ceiling: -1 }, { ceiling: 'x' }, 5]) };
    default: return r.pick([[value(r, mm, live)], { copy: value(r, mm, live) }]);
  }
}

// A real descriptor or options object with one field replaced, removed or added.
function mutate(r: R, o: object, mm: MMSA, live: Uint8Array[]): unknown {
  const c: Record<string, unknown> = { ...o };
  const keys = Object.keys(c);
  const k = r.pick(keys);
  switch (r.int(3)) {
    case 0: c[k] = value(r, mm, live); break;
    case 1: delete c[k]; break;
    default: c[`x${r.int(3)}`] = value(r, mm, live);
  }
  return c;
}

function fingerprint(mm: MMSA): string {
  const st = mm.stats();
  return JSON.stringify([inUse(mm), st.arenas, st.classes.map((c) => c.inUse)]);
}

test('a few thousand hostile calls: each works or is a memsys error, and a failure changes nothing', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = rng(seed);
    const mm = new MMSA({ name: 'fuzz', arenaSize: 2 << 20, housekeeping: false, memStats: roomy, minFree: 0, env: {}, budget: { ceiling: 16 << 20 } });
    mm.init();
    const live: Uint8Array[] = [];
    const sgls: SGL[] = [];
    const made: { terminate(): void }[] = [];
    for (let step = 0; step < 1000; step++) {
      const v = value(r, mm, live);
      const w = value(r, mm, live);
      const slab = mm.getSlab(r.pick([128, 4096, 32768]));
      const sgl = sgls.length ? r.pick(sgls) : undefined;
      const calls: [string, () => unknown][] = [
        ['new MMSA', () => made.push(new MMSA(v as never))],
        ['new MMSA options', () => made.push(new MMSA(mutate(r, { name: 'n', arenaSize: 1 << 20, shared: true, budget: { ceiling: 4 << 20 } }, mm, live) as never))],
        ['getSlab', () => mm.getSlab(v as never)],
        ['allocSize', () => live.push(mm.allocSize(v as never))],
        ['free', () => { mm.free(v as never); const i = live.indexOf(v as Uint8Array); if (i >= 0) live.splice(i, 1); }],
        ['slab.free', () => { slab.free(v as never); const i = live.indexOf(v as Uint8Array); if (i >= 0) live.splice(i, 1); }],
        ['slabOf', () => mm.slabOf(v as never)],
        ['newSGL', () => sgls.push(mm.newSGL(v as never, w as never))],
        ['handoff', () => mm.handoff(v as never)],
        ['receive', () => mm.receive(v as never)],
        ['share', () => mm.share(v as never)],
        ['attach', () => made.push(MMSA.attach(v as never, w as never))],
        ['openChannel', () => mm.openChannel(v as never)],
        ['freeMem', () => mm.freeMem(v as never)],
        ['sgl.write', () => sgl?.write(v as never)],
        ['sgl.writeString', () => sgl?.writeString(v as never)],
        ['sgl.writeByte', () => sgl?.writeByte(v as never)],
        ['sgl.writeAt', () => sgl?.writeAt(v as never, w as never)],
        ['sgl.read', () => sgl?.read(v as never)],
        ['sgl.readFrom', () => sgl?.readFrom(v as never)],
        ['sgl.writeTo', () => sgl?.writeTo(v as never, w as never)],
        ['sgl.toReadableStream', () => sgl?.toReadableStream(v as never)],
        ['sgl.open.seek', () => sgl?.open().seek(v as never, w as never)],
      ];
      const [name, call] = r.pick(calls);
      const before = fingerprint(mm);
      let err: unknown;
      try {
        const res = call();
        if (res instanceof Promise) await res.catch((e) => { err = e; });
      } catch (e) {
        err = e;
      }
      const where = `seed ${seed} step ${step}: ${name}(${describe(v)}, ${describe(w)})`;
      if (err !== undefined) {
        const code = (err as { code?: unknown }).code;
        const own = (err as Error).message === 'trap'; // the caller's own getter threw: its error, passed on
        assert.ok(own || (typeof code === 'string' && code.startsWith('ERR_MEMSYS_')), `${where} threw ${String(err)}`);
        if (!own) assert.ok((err as Error).message.length > 10, where);
        if (name !== 'sgl.readFrom' && name !== 'sgl.writeTo') assert.is(fingerprint(mm), before, `${where}: state changed by a refused call`);
      }
    }
    for (const s of sgls) s.free();
    for (const b of live) mm.free(b);
    for (const m of made) m.terminate();
    assert.is(inUse(mm), 0, `seed ${seed}: everything given back`);
    mm.check();
    mm.free(mm.allocSize(100));
    mm.terminate();
  }
});

function describe(v: unknown): string {
  try {
    if (typeof v === 'symbol' || typeof v === 'bigint' || typeof v === 'function') return typeof v;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.byteLength})@${v.byteOffset}`;
    return JSON.stringify(v)?.slice(0, 60) ?? String(v);
  } catch {
    return 'a Proxy that throws';
  }
}

test.run();
