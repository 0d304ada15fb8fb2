// docs/abi.md against the modules themselves: what each build imports and exports (read from the
// binary, signatures included, since the JS API does not reflect them), what a call before init
// does, what init refuses, and how the TypeScript refuses an arena of another ABI version.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ABI_VERSION, E_ARG, E_FORMAT, W_ABI } from '#abi';
import { MMSA } from '../src/index.js';
import { throwsCode } from './helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BUILDS = ['memsys.wasm', 'memsys.st.wasm', 'memsys.debug.wasm', 'memsys.st.debug.wasm'];
const doc = readFileSync(`${ROOT}docs/abi.md`, 'utf8');

// ---- a reader of the sections the contract speaks of -------------------------------------------

interface Shape {
  imports: { module: string; name: string; kind: number; shared?: boolean; min?: number; max?: number }[];
  functions: Map<string, string>;     // exported function → "(i32 i32) -> i32"
  globals: { name: string; type: string; mutable: boolean }[]; // exported globals
  mutableGlobals: number;             // all globals, exported or not
  sections: Set<number>;              // ids present (4 table, 8 start, 9 element, 11 data)
  tableEntries: number;
  elemEntries: number;
}

const VAL: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64' };

function shape(bytes: Uint8Array): Shape {
  let p = 8;
  const u = (): number => { let r = 0, s = 0, b: number; do { b = bytes[p++]; r += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80); return r; };
  const name = (): string => { const n = u(); const t = new TextDecoder().decode(bytes.subarray(p, p + n)); p += n; return t; };
  const limits = (): { shared: boolean; min: number; max?: number } => {
    const f = bytes[p++];
    const min = u();
    return { shared: (f & 2) !== 0, min, max: f & 1 ? u() : undefined };
  };
  const skipInit = (): void => { while (bytes[p++] !== 0x0b); };
  const types: string[] = [];
  const funcTypes: number[] = [];
  const s: Shape = { imports: [], functions: new Map(), globals: [], mutableGlobals: 0, sections: new Set(), tableEntries: 0, elemEntries: 0 };
  const globalTypes: { type: string; mutable: boolean }[] = [];
  let importedFuncs = 0;
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u();
    const end = p + size;
    s.sections.add(id);
    if (id === 1) {
      for (let n = u(); n > 0; n--) {
        p++; // 0x60
        const params = Array.from({ length: u() }, () => VAL[bytes[p++]]);
        const results = Array.from({ length: u() }, () => VAL[bytes[p++]]);
        types.push(`(${params.join(' ')}) -> ${results.join(' ') || '()'}`);
      }
    } else if (id === 2) {
      for (let n = u(); n > 0; n--) {
        const module = name(), field = name(), kind = bytes[p++];
        if (kind === 0) { u(); importedFuncs++; s.imports.push({ module, name: field, kind }); } else if (kind === 2) s.imports.push({ module, name: field, kind, ...limits() });
        else throw new Error(`import kind ${kind}`);
      }
    } else if (id === 3) {
      for (let n = u(); n > 0; n--) funcTypes.push(u());
    } else if (id === 4) {
      for (let n = u(); n > 0; n--) { p++; s.tableEntries += limits().min; }
    } else if (id === 6) {
      for (let n = u(); n > 0; n--) {
        const g = { type: VAL[bytes[p++]], mutable: bytes[p++] === 1 };
        if (g.mutable) s.mutableGlobals++;
        globalTypes.push(g);
        skipInit();
      }
    } else if (id === 7) {
      for (let n = u(); n > 0; n--) {
        const field = name(), kind = bytes[p++], index = u();
        if (kind === 0) s.functions.set(field, types[funcTypes[index - importedFuncs]]);
        if (kind === 3) s.globals.push({ name: field, ...globalTypes[index] });
      }
    } else if (id === 9) {
      for (let n = u(); n > 0; n--) {
        const flags = u();
        if (flags !== 0) throw new Error(`element segment flags ${flags}`);
        skipInit();
        const k = u();
        s.elemEntries += k;
        for (let i = 0; i < k; i++) u();
      }
    }
    p = end;
  }
  return s;
}

// The exports table of docs/abi.md: `name(args)` → its wasm signature.
function documented(): Map<string, string> {
  const rows = new Map<string, string>();
  const table = doc.slice(doc.indexOf('## Exports'), doc.indexOf('\n\n', doc.indexOf('| export |')));
  for (const m of table.matchAll(/^\| `(\w+)\(([^)]*)\)` \| `([^`]+)` \|/gm)) rows.set(m[1], m[3]);
  return rows;
}

test('the reader reads a module it knows (it can fail)', () => {
  // (module (import "env" "memory" (memory 1 2)) (func (export "f") (param i32) (result f64) f64.const 0))
  const m = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 124, 2, 16, 1, 3, 101, 110, 118, 6, 109, 101, 109, 111, 114, 121, 2, 1, 1, 2,
    3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 13, 1, 11, 0, 68, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
  new WebAssembly.Module(m); // a valid module
  const s = shape(m);
  assert.equal([...s.functions], [['f', '(i32) -> f64']]);
  assert.equal(s.imports, [{ module: 'env', name: 'memory', kind: 2, shared: false, min: 1, max: 2 }]);
  assert.ok(documented().size >= 20, 'the doc table was read');
});

for (const file of BUILDS) {
  test(`${file}: imports, exports and sections are what docs/abi.md says`, () => {
    const s = shape(readFileSync(`${ROOT}build/${file}`));
    const threaded = !file.includes('.st');
    const debug = file.includes('debug');
    assert.equal(s.imports, [threaded
      ? { module: 'env', name: 'memory', kind: 2, shared: true, min: 1, max: 65536 }
      : { module: 'env', name: 'memory', kind: 2, shared: false, min: 1, max: undefined }], 'one import, the memory');
    assert.equal([...s.functions].sort(), [...documented()].sort(), 'every export with its signature, as the doc\'s table');
    const count = /Besides the (\d+) functions/.exec(doc)?.[1];
    assert.is(Number(count), s.functions.size, 'the count the doc gives');
    assert.ok(s.globals.every((g) => g.type === 'i32' && !g.mutable), 'exported globals are immutable i32s');
    assert.is(s.mutableGlobals, 1, 'one mutable global (the realm tag)');
    for (const id of [8, 11]) assert.not.ok(s.sections.has(id), `no section ${id} (start, data)`);
    if (debug) {
      // AssemblyScript's unoptimised builds keep an empty function table and element segment.
      assert.ok(s.sections.has(4) && s.sections.has(9), 'a table and an element section');
      assert.is(s.elemEntries, 0, 'the element segment is empty');
      assert.match(doc, /debug builds carry an empty function\s+table and an empty element segment/);
    } else {
      assert.not.ok(s.sections.has(4) || s.sections.has(9), 'no table, no element section');
    }
  });
}

// ---- before init, and what init refuses ---------------------------------------------------------

const PRE_INIT: [string, number[], number][] = [
  ['check', [], E_FORMAT], ['alloc', [0], 0], ['alloc_batch', [0, 65536, 4], E_FORMAT], ['free', [65536, 0], E_FORMAT],
  ['free_batch', [0, 65536, 1], E_FORMAT], ['validate', [65536, 0], E_FORMAT], ['trim', [0, 0], E_FORMAT],
  ['release', [], E_FORMAT], ['close', [], E_FORMAT], ['reopen', [5], E_FORMAT], ['raw_alloc', [1], 0],
  ['raw_free', [65536], E_FORMAT], ['scavenge', [65536, 4], E_FORMAT], ['scavenged', [65536], E_FORMAT],
  ['class_stat', [0, 3], -1], ['arena_stat', [3], -1], ['recover', [7], E_FORMAT], ['reclaim', [7], E_FORMAT],
  ['held', [7], -1], ['attach', [], E_FORMAT],
];

function fresh(file: string, pages = 4): { x: Record<string, (...a: number[]) => number>; u8: Uint8Array } {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: !file.includes('.st') });
  const x = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(`${ROOT}build/${file}`)), { env: { memory } }).exports;
  return { x: x as unknown as Record<string, (...a: number[]) => number>, u8: new Uint8Array(memory.buffer) };
}

for (const file of ['memsys.wasm', 'memsys.st.wasm']) {
  test(`${file}: before init every call refuses and writes nothing; init refuses other flags and used tables`, () => {
    const documentedNames = new Set(documented().keys());
    for (const [name, args, want] of PRE_INIT) {
      assert.ok(documentedNames.has(name), name);
      const { x, u8 } = fresh(file);
      assert.is(x[name](...args), want, `${name} before init`);
      assert.ok(u8.every((b) => b === 0), `${name} wrote nothing`);
    }
    assert.is(PRE_INIT.length + 2, documentedNames.size, 'every export but init and set_realm is in the list');
    assert.match(doc, /Before `init`/);
    for (const flags of [2, 4, 8, 3]) {
      const { x, u8 } = fresh(file);
      assert.is(x.init(flags, 1, 1), E_ARG, `init with flags ${flags}`);
      assert.ok(u8.every((b) => b === 0));
    }
    // A stray byte in the tables (past the header page, before the first data page) is a used
    // memory; one in the data pages is not the core's business.
    const a = fresh(file);
    a.u8[4096 + 700] = 1;
    assert.is(a.x.init(0, 1, 1), E_FORMAT, 'a byte in the tables');
    const b = fresh(file);
    b.u8[4 * 65536 - 1] = 1;
    assert.is(b.x.init(0, 1, 1), 0, 'a byte in the last data page');
    assert.is(b.x.check(), 0);
    assert.is(b.x.attach(), 0);
  });
}

// ---- the lock: which calls spin, which answer at once ------------------------------------------

test('memsys.wasm: with the lock held by another realm, the calls docs/abi.md says take it return E_BUSY; the early returns and the reads answer', () => {
  const E_BUSY = -9, E_CLASS = -1, E_OFFSET = -2;
  const { x, u8 } = fresh('memsys.wasm', 8);
  assert.is(x.init(0, 1, 1), 0);
  assert.is(x.set_realm(5), 0);
  const held = x.alloc(3) >>> 0;
  const scratch = x.raw_alloc(1) >>> 0;
  const lock = new Int32Array(u8.buffer, 16, 1);
  Atomics.store(lock, 0, 33); // a realm not known dead holds it
  const before = u8.slice();
  const spins: [string, () => number, number][] = [
    ['alloc', () => x.alloc(0), 0], ['alloc_batch', () => x.alloc_batch(0, scratch, 4), E_BUSY],
    ['free', () => x.free(held, 3), E_BUSY], ['free_batch', () => x.free_batch(3, scratch, 1), E_BUSY],
    ['trim', () => x.trim(3, 0), E_BUSY], ['release', () => x.release(), E_BUSY], ['close', () => x.close(), E_BUSY],
    ['reopen', () => x.reopen(9), E_BUSY], ['raw_alloc', () => x.raw_alloc(1), 0], ['raw_free', () => x.raw_free(scratch), E_BUSY],
    ['scavenge', () => x.scavenge(scratch, 4), E_BUSY], ['scavenged', () => x.scavenged(scratch), E_BUSY],
    ['reclaim', () => x.reclaim(7), E_BUSY], ['check', () => x.check(), E_BUSY],
  ];
  const lockText = doc.slice(doc.indexOf('## Locking'), doc.indexOf('## Invariant checks'));
  for (const [name, call, want] of spins) {
    assert.match(lockText, `\`${name}\``, `${name} is named in the doc's list`);
    assert.is(call(), want, `${name} with the lock held`);
  }
  const early: [string, () => number, number][] = [
    ['alloc (bad class)', () => x.alloc(64), 0], ['alloc_batch (bad class)', () => x.alloc_batch(64, scratch, 1), E_CLASS],
    ['free_batch (bad array)', () => x.free_batch(3, 1, 1), -8], ['trim (bad class)', () => x.trim(64, 0), E_CLASS],
    ['raw_alloc (n 0)', () => x.raw_alloc(0), 0], ['raw_free (unaligned)', () => x.raw_free(scratch + 1), E_OFFSET],
    ['scavenged (unaligned)', () => x.scavenged(scratch + 1), E_OFFSET], ['reclaim (tag 0)', () => x.reclaim(0), -8],
    ['recover (own tag)', () => x.recover(5), -8], ['recover (not the holder)', () => x.recover(7), -10],
    ['validate', () => x.validate(held, 3), 2], ['held', () => x.held(7), 0], ['attach', () => x.attach(), 0],
    ['class_stat', () => x.class_stat(3, 5), 1], ['arena_stat (lock)', () => x.arena_stat(9), 33],
  ];
  // Each answers with its own result, not E_BUSY: it did not wait for the lock.
  for (const [name, call, want] of early) assert.is(call(), want, name);
  assert.ok(u8.every((b, i) => b === before[i]), 'nothing changed while the lock was held');
  assert.is(x.recover(33), 0, 'taken over from the holder, consistent');
  assert.is(x.free(held, 3), 0);
  assert.is(x.check(), 0);
});

// ---- the TypeScript refuses an arena of another ABI version ----------------------------------------

test('an arena of another ABI version: attach and a posted buffer are refused naming both versions; an announcement is refused without a throw', async () => {
  const mm = new MMSA({ name: 'abi', arenaSize: 1 << 20, env: {}, housekeeping: false });
  mm.init();
  const buf = mm.alloc();
  const d = mm.share();
  const words = new Uint32Array(d.arenas[0].buffer, 0, 4);
  const other = ABI_VERSION + 1;
  Atomics.store(words, W_ABI, other); // as a realm running another memsys would have made it
  throwsCode(() => MMSA.attach(d), 'ERR_MEMSYS_ABI', `ABI version ${other}`, `ABI version ${ABI_VERSION}`);
  // A realm that knows none of the pool's arenas yet: it asks for them (hello), and meets the
  // arena first by a posted buffer.
  const late = MMSA.attach({ ...d, arenas: [] });
  const refused: { code: string; id: number; message: string }[] = [];
  late.addEventListener('arena-refused', (ev) => refused.push((ev as unknown as { detail: { code: string; id: number; message: string } }).detail));
  const posted = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength); // as it arrives by postMessage
  throwsCode(() => late.free(posted), 'ERR_MEMSYS_ABI', `ABI version ${other}`);
  for (let i = 0; i < 200 && refused.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.is(refused.length, 1, 'the answer to its hello was refused, and said so');
  assert.is(refused[0].code, 'ERR_MEMSYS_ABI');
  assert.is(refused[0].id, 1, 'the arena named');
  Atomics.store(words, W_ABI, ABI_VERSION);
  mm.free(buf);
  mm.check();
  late.terminate();
  mm.terminate();
});

test.run();
