// The constants generated from assembly/ (`#abi`, scripts/abi.js) against a freshly built core,
// and docs/abi.md against them: the TypeScript and the contract may only say what the core does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import * as abi from '#abi';
import {
  ABI_VERSION, CHECK_MESSAGES, CLASS_SIZES, CSTAT_OUT, CSTAT_RUN_PAGES, CSTAT_SIZE, CSTAT_SLOTS_PER_RUN, CSTAT_TAKEN,
  E_ARG, E_CHECK_SLOT, E_CLASS, E_FORMAT, E_NOT_HELD, E_NOT_OUT, E_NOT_SLOT, E_OFFSET, E_TOO_SMALL, E_WRONG_CLASS,
  FLAG_CLOSED, GRANULE_SHIFT, H_BROKEN, H_DATA, H_FLAGS, H_LOCK, H_OWNERS, H_STATE, MAGIC, MAX_BATCH, NUM_CLASSES,
  NUM_SMALL, PAGE_SHIFT, PAGE_STEP, SMALL_RUN_PAGES, SMALL_STEP, STAT_ABI, STAT_PAGES, ST_OUT, W_MAGIC, W_OWNERS, W_STATE,
  WASM_PAGE_SHIFT,
} from '#abi';
import { checkMessage, coreModule, instantiate } from '../src/core/module.js';
import { MAX_SIZE, MAX_SMALL, classSize, fitClassOf } from '../src/sizes.js';

const values = abi as unknown as Record<string, unknown>;
const MiB = 1 << 20;
const log2 = (n: number) => 31 - Math.clz32(n);

function arena(bytes: number, shared: boolean) {
  const pages = bytes >>> WASM_PAGE_SHIFT;
  const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  const x = instantiate(mem, shared, false);
  assert.is(x.init(0, 1, 1), 0);
  return { x, u32: new Uint32Array(mem.buffer), u8: new Uint8Array(mem.buffer) };
}

for (const shared of [true, false]) {
  const t = `${shared ? 'threaded' : 'single-threaded'}:`;

  test(`${t} every global the core exports has its generated value`, () => {
    for (const debug of [false, true]) {
      const m = coreModule(shared, debug);
      const x = new WebAssembly.Instance(m, {
        env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared }) },
      }).exports as Record<string, WebAssembly.Global>;
      const globals = WebAssembly.Module.exports(m).filter((e) => e.kind === 'global').map((e) => e.name);
      assert.ok(globals.length >= 30, `${globals.length} exported globals`);
      for (const name of globals) assert.is(x[name].value, values[name], name);
    }
  });

  test(`${t} a fresh arena's header, class table and counters read as generated`, () => {
    const { x, u32, u8 } = arena(4 * MiB, shared);
    assert.is(x.arena_stat(STAT_ABI), ABI_VERSION);
    assert.is(u32[W_MAGIC], MAGIC);
    assert.is(x.arena_stat(STAT_PAGES), (4 * MiB) >>> PAGE_SHIFT);
    assert.ok(u32[W_OWNERS] > 0, 'the owner table is placed');
    assert.is(CLASS_SIZES.length, NUM_CLASSES);
    for (let c = 0; c < NUM_CLASSES; c++) {
      assert.is(x.class_stat(c, CSTAT_SIZE), CLASS_SIZES[c], `class ${c}`);
      assert.is(classSize(c), CLASS_SIZES[c], `sizes.ts, class ${c}`);
      const runPages = x.class_stat(c, CSTAT_RUN_PAGES);
      assert.is(runPages, c < NUM_SMALL ? SMALL_RUN_PAGES : CLASS_SIZES[c] / PAGE_STEP);
      assert.is(x.class_stat(c, CSTAT_SLOTS_PER_RUN), Math.floor((runPages << PAGE_SHIFT) / CLASS_SIZES[c]));
    }
    const off = x.alloc(3);
    assert.ok(off > 0);
    assert.is(u8[u32[W_STATE] + (off >>> GRANULE_SHIFT)], (3 << 2) | ST_OUT, 'the state byte, by W_STATE');
    assert.is(x.free(off, 3), 0);
    for (let i = 0; i < 5; i++) assert.is(x.free(x.alloc(3), 3), 0);
    assert.is(x.class_stat(3, CSTAT_TAKEN), 6, 'slots the core handed out, ever');
    assert.is(x.class_stat(3, CSTAT_OUT), 0);
  });

  test(`${t} bad calls return the generated error codes`, () => {
    const { x, u8, u32 } = arena(4 * MiB, shared);
    const off = x.alloc(5);
    assert.is(x.free(off, NUM_CLASSES), E_CLASS);
    assert.is(x.free(off + 1, 5), E_OFFSET);
    assert.is(x.free(off + (1 << GRANULE_SHIFT), 5), E_NOT_SLOT);
    assert.is(x.free(off, 6), E_WRONG_CLASS);
    assert.is(x.free(off, 5), 0);
    assert.is(x.free(off, 5), E_NOT_OUT);
    assert.is(x.init(0, 1, 1), E_FORMAT);
    assert.is(x.set_realm(0), E_ARG);
    assert.is(x.recover(77), E_NOT_HELD);
    const tiny = new WebAssembly.Memory({ initial: 2, maximum: 2, shared });
    assert.is(instantiate(tiny, shared, false).init(0, 1, 1), E_TOO_SMALL);
    // A host writing another class into a state byte breaks an invariant the check names.
    const bad = x.alloc(0);
    u8[u32[W_STATE] + (bad >>> GRANULE_SHIFT)] = (1 << 2) | ST_OUT;
    assert.is(x.check(), E_CHECK_SLOT);
    assert.is(checkMessage(E_CHECK_SLOT), CHECK_MESSAGES[E_CHECK_SLOT]);
  });
}

test('check messages: one per E_CHECK_* code, and checkMessage reads them', () => {
  const codes = Object.keys(values).filter((k) => k.startsWith('E_CHECK_')).map((k) => values[k] as number);
  assert.is(codes.length, 8);
  assert.equal(Object.keys(CHECK_MESSAGES).map(Number).sort((a, b) => b - a), codes.slice().sort((a, b) => b - a));
  for (const c of codes) {
    assert.ok(CHECK_MESSAGES[c].length > 10);
    assert.is(checkMessage(c), CHECK_MESSAGES[c]);
  }
  assert.is(checkMessage(-999), 'unknown core error -999');
});

test('sizes.ts fits sizes to the generated classes', () => {
  assert.is(MAX_SMALL, CLASS_SIZES[NUM_SMALL - 1]);
  assert.is(MAX_SIZE, CLASS_SIZES[NUM_CLASSES - 1]);
  for (const small of [true, false]) {
    let c = 0;
    for (let n = 0; n <= MAX_SIZE; n++) {
      // The smallest class that holds n, among the small ones up to 4 KiB (the page ones above, and
      // at 4 KiB itself for a page MMSA).
      const page = n > MAX_SMALL || (n === MAX_SMALL && !small);
      if (page && c < NUM_SMALL) c = NUM_SMALL;
      while (CLASS_SIZES[c] < n) c++;
      if (fitClassOf(n, small) !== c) assert.unreachable(`fitClassOf(${n}, ${small}) is ${fitClassOf(n, small)}, not ${c}`);
    }
  }
});

// ---- docs/abi.md ----------------------------------------------------------------------------------

const doc = readFileSync(new URL('../docs/abi.md', import.meta.url), 'utf8');

test('docs/abi.md: every constant it names with a value has that value', () => {
  const named = [...doc.matchAll(/`([A-Z][A-Z0-9_]*)`\s+\(?(-?(?:0x[0-9A-Fa-f]+|\d+))\)?/g)];
  assert.ok(named.length >= 30, `${named.length} constants named`);
  for (const [, name, value] of named) {
    assert.ok(name in values, `${name} is not generated from assembly/`);
    assert.is(values[name], Number(value), name);
  }
  // The other direction: the page lists every global the core exports, with its value.
  const listed = new Map(named.map(([, name, value]) => [name, Number(value)]));
  for (const e of WebAssembly.Module.exports(coreModule(false, false))) {
    if (e.kind === 'global') assert.is(listed.get(e.name), values[e.name], `${e.name} in docs/abi.md`);
  }
  for (const [, code, name] of doc.matchAll(/(-\d+) \((E_[A-Z_]+)\)/g)) assert.is(values[name], Number(code), name);
  for (const [, st, name] of doc.matchAll(/\b(\d) \(?(FREE|OUT|LIVE)\)?/g)) assert.is(values[`ST_${name}`], Number(st), name);
});

test('docs/abi.md: ABI version, magic, check codes', () => {
  const versions = [...doc.matchAll(/ABI (?:\(version |version \(?)(\d+)/g)].map((m) => Number(m[1]));
  assert.ok(versions.length >= 3);
  for (const v of versions) assert.is(v, ABI_VERSION);
  assert.is(Number(/magic (0x[0-9A-Fa-f]+)/.exec(doc)![1]), MAGIC);
  const rows = [...doc.matchAll(/^\| (-1\d\d) \| (.*) \|$/gm)];
  assert.equal(rows.map((r) => Number(r[1])).sort(), Object.keys(CHECK_MESSAGES).map(Number).sort());
  for (const [, code, text] of rows) assert.ok(text.startsWith(CHECK_MESSAGES[Number(code)]), `${code}: "${text}"`);
});

test('docs/abi.md: header offsets, page sizes and the class table', () => {
  // Each generated header offset, as the layout block of the page names it.
  const labels: Record<string, string> = {
    H_MAGIC: 'magic', H_ABI: 'ABI version', H_PAGES: 'pages \\(total', H_DATA: 'first data page', H_LOCK: 'lock',
    H_FLAGS: 'flags', H_OWNER: 'owner', H_ARENA: 'arena id', H_FREE_PAGES: 'free pages', H_RAW_PAGES: 'raw pages',
    H_BUCKET_MASK: 'free-span bucket mask', H_BUCKET_HEADS: 'free-span list heads', H_MAP: 'page map',
    H_NEXT: 'page next', H_PREV: 'page prev', H_RUN_FREE: 'run free', H_STATE: 'slot state', H_BITS: 'free bits',
    H_BROKEN: 'broken', H_CLEAN_PAGES: 'clean pages', H_OWNERS: 'owners',
  };
  const layout = /## Memory layout[\s\S]*?```([\s\S]*?)```/.exec(doc)![1];
  for (const name of Object.keys(values).filter((k) => k.startsWith('H_'))) {
    assert.ok(labels[name], `${name}: give it a line in docs/abi.md's layout and a label here`);
    assert.match(layout, new RegExp(`(^|\\s)${values[name]} ${labels[name]}\\b`, 'm'), name);
  }
  for (const phrase of [
    `the \`i32\` at byte ${H_LOCK}`, `bit ${log2(FLAG_CLOSED)} of the \`u32\` at byte ${H_FLAGS}`,
    `header at ${H_OWNERS}`, `load_u32(${H_STATE})`, `header word at byte ${H_BROKEN}`, `header word ${H_DATA}`,
    `above 2^${log2(MAX_BATCH)} (\`MAX_BATCH\`)`, `"page" means ${(1 << PAGE_SHIFT) >> 10} KiB`,
    `(${(1 << WASM_PAGE_SHIFT) >> 10} KiB wasm pages)`, `${1 << GRANULE_SHIFT}-byte granule`,
    `Class \`c < ${NUM_SMALL}\`: size \`${SMALL_STEP}·(c+1)\`, runs of ${SMALL_RUN_PAGES} pages`,
    `Class \`c >= ${NUM_SMALL}\`: size \`${PAGE_STEP}·(c-${NUM_SMALL - 1})\``,
  ]) assert.ok(doc.includes(phrase), `docs/abi.md says "${phrase}"`);
  const { x } = arena(4 * MiB, false);
  const table = [...doc.matchAll(/^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|\s+(\d+)\s+(\d+) KiB\s+(\d+)$/gm)];
  assert.is(table.length * 2, NUM_CLASSES);
  for (const [, c, size, slots, tail, pc, kib, pages] of table.map((r) => r.map(Number))) {
    assert.is(size, CLASS_SIZES[c], `class ${c}`);
    assert.is(slots, x.class_stat(c, CSTAT_SLOTS_PER_RUN), `class ${c} slots`);
    assert.is(tail, (x.class_stat(c, CSTAT_RUN_PAGES) << PAGE_SHIFT) - slots * size, `class ${c} tail`);
    assert.is(kib * 1024, CLASS_SIZES[pc], `class ${pc}`);
    assert.is(pages, x.class_stat(pc, CSTAT_RUN_PAGES), `class ${pc} run pages`);
  }
});

test.run();
