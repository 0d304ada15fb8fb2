// The MMSA API: construction, init, slabs, alloc/free, every misuse, stats, terminate, debug mode.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA, type MMSAOptions } from '../src/index.js';
import { throwsCode } from './helpers.js';

const MiB = 1 << 20;
const host = () => ({ total: 16 * 1024 * MiB, free: 8 * 1024 * MiB });

function mk(o: Partial<MMSAOptions> = {}): MMSA {
  const mm = new MMSA({ name: 't', arenaSize: 4 * MiB, memStats: host, env: {}, ...o });
  assert.is(mm.init(), null);
  return mm;
}

test('constructor: defaults, and each bad option is a typed error naming it', () => {
  const mm = new MMSA({ name: 'd', env: {} });
  assert.is(mm.defaultSize, 32768);
  assert.is(mm.arenaSize, 64 * MiB);
  assert.is(mm.timeIval, 180_000);
  assert.is(new MMSA({ name: 's', small: true }).defaultSize, 1024);
  const bad: [unknown, string, string][] = [
    [undefined, 'ERR_MEMSYS_INVALID_ARG', 'options undefined'],
    [{}, 'ERR_MEMSYS_INVALID_ARG', 'option name undefined'],
    [{ name: '' }, 'ERR_MEMSYS_INVALID_ARG', 'option name ""'],
    [{ name: 'x', arenaSize: 1000 }, 'ERR_MEMSYS_INVALID_SIZE', 'option arenaSize 1000'],
    [{ name: 'x', arenaSize: 2 * MiB + 4096 }, 'ERR_MEMSYS_INVALID_SIZE', 'multiple of 64 KiB'],
    [{ name: 'x', arenaSize: 8 * 1024 * MiB }, 'ERR_MEMSYS_INVALID_SIZE', 'option arenaSize'],
    [{ name: 'x', minPctTotal: 101 }, 'ERR_MEMSYS_INVALID_SIZE', 'option minPctTotal 101'],
    [{ name: 'x', minPctFree: -1 }, 'ERR_MEMSYS_INVALID_SIZE', 'option minPctFree -1'],
    [{ name: 'x', minFree: 1.5 }, 'ERR_MEMSYS_INVALID_SIZE', 'option minFree 1.5'],
    [{ name: 'x', timeIval: 0 }, 'ERR_MEMSYS_INVALID_SIZE', 'option timeIval 0'],
    [{ name: 'x', timeIval: '1m' }, 'ERR_MEMSYS_INVALID_SIZE', 'option timeIval "1m"'],
    [{ name: 'x', defaultSize: 1000 }, 'ERR_MEMSYS_INVALID_SIZE', 'size 1000'],
    [{ name: 'x', defaultSize: 256 * 1024 }, 'ERR_MEMSYS_SIZE_TOO_LARGE', 'size 262144'],
    [{ name: 'x', magazineBytes: -5 }, 'ERR_MEMSYS_INVALID_SIZE', 'option magazineBytes'],
    [{ name: 'x', memStats: 5 }, 'ERR_MEMSYS_INVALID_ARG', 'option memStats 5'],
    [{ name: 'x', now: 'x' }, 'ERR_MEMSYS_INVALID_ARG', 'option now'],
    [{ name: 'x', env: 'x' }, 'ERR_MEMSYS_INVALID_ARG', 'option env'],
  ];
  for (const [o, code, part] of bad) throwsCode(() => new MMSA(o as MMSAOptions), code, part);
});

test('init returns the error, or throws it with panicOnErr; the MMSA is usable either way', () => {
  const low = () => ({ total: 1024 * MiB, free: 100 * MiB });
  const a = new MMSA({ name: 'a', arenaSize: 4 * MiB, memStats: low, env: {}, minFree: 200 * MiB });
  const err = a.init();
  assert.ok(err);
  assert.is(err!.code, 'ERR_MEMSYS_INSUFFICIENT_MEMORY');
  assert.match(err!.message, /insufficient free memory 100\.0 MiB, minimum required 200\.0 MiB/);
  const buf = a.alloc();
  assert.is(buf.length, 32768);
  a.free(buf);
  const b = new MMSA({ name: 'b', arenaSize: 4 * MiB, memStats: low, env: {}, minFree: 200 * MiB });
  throwsCode(() => b.init(true), 'ERR_MEMSYS_INSUFFICIENT_MEMORY', 'minimum required');
  throwsCode(() => a.init(), 'ERR_MEMSYS_STATE', 'already initialised');
  const c = new MMSA({ name: 'c', arenaSize: 4 * MiB, memStats: low, env: { AIS_MINMEM_FREE: 'lots' } });
  const e2 = c.init();
  assert.is(e2?.code, 'ERR_MEMSYS_ENV');
  assert.match(e2!.message, /AIS_MINMEM_FREE "lots"/);
  const d = new MMSA({ name: 'd', arenaSize: 4 * MiB, env: { AIS_DEBUG: 'memsys=x' } });
  throwsCode(() => d.init(true), 'ERR_MEMSYS_ENV', 'AIS_DEBUG "memsys=x"');
});

test('use before init and after terminate is a typed error', () => {
  const mm = new MMSA({ name: 'n', env: {} });
  throwsCode(() => mm.alloc(), 'ERR_MEMSYS_STATE', 'not initialised');
  throwsCode(() => mm.allocSize(100), 'ERR_MEMSYS_STATE', 'not initialised');
  throwsCode(() => mm.allocSize(1.5), 'ERR_MEMSYS_STATE', 'not initialised');
  throwsCode(() => mm.getSlab(4096), 'ERR_MEMSYS_STATE', 'not initialised');
  throwsCode(() => mm.free(new Uint8Array(8)), 'ERR_MEMSYS_STATE', 'not initialised');
  const m2 = mk();
  const slab = m2.getSlab(8192);
  const buf = slab.alloc();
  m2.terminate();
  m2.terminate(); // idempotent
  throwsCode(() => m2.alloc(), 'ERR_MEMSYS_STATE', 'terminated');
  throwsCode(() => m2.allocSize(5000), 'ERR_MEMSYS_STATE', 'terminated');
  throwsCode(() => slab.alloc(), 'ERR_MEMSYS_STATE', 'terminated');
  throwsCode(() => m2.free(buf), 'ERR_MEMSYS_STATE', 'terminated');
  throwsCode(() => slab.free(buf), 'ERR_MEMSYS_STATE', 'terminated');
  assert.is(m2.stats().arenas, 0);
});

test('getSlab is exact; allocSize picks the smallest class that fits', () => {
  const mm = mk();
  for (const size of [128, 256, 3968, 4096, 8192, 131072]) assert.is(mm.getSlab(size).size, size);
  const bad: [unknown, string, string][] = [
    [0, 'ERR_MEMSYS_INVALID_SIZE', 'size 0'],
    [100, 'ERR_MEMSYS_INVALID_SIZE', 'size 100 is not a slab size'],
    [4096 + 128, 'ERR_MEMSYS_INVALID_SIZE', 'size 4224'],
    [131072 + 4096, 'ERR_MEMSYS_SIZE_TOO_LARGE', 'SGL'],
    [1.5, 'ERR_MEMSYS_INVALID_SIZE', 'size 1.5 must be a non-negative integer'],
    [-128, 'ERR_MEMSYS_INVALID_SIZE', 'size -128'],
    ['4096', 'ERR_MEMSYS_INVALID_SIZE', 'size "4096"'],
    [NaN, 'ERR_MEMSYS_INVALID_SIZE', 'size NaN'],
  ];
  for (const [s, code, part] of bad) throwsCode(() => mm.getSlab(s as number), code, part);
  const fits: [number, number][] = [[0, 128], [1, 128], [128, 128], [129, 256], [4000, 4096], [4097, 8192], [131072, 131072]];
  for (const [n, size] of fits) {
    const b = mm.allocSize(n);
    assert.is(b.length, size, `allocSize(${n})`);
    assert.is(mm.slabOf(b).size, size);
    mm.free(b);
  }
  throwsCode(() => mm.allocSize(131073), 'ERR_MEMSYS_SIZE_TOO_LARGE', 'size 131073', 'SGL');
  throwsCode(() => mm.allocSize(-1), 'ERR_MEMSYS_INVALID_SIZE', 'size -1');
});

test('4 KiB is a page class in a page MMSA and a small class in a small one', () => {
  const page = mk();
  const small = mk({ small: true });
  const p = page.allocSize(4096), s = small.allocSize(4096), t = page.allocSize(4000);
  assert.is(page.slabOf(p), page.getSlab(4096));
  assert.is(page.slabOf(t).size, 4096);
  assert.is.not(page.slabOf(t), page.getSlab(4096), '4000 bytes fit the small 4 KiB class');
  page.free(t);
  page.free(p);
  small.free(s);
  assert.is(small.alloc().length, 1024);
});

test('buffers are distinct, writable and keep their contents until freed', () => {
  const mm = mk();
  const slab = mm.getSlab(16384);
  const bufs = Array.from({ length: 300 }, (_, i) => {
    const b = slab.alloc();
    b.fill(i & 255);
    return b;
  });
  assert.ok(mm.stats().arenas > 1, 'grew beyond one 4 MiB arena');
  bufs.forEach((b, i) => assert.ok(b.every((x) => x === (i & 255)), `buffer ${i} intact`));
  for (const b of bufs) slab.free(b);
  mm.check();
});

test('freeing anything that is not a live buffer of this pool throws and changes nothing', () => {
  const mm = mk({ now: () => 0 });
  const other = mk();
  const slab = mm.getSlab(32768);
  const a = slab.alloc(), b = slab.alloc();
  const o = other.alloc();
  const before = JSON.stringify(mm.stats());
  throwsCode(() => mm.free(new Uint8Array(32768)), 'ERR_MEMSYS_NOT_OWNED', 'not memsys memory');
  throwsCode(() => mm.free(a.subarray(1)), 'ERR_MEMSYS_NOT_OWNED', 'subarray');
  throwsCode(() => mm.free(a.subarray(0, 100)), 'ERR_MEMSYS_NOT_OWNED', 'subarray');
  throwsCode(() => mm.free(a.subarray(0)), 'ERR_MEMSYS_NOT_OWNED', 'free the buffer itself');
  throwsCode(() => mm.free(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)), 'ERR_MEMSYS_NOT_OWNED', 'subarray or copy');
  throwsCode(() => mm.free(o), 'ERR_MEMSYS_NOT_OWNED', 'belongs to MMSA "t"');
  throwsCode(() => mm.getSlab(16384).free(a), 'ERR_MEMSYS_WRONG_SLAB', 'to the 16384-byte slab', '32768-byte buffer');
  throwsCode(() => mm.free('x' as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG', 'buffer "x"');
  throwsCode(() => mm.free(new Uint16Array(4) as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG');
  assert.is(JSON.stringify(mm.stats()), before, 'nothing changed');
  slab.free(a);
  throwsCode(() => slab.free(a), 'ERR_MEMSYS_NOT_LIVE', 'double free');
  throwsCode(() => mm.free(a), 'ERR_MEMSYS_NOT_LIVE', 'double free');
  // A view kept after its buffer went back to the core stays dead even when the slot is reused.
  const many = Array.from({ length: 200 }, () => slab.alloc());
  for (const x of many) slab.free(x);
  throwsCode(() => slab.free(many[0]), 'ERR_MEMSYS_NOT_LIVE');
  slab.free(b);
  other.free(o);
  mm.check();
});

test('stats count hits, buffers in use, cache and free per class', () => {
  let t = 1000;
  const mm = mk({ now: () => t });
  const slab = mm.getSlab(8192);
  const bufs = [slab.alloc(), slab.alloc(), slab.alloc()];
  slab.free(bufs.pop()!);
  const s = mm.stats();
  const c = s.classes.find((x) => x.size === 8192)!;
  assert.is(c.hits, 3);
  assert.is(c.inUse, 2);
  assert.is(c.cached + c.inUse, mm.coreOut(33));
  assert.is(s.mode, 'shared');
  assert.is(s.arenas, 1);
  assert.is(s.bytes, 4 * MiB);
  assert.is(c.idle, 0);
  t += 5000;
  assert.is(mm.stats().classes.find((x) => x.size === 8192)!.idle, 5000);
  slab.alloc();
  assert.is(mm.stats().classes.find((x) => x.size === 8192)!.idle, 0);
});

test('single-threaded mode uses plain memories and says so', () => {
  const mm = mk({ shared: false });
  const b = mm.alloc();
  assert.not.ok(b.buffer instanceof SharedArrayBuffer);
  assert.is(mm.stats().mode, 'single-threaded');
  throwsCode(() => mm.share(), 'ERR_MEMSYS_STATE', 'single-threaded');
  mm.free(b);
});

test('debug mode fills freed buffers with DEADBEEF and catches writes after free', () => {
  const mm = mk({ debug: true, arenaSize: 2 * MiB });
  const slab = mm.getSlab(4096);
  const a = slab.alloc();
  assert.equal(Array.from(a.subarray(0, 8)), [0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef]);
  a.fill(7);
  slab.free(a);
  assert.equal(Array.from(a.subarray(0, 4)), [0xde, 0xad, 0xbe, 0xef]);
  a[100] = 1; // use after free
  throwsCode(() => slab.alloc(), 'ERR_MEMSYS_USE_AFTER_FREE', 'written at byte 100');
  const again = slab.alloc(); // the pool is consistent: the same buffer, re-poisoned
  assert.is(again[100], 0xde);
  slab.free(again);
  const env = new MMSA({ name: 'e', arenaSize: 2 * MiB, env: { AIS_DEBUG: 'fs=3,memsys=4' } });
  env.init();
  assert.ok(env.stats().debug);
});

test('an arena that cannot be created is ERR_MEMSYS_OUT_OF_MEMORY and leaves the pool intact', () => {
  const mm = mk({ arenaSize: 4 * 1024 * MiB });
  const Mem = WebAssembly.Memory;
  // Simulate the engine's refusal (as under ulimit -v) for this one construction.
  (WebAssembly as { Memory: unknown }).Memory = function () {
    throw new RangeError('WebAssembly.Memory(): could not allocate memory');
  };
  try {
    throwsCode(() => mm.alloc(), 'ERR_MEMSYS_OUT_OF_MEMORY', 'could not allocate memory', '4.00 GiB');
  } finally {
    (WebAssembly as { Memory: unknown }).Memory = Mem;
  }
  assert.is(mm.stats().arenas, 0);
});

test('an arena above 2 GiB hands out and takes back buffers at offsets past 2^31', () => {
  const mm = mk({ arenaSize: 4 * 1024 * MiB - 65536 });
  const slab = mm.getSlab(131072);
  const bufs: Uint8Array[] = [];
  let b: Uint8Array;
  do {
    b = slab.alloc();
    bufs.push(b);
  } while (b.byteOffset < 2 ** 31 + 2 ** 20);
  b[0] = 1;
  b[b.length - 1] = 2;
  for (const x of bufs) slab.free(x);
  throwsCode(() => slab.free(b), 'ERR_MEMSYS_NOT_LIVE');
  assert.is(mm.stats().arenas, 1);
  mm.check();
  mm.terminate();
});

test.run();
