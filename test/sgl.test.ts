// SGL: sizes and slab choice, every read and write method at buffer edges, lines, state, free,
// readers, and each bad input. Streams and handoffs are in sgl-streams.test.ts and handoff.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA, type SGL } from '../src/index.js';
import { inUse, pattern, throwsCode } from './helpers.js';

const mm = new MMSA({ name: 'sgl', arenaSize: 16 << 20, env: {} });
mm.init();
const small = new MMSA({ name: 'sgl-small', small: true, arenaSize: 4 << 20, env: {} });
small.init();

test('newSGL picks slabs as AIStore does and preallocates the immediate size', () => {
  const cases: [MMSA, number, number | undefined, number, number][] = [
    // mm, immediate, sbuf, expected buffer size, expected cap
    [mm, 0, undefined, 32768, 0],              // the MMSA's default size, nothing preallocated
    [mm, 1, undefined, 4096, 4096],
    [mm, 100, undefined, 4096, 4096],          // a page MMSA never goes below its 4 KiB class
    [mm, 4097, undefined, 8192, 8192],
    [mm, 131072, undefined, 131072, 131072],
    [mm, 256 << 10, undefined, 16384, 256 << 10], // above the largest: a sixteenth
    [mm, 1 << 20, undefined, 65536, 1 << 20],
    [mm, 2 << 20, undefined, 131072, 2 << 20],
    [mm, 10 << 20, undefined, 131072, 10 << 20],
    [mm, 1000, 128, 128, 1024],
    [mm, 0, 65536, 65536, 0],
    [small, 0, undefined, 1024, 0],
    [small, 100, undefined, 128, 128],
    [small, 4096, undefined, 4096, 4096],
    [small, 5000, undefined, 384, 5376],       // ceil(5000 / 16) = 313 -> 384 B x 14
    [small, 1 << 20, undefined, 4096, 1 << 20],
  ];
  for (const [m, imm, sbuf, size, cap] of cases) {
    const s = m.newSGL(imm, sbuf);
    assert.is(s.slab.size, size, `newSGL(${imm}, ${sbuf}) on ${m.name}: buffer size`);
    assert.is(s.cap, cap, `newSGL(${imm}, ${sbuf}) on ${m.name}: cap`);
    assert.is(s.len, 0);
    assert.is(s.size, 0);
    s.free();
  }
  assert.is(inUse(mm), 0);
  assert.is(inUse(small), 0);
});

test('newSGL refuses bad sizes and changes nothing', () => {
  const before = inUse(mm);
  throwsCode(() => mm.newSGL(-1), 'ERR_MEMSYS_INVALID_SIZE', 'immediateSize -1', 'non-negative integer');
  throwsCode(() => mm.newSGL(1.5), 'ERR_MEMSYS_INVALID_SIZE', 'immediateSize 1.5');
  throwsCode(() => mm.newSGL('10' as unknown as number), 'ERR_MEMSYS_INVALID_SIZE', 'immediateSize "10"');
  throwsCode(() => mm.newSGL(0, 1000), 'ERR_MEMSYS_INVALID_SIZE', 'size 1000', 'not a slab size');
  throwsCode(() => mm.newSGL(0, 256 << 10), 'ERR_MEMSYS_SIZE_TOO_LARGE', 'size 262144');
  throwsCode(() => mm.newSGL(0, 0), 'ERR_MEMSYS_INVALID_SIZE', 'size 0');
  const arenas = mm.stats().arenas;
  const host = new MMSA({ name: 'host-bound', memStats: () => ({ total: 8 * 2 ** 30, free: 4 * 2 ** 30 }), env: {} });
  host.init();
  throwsCode(() => host.newSGL(2 ** 50), 'ERR_MEMSYS_SIZE_TOO_LARGE', 'immediateSize 1125899906842624', 'more than this host\'s memory');
  assert.is(host.stats().arenas, 0, 'no arena was made for it');
  host.terminate();
  assert.is(mm.stats().arenas, arenas);
  assert.is(inUse(mm), before);
  const fresh = new MMSA({ name: 'not-init', env: {} });
  throwsCode(() => fresh.newSGL(), 'ERR_MEMSYS_STATE', 'not initialised');
});

test('writes of every size straddle buffers; reads in other sizes return the same bytes', () => {
  const data = pattern(20000, 7);
  for (const bsize of [128, 256, 4096]) {
    for (const wchunk of [1, 3, 127, 128, 129, 1000, 20000]) {
      const s = mm.newSGL(0, bsize);
      for (let i = 0; i < data.length; i += wchunk) assert.is(s.write(data.subarray(i, i + wchunk)), Math.min(wchunk, data.length - i));
      assert.is(s.size, data.length);
      assert.is(s.len, data.length);
      assert.is(s.cap, Math.ceil(data.length / bsize) * bsize, 'grew one buffer at a time, no further');
      assert.equal(s.readAll(), data);
      for (const rchunk of [1, 100, 128, 5000]) {
        s.rewind();
        const out = new Uint8Array(data.length);
        let off = 0;
        for (;;) {
          const n = s.read(out.subarray(off, off + rchunk));
          if (n === 0) break;
          off += n;
        }
        assert.is(off, data.length, `read all (bsize ${bsize}, write ${wchunk}, read ${rchunk})`);
        assert.equal(out, data);
        assert.is(s.len, 0);
      }
      s.free();
    }
  }
  assert.is(inUse(mm), 0);
});

test('write takes any ArrayBufferView or ArrayBuffer; empty writes are no-ops; bad chunks are typed errors', () => {
  const s = mm.newSGL(0, 128);
  assert.is(s.write(new Uint8Array(0)), 0);
  assert.is(s.cap, 0, 'an empty write does not grow');
  s.write(new Uint16Array([0x0201, 0x0403]));
  s.write(new Uint8Array([5, 6]).buffer);
  s.write(new DataView(new Uint8Array([7]).buffer));
  s.write(Buffer.from([8]));
  assert.equal([...s.readAll()], [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const bad of [null, undefined, 'str', 42, [1, 2], {}]) {
    throwsCode(() => s.write(bad as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG', 'chunk', 'must be a Uint8Array');
  }
  assert.is(s.size, 8, 'nothing written by the refused calls');
  s.free();
});

test('0-byte and 1-byte SGLs; writeByte, readByte and unreadByte', () => {
  const z = mm.newSGL(0, 128);
  assert.is(z.read(new Uint8Array(4)), 0);
  assert.is(z.readByte(), -1);
  assert.is(z.nextLine(), null);
  assert.equal(z.readAll(), new Uint8Array(0));
  assert.equal(z.bytes(), new Uint8Array(0));
  throwsCode(() => z.unreadByte(), 'ERR_MEMSYS_STATE', 'offset 0');
  z.free();

  const one = mm.newSGL(0, 128);
  one.writeByte(255);
  assert.is(one.size, 1);
  assert.is(one.cap, 128);
  assert.is(one.readByte(), 255);
  assert.is(one.readByte(), -1);
  one.unreadByte();
  assert.is(one.len, 1);
  assert.is(one.readByte(), 255);
  for (const bad of [256, -1, 1.5, '1', NaN]) throwsCode(() => one.writeByte(bad as number), 'ERR_MEMSYS_INVALID_ARG', `byte ${typeof bad === 'string' ? '"1"' : String(bad)}`, '0 … 255');
  assert.is(one.size, 1);
  one.free();

  // writeByte across buffer edges
  const s = mm.newSGL(0, 128);
  for (let i = 0; i < 1000; i++) s.writeByte(i & 255);
  assert.is(s.cap, 1024);
  for (let i = 0; i < 1000; i++) assert.is(s.readByte(), i & 255);
  s.free();
});

test('writeString encodes UTF-8 without splitting a character at a buffer edge', () => {
  const text = 'aé€😀'.repeat(200) + 'end';
  const want = new TextEncoder().encode(text);
  for (const lead of [0, 1, 2, 3, 125, 126, 127]) {
    const s = mm.newSGL(0, 128);
    s.write(new Uint8Array(lead).fill(120));
    let n = 0;
    for (const part of text.match(/[\s\S]{1,7}/gu)!) n += s.writeString(part); // many small writes: encodeInto path
    assert.is(n, want.length);
    assert.equal(s.readAll().subarray(lead), want, `lead ${lead}`);
    const big = mm.newSGL(0, 128);
    big.write(new Uint8Array(lead));
    assert.is(big.writeString(text), want.length); // one large write: encode-and-copy path
    assert.equal(big.readAll().subarray(lead), want);
    s.free();
    big.free();
  }
  const s = mm.newSGL(0, 128);
  assert.is(s.writeString(''), 0);
  assert.is(s.writeString('\ud800'), 3, 'a lone surrogate becomes U+FFFD');
  throwsCode(() => s.writeString(5 as unknown as string), 'ERR_MEMSYS_INVALID_ARG', 'string 5');
  s.free();
});

test('writeAt overwrites written bytes only', () => {
  const s = mm.newSGL(0, 128);
  s.write(new Uint8Array(300));
  s.writeAt(new Uint8Array(10).fill(9), 125);
  const all = s.readAll();
  assert.equal([...all.subarray(124, 136)], [0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0]);
  throwsCode(() => s.writeAt(new Uint8Array(2), 299), 'ERR_MEMSYS_INVALID_ARG', 'offset 299', 'within the 300 bytes');
  throwsCode(() => s.writeAt(new Uint8Array(1), -1), 'ERR_MEMSYS_INVALID_ARG', 'offset -1');
  throwsCode(() => s.writeAt(new Uint8Array(1), 1.5), 'ERR_MEMSYS_INVALID_ARG', 'offset 1.5');
  assert.is(s.size, 300);
  assert.is(s.cap, 384);
  s.free();
});

test('nextLine: lines across three buffers, empty lines, CRLF, a last line without newline, peeking', () => {
  const long = 'x'.repeat(300); // longer than two 128-byte buffers
  const s = mm.newSGL(0, 128);
  s.writeString(`first\n\n${long}\r\n\nü-line\nlast`);
  assert.is(s.nextLine(false), 'first', 'peek');
  assert.is(s.offset, 0);
  assert.is(s.nextLine(), 'first');
  assert.is(s.nextLine(), '');
  assert.is(s.nextLine(), long);
  assert.is(s.nextLine(), '');
  assert.is(s.nextLine(), 'ü-line');
  assert.is(s.nextLine(), 'last');
  assert.is(s.nextLine(), null);
  assert.is(s.len, 0);
  s.reset();
  s.writeString('\n\n');
  assert.is(s.nextLine(), '');
  assert.is(s.nextLine(), '');
  assert.is(s.nextLine(), null);
  s.free();
  // A line that ends exactly at a buffer edge, and one whose "\r" and "\n" sit in two buffers.
  const e = mm.newSGL(0, 128);
  e.writeString('a'.repeat(127) + '\n' + 'b'.repeat(126) + '\r\n' + 'c');
  assert.is(e.nextLine(), 'a'.repeat(127));
  assert.is(e.nextLine(), 'b'.repeat(126));
  assert.is(e.nextLine(), 'c');
  e.free();
});

test('bytes() is a view when the content lies in one buffer, a copy otherwise', () => {
  const s = mm.newSGL(0, 128);
  s.write(pattern(100));
  const v = s.bytes();
  assert.is(v.length, 100);
  v[0] ^= 0xff;
  assert.is(s.readAll()[0], v[0], 'a view of the first buffer');
  s.write(pattern(100));
  const c = s.bytes();
  assert.is(c.length, 200);
  c[0] ^= 0xff;
  assert.is.not(s.readAll()[0], c[0], 'a copy once it spans buffers');
  s.read(new Uint8Array(50));
  assert.is(s.bytes().length, 200, 'from offset 0 regardless of reads');
  s.free();
});

test('len, size, cap, offset; rewind and reset keep buffers; free gives them back, once', () => {
  const s = mm.newSGL(1000, 128);
  assert.is(s.cap, 1024);
  s.write(pattern(700));
  s.read(new Uint8Array(200));
  assert.is(s.len, 500);
  assert.is(s.size, 700);
  assert.is(s.offset, 200);
  s.rewind();
  assert.is(s.offset, 0);
  assert.is(s.len, 700);
  s.reset();
  assert.is(s.size, 0);
  assert.is(s.cap, 1024, 'reset keeps the buffers');
  assert.ok(inUse(mm) >= 8);
  assert.is(s.freed, false);
  s.free();
  assert.is(s.freed, true);
  assert.is(s.cap, 0);
  assert.is(inUse(mm), 0, 'every buffer back in its slab');
  s.free();
  assert.is(inUse(mm), 0, 'free is idempotent');
});

test('after free: every read ends, every write throws, readers end and cannot seek', async () => {
  const s = mm.newSGL(0, 128);
  s.write(pattern(500));
  const r = s.open();
  s.free();
  assert.is(s.read(new Uint8Array(10)), 0);
  assert.is(s.readByte(), -1);
  assert.is(s.nextLine(), null);
  assert.is(s.readAll().length, 0);
  assert.is(s.bytes().length, 0);
  assert.is(s.len, 0);
  for (const [name, fn] of [
    ['write', () => s.write(new Uint8Array(1))],
    ['writeByte', () => s.writeByte(1)],
    ['writeString', () => s.writeString('a')],
    ['writeAt', () => s.writeAt(new Uint8Array(1), 0)],
    ['readFrom', () => s.readFrom([new Uint8Array(1)])],
    ['toWritableStream', () => s.toWritableStream()],
    ['handoff', () => s.handoff()],
  ] as const) throwsCode(fn, 'ERR_MEMSYS_SGL_FREED', 'after free()', name);
  assert.is(r.read(new Uint8Array(10)), 0);
  assert.is(r.readByte(), -1);
  throwsCode(() => r.seek(0), 'ERR_MEMSYS_SGL_FREED', 'seek');
  const chunks: Uint8Array[] = [];
  for await (const c of s) chunks.push(c);
  assert.is(chunks.length, 0, 'iteration ends at once');
});

test('`using` frees the SGL at the end of its scope', () => {
  const before = inUse(mm);
  let kept: SGL;
  {
    using s = mm.newSGL(4096 * 3, 4096);
    s.write(pattern(10000));
    kept = s;
    assert.is(inUse(mm), before + 3);
  }
  assert.is(kept.freed, true);
  assert.is(inUse(mm), before);
});

test('open(): independent readers with seek from start, current and end; past the end reads nothing', () => {
  const data = pattern(1000, 3);
  const s = mm.newSGL(0, 128);
  s.write(data);
  const a = s.open();
  const b = a.open();
  const buf = new Uint8Array(300);
  assert.is(a.read(buf), 300);
  assert.equal(buf, data.subarray(0, 300));
  assert.is(b.offset, 0, 'readers do not share an offset');
  assert.is(s.offset, 0, 'nor move the SGL');
  assert.is(b.seek(990), 990);
  assert.is(b.read(buf), 10);
  assert.equal(buf.subarray(0, 10), data.subarray(990));
  assert.is(b.seek(-20, 'end'), 980);
  assert.is(b.readByte(), data[980]);
  assert.is(b.seek(5, 'current'), 986);
  assert.is(b.len, 14);
  assert.is(b.seek(5000), 5000, 'past the end is allowed');
  assert.is(b.len, 0);
  assert.is(b.read(buf), 0);
  assert.is(b.readByte(), -1);
  throwsCode(() => b.seek(-1), 'ERR_MEMSYS_INVALID_ARG', 'offset -1', 'before the start');
  throwsCode(() => b.seek(-2000, 'end'), 'ERR_MEMSYS_INVALID_ARG', 'offset -2000');
  throwsCode(() => b.seek(1.5), 'ERR_MEMSYS_INVALID_ARG', 'offset 1.5', 'integer');
  throwsCode(() => b.seek(0, 'middle' as 'start'), 'ERR_MEMSYS_INVALID_ARG', 'whence "middle"');
  assert.is(b.offset, 5000, 'refused seeks leave the offset');
  throwsCode(() => a.read(null as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG', 'into null');
  throwsCode(() => s.read('x' as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG', 'into "x"');
  s.free();
});

test('terminate() with SGLs still open: their free() is a no-op, not an error', () => {
  const m = new MMSA({ name: 'sgl-term', arenaSize: 1 << 20, env: {} });
  m.init();
  const s = m.newSGL(5000, 4096);
  s.write(pattern(5000));
  m.terminate();
  s.free();
  assert.is(s.freed, true);
});

test('debug mode: an SGL\'s buffers hold DEADBEEF once freed, and every invariant holds', () => {
  const m = new MMSA({ name: 'sgl-debug', debug: true, arenaSize: 1 << 20, env: {} });
  m.init();
  const s = m.newSGL(0, 4096);
  s.write(pattern(3000));
  const view = s.bytes(); // a view of the one buffer, kept past free (a user bug)
  s.free();
  // DEADBEEF, byte by byte
  assert.equal([...view.subarray(0, 8)], [0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef]);
  const again = m.newSGL(0, 4096);
  again.write(new Uint8Array(5000).fill(1));
  assert.equal(again.readAll(), new Uint8Array(5000).fill(1));
  again.free();
  assert.is(inUse(m), 0);
  m.terminate();
});

test.run();
