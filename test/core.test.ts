// The core module through its plain numeric ABI, as a non-JavaScript host would use it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ABI_VERSION, E_CHECK_RUN_FREE, FLAG_QUARANTINED, W_BITS, W_MAP } from '#abi';
import { type CoreExports, instantiate } from '../src/core/module.js';

const MiB = 1 << 20;

function arena(bytes: number, shared: boolean, flags = 0): { x: CoreExports; u32: Uint32Array; mem: WebAssembly.Memory } {
  const pages = bytes / 65536;
  const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  const x = instantiate(mem, shared, false);
  assert.is(x.init(flags, 42, 7), 0);
  return { x, u32: new Uint32Array(mem.buffer), mem };
}

for (const shared of [true, false]) {
  const t = `${shared ? 'threaded' : 'single-threaded'}:`;

  test(`${t} init writes the header and refuses a second init or a tiny memory`, () => {
    const { x, mem } = arena(4 * MiB, shared);
    assert.is(x.arena_stat(0), ABI_VERSION);  // STAT_ABI
    assert.is(x.arena_stat(1), 1024);         // 4 KiB pages
    assert.is(x.arena_stat(5), 42);           // owner
    assert.is(x.arena_stat(6), 7);            // arena id
    assert.is(x.init(0, 1, 1), -6);           // E_FORMAT: already formatted
    assert.is(x.attach(), 0);
    const second = instantiate(mem, shared, false);
    assert.is(second.attach(), 0);
    const tiny = new WebAssembly.Memory({ initial: 2, maximum: 2, shared });
    assert.is(instantiate(tiny, shared, false).init(0, 1, 1), -7); // E_TOO_SMALL
    const blank = new WebAssembly.Memory({ initial: 16, maximum: 16, shared });
    assert.is(instantiate(blank, shared, false).attach(), -6);
  });

  test(`${t} close: refused while a buffer is out, then nothing more is handed out, in every instance`, () => {
    const { x, mem, u32 } = arena(4 * MiB, shared);
    const other = instantiate(mem, shared, false);
    assert.is(other.attach(), 0);
    const scratch = x.raw_alloc(1);
    const off = x.alloc(39);
    assert.ok(off > 0);
    assert.is(x.close(), 0, 'a buffer is out: refused');
    assert.is(u32[5] & 2, 0, 'flags unchanged');
    const off2 = other.alloc(39);
    assert.ok(off2 > 0, 'still open in every instance');
    assert.is(x.free(off, 39), 0);
    assert.is(other.close(), 0, 'one still out');
    assert.is(other.free(off2, 39), 0);
    assert.is(x.close(), 1, 'nothing out (a raw scratch page does not count): closed');
    assert.is(u32[5] & 2, 2, 'FLAG_CLOSED in the header');
    assert.is(other.close(), 2, 'closed before: 2, from any instance');
    assert.is(x.alloc(39), 0);
    assert.is(other.alloc(0), 0, 'another instance hands out nothing either');
    assert.is(x.alloc_batch(39, scratch, 4), 0);
    assert.is(x.raw_alloc(1), 0);
    assert.is(x.check(), 0);
  });

  test(`${t} every class hands out distinct, aligned, in-range slots and takes them back`, () => {
    const { x, u32 } = arena(32 * MiB, shared);
    const scratch = x.raw_alloc(1);
    assert.ok(scratch > 0);
    const seen = new Set<number>();
    const taken: number[][] = [];
    for (let c = 0; c < 64; c++) {
      const size = x.class_stat(c, 0);
      assert.is(size, c < 32 ? 128 * (c + 1) : 4096 * (c - 31));
      const n = x.alloc_batch(c, scratch, 8);
      assert.is(n, 8);
      const offs = Array.from(u32.subarray(scratch >>> 2, (scratch >>> 2) + n));
      for (const o of offs) {
        assert.is(o % 128, 0);
        for (let k = o; k < o + size; k += 128) {
          assert.not.ok(seen.has(k), `granule ${k} handed out twice`);
          seen.add(k);
        }
        assert.is(x.validate(o, c), 2); // OUT
      }
      assert.is(x.class_stat(c, 5), 8); // out
      taken.push(offs);
    }
    assert.is(x.check(), 0);
    for (let c = 0; c < 64; c++) {
      u32.set(taken[c], scratch >>> 2);
      assert.is(x.free_batch(c, scratch, taken[c].length), taken[c].length);
      assert.is(x.class_stat(c, 5), 0);
    }
    assert.is(x.check(), 0);
    const pagesBefore = x.arena_stat(3);
    assert.ok(x.release() > 0);
    assert.is(x.raw_free(scratch), 0);
    assert.is(x.arena_stat(3), x.arena_stat(1) - x.arena_stat(2), 'every data page is free again');
    assert.ok(x.arena_stat(3) > pagesBefore);
    assert.is(x.check(), 0);
  });

  test(`${t} bad frees return their codes and change nothing`, () => {
    const { x } = arena(4 * MiB, shared);
    const a = x.alloc(39);
    assert.ok(a > 0);
    assert.is(x.free(a, 64), -1);        // E_CLASS
    assert.is(x.free(a + 1, 39), -2);    // E_OFFSET (misaligned)
    assert.is(x.free(0, 39), -2);        // E_OFFSET (header)
    assert.is(x.free(a + 128, 39), -3);  // E_NOT_SLOT (inside the buffer)
    assert.is(x.free(a, 38), -4);        // E_WRONG_CLASS
    assert.is(x.validate(a, 39), 2);
    assert.is(x.free(a, 39), 0);
    assert.is(x.free(a, 39), -5);        // E_NOT_OUT: double free
    assert.is(x.check(), 0);
  });

  test(`${t} free_batch is all or nothing, duplicates included`, () => {
    const { x, u32 } = arena(4 * MiB, shared);
    const s = x.raw_alloc(1);
    assert.is(x.alloc_batch(5, s, 3), 3);
    const offs = Array.from(u32.subarray(s >>> 2, (s >>> 2) + 3));
    u32.set([offs[0], offs[1], offs[0]], s >>> 2);
    const r = x.free_batch(5, s, 3);
    assert.is(r, -16 * 3 - 5, 'entry 2 failed with E_NOT_OUT');
    assert.equal(Array.from(u32.subarray(s >>> 2, (s >>> 2) + 3)), [offs[0], offs[1], offs[0]], 'the array is restored');
    for (const o of offs) assert.is(x.validate(o, 5), 2);
    assert.is(x.class_stat(5, 5), 3);
    assert.is(x.free_batch(5, 0, 1), -8); // E_ARG: array in the header
    assert.is(x.check(), 0);
  });

  test(`${t} a full arena returns 0, and trim keeps the depth asked for`, () => {
    const { x, u32 } = arena(2 * MiB, shared);
    const got: number[] = [];
    for (;;) {
      const o = x.alloc(63);
      if (!o) break;
      got.push(o);
    }
    assert.ok(got.length > 10);
    assert.is(x.alloc(63), 0);
    for (const o of got) assert.is(x.free(o, 63), 0);
    assert.is(x.class_stat(63, 4), got.length);
    assert.is(x.trim(63, 4), got.length - 4);
    assert.is(x.class_stat(63, 4), 4);
    assert.is(x.check(), 0);
    void u32;
  });

  test(`${t} small runs carve 64 KiB and hand out lowest addresses first`, () => {
    const { x } = arena(4 * MiB, shared);
    const a = x.alloc(0), b = x.alloc(0), c = x.alloc(0);
    assert.is(b - a, 128);
    assert.is(c - b, 128);
    assert.is(x.class_stat(0, 2), 512);
    assert.is(x.free(b, 0), 0);
    assert.is(x.alloc(0), b, 'the lowest free slot is reused');
    assert.is(x.check(), 0);
  });

  test(`${t} the first-free hint (class record +20) follows the low slots that stay out; check verifies it`, () => {
    const { x, u32 } = arena(4 * MiB, shared);
    const hint = (c: number) => u32[(256 + c * 32 + 20) >>> 2];
    const r = x.raw_alloc(2);
    const a = Array.from({ length: 8 }, () => x.alloc(15)); // 2 KiB: two slots a page
    const p = a[0] >>> 12;
    assert.is(hint(15), p + 3, 'the page the last slot was found on');
    assert.is(x.free(a[2], 15), 0);
    assert.is(hint(15), p + 1, 'a free below the hint lowers it');
    assert.is(x.alloc(15), a[2], 'still the lowest free slot');
    assert.is(x.free(a[7], 15), 0);
    assert.is(hint(15), p + 1, 'a free above leaves it');
    assert.is(x.alloc(15), a[7]);
    const big = x.alloc(39);
    assert.is(hint(39), 0, 'a page class keeps none');
    assert.is(x.check(), 0);
    u32[(256 + 15 * 32 + 20) >>> 2] = p + 6; // above the free slots on pages p+4 and p+5
    assert.is(x.check(), -105);
    u32[(256 + 15 * 32 + 20) >>> 2] = p + 3;
    u32[(256 + 39 * 32 + 20) >>> 2] = big >>> 12;
    assert.is(x.check(), -105);
    u32[(256 + 39 * 32 + 20) >>> 2] = 0;
    assert.is(x.check(), 0);
    for (const off of a) assert.is(x.free(off, 15), 0);
    assert.is(x.free(big, 39), 0);
    assert.is(hint(15), p);
    assert.ok(x.release() > 0, 'the runs go back; the hint now lies on no run of the class');
    assert.is(x.raw_free(r), 0);
    const c = x.alloc(15); // the next run starts 2 pages lower, with the old hint among its pages
    assert.is(c, r);
    assert.is(hint(15), r >>> 12, 'a new run sets it to its first page');
    assert.is(x.alloc(15), c + 2048);
    assert.is(x.check(), 0);
  });

  test(`${t} a run whose free bits were wiped from outside: alloc stays in the run, returns 0 and quarantines the arena; frees still go back`, () => {
    const { x, u32 } = arena(4 * MiB, shared);
    const c = 3; // 512 B: a small run of several pages
    const a = x.alloc(c);
    const b = x.alloc(c);
    assert.ok(a > 0 && b > a);
    const p = a >>> 12;
    const len = u32[(u32[W_MAP] >>> 2) + p] & 0xffff;
    assert.ok(len > 1, 'a run of several pages');
    // Every free bit of the run and of the pages after it cleared: the count still says free.
    const bits = u32[W_BITS] >>> 2;
    for (let w = p; w < p + len + 8; w++) u32[bits + w] = 0;
    assert.is(x.alloc(c), 0, 'nothing handed out, and the scan ended at the run');
    assert.is(u32[5] & FLAG_QUARANTINED, FLAG_QUARANTINED, 'the arena is quarantined');
    assert.is(x.check(), E_CHECK_RUN_FREE, 'check() names the broken invariant');
    assert.is(x.alloc(c), 0);
    assert.is(x.alloc(c + 1), 0, 'no class hands out from a quarantined arena');
    assert.is(x.free(b, c), 0, 'frees are still taken');
  });

  test(`${t} debug flag: a mutating call checks every invariant and the first failure is kept`, () => {
    const { x, mem } = arena(4 * MiB, shared, 1);
    const a = x.alloc(3);
    assert.ok(a > 0);
    assert.is(x.check(), 0);
    const st = new Uint8Array(mem.buffer, new Uint32Array(mem.buffer)[52]);
    st[(a >>> 7) + 1] = 9; // a stray state byte inside a buffer
    assert.ok(x.alloc(3) > 0, 'the call itself still happens');
    st[(a >>> 7) + 1] = 0;
    assert.is(x.check(), -103, 'the failure found by the alloc is still reported');
  });

  test(`${t} argument limits: huge trim depth, over-long batches, init over used memory`, () => {
    const { x } = arena(4 * MiB, shared);
    const s = x.raw_alloc(1);
    const a = x.alloc(0);
    assert.is(x.free(a, 0), 0);
    assert.is(x.trim(0, 0xffffffff), 0, 'a depth above the free count releases nothing');
    assert.is(x.class_stat(0, 4), 512);
    assert.is(x.free_batch(0, s, (1 << 24) + 1), -8);
    assert.is(x.alloc_batch(0, s, (1 << 24) + 1), -8);
    const used = new WebAssembly.Memory({ initial: 64, maximum: 64, shared });
    new Uint8Array(used.buffer)[100] = 1;
    assert.is(instantiate(used, shared, false).init(0, 1, 1), -6);
  });

  test(`${t} raw spans coalesce with their neighbours`, () => {
    const { x } = arena(4 * MiB, shared);
    const free0 = x.arena_stat(3);
    const a = x.raw_alloc(10), b = x.raw_alloc(20), c = x.raw_alloc(30);
    assert.is(x.arena_stat(4), 60);
    assert.is(x.raw_free(b), 0);
    assert.is(x.raw_free(b), -3, 'a raw span freed twice');
    assert.is(x.raw_free(a), 0);
    assert.is(x.raw_free(c), 0);
    assert.is(x.arena_stat(3), free0);
    assert.is(x.raw_alloc(free0), a, 'one span again, from the first data page');
    assert.is(x.check(), 0);
  });
}

test.run();
