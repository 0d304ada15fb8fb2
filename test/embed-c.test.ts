// The core embedded in C: include/memsys.h against the module and assembly/ (always), and a C host
// built from wasm2c's translation of build/memsys.st.wasm (test/embed/host.c), which must run
// its checks and its randomized model to the end. Without wasm2c or a C compiler the C part is
// skipped, loudly; with CI set it fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as abi from '#abi';
import { E_TOO_SMALL, STAT_DATA_PAGE } from '#abi';
import { coreModule, instantiate } from '../src/core/module.js';
import { buildHost, root, toolchain, wasm2cVersion } from '../scripts/embed.js';
import { needs } from './helpers.js';

const values = abi as unknown as Record<string, number>;
const header = readFileSync(join(root, 'include', 'memsys.h'), 'utf8');
const embedding = readFileSync(join(root, 'docs', 'embedding.md'), 'utf8');

// Every `MEMSYS_NAME = value` enumerator of the header.
const declared = new Map<string, number>();
for (const [, name, value] of header.matchAll(/\bMEMSYS_([A-Z][A-Z0-9_]*)\s*=\s*(-?(?:0x[0-9A-Fa-f]+|\d+))\b/g)) {
  assert.not.ok(declared.has(name), `MEMSYS_${name} is declared twice`);
  declared.set(name, Number(value));
}
// Constants the header adds to the generated ones; each is checked below.
const OWN = ['META_BYTES_PER_PAGE', 'MIN_DATA_PAGES', 'MIN_WASM_PAGES', 'WASM2C_MAX_PAGES'];
const generated = Object.keys(values).filter((k) => typeof values[k] === 'number' && !k.startsWith('W_'));

test('include/memsys.h: every constant generated from assembly/ has its value, and nothing else is declared', () => {
  assert.ok(generated.length >= 60, `${generated.length} constants`);
  for (const name of generated) assert.is(declared.get(name), values[name], `MEMSYS_${name}`);
  for (const name of declared.keys()) assert.ok(name in values || OWN.includes(name), `MEMSYS_${name} is neither generated nor checked here`);
});

test('include/memsys.h: every global the module exports, with the value the module gives it', () => {
  for (const [shared, debug] of [[false, false], [true, false], [false, true], [true, true]]) {
    const m = coreModule(shared, debug);
    const x = new WebAssembly.Instance(m, {
      env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared }) },
    }).exports as Record<string, WebAssembly.Global>;
    const globals = WebAssembly.Module.exports(m).filter((e) => e.kind === 'global');
    assert.is(globals.length, 31);
    for (const { name } of globals) assert.is(declared.get(name), x[name].value, `MEMSYS_${name}`);
  }
});

test('include/memsys.h: a wrapper and a table row for each of the 22 exported functions', () => {
  const fns = WebAssembly.Module.exports(coreModule(false, false)).filter((e) => e.kind === 'function').map((e) => e.name);
  assert.is(fns.length, 22);
  for (const f of fns) {
    assert.match(header, new RegExp(`static inline [a-z0-9_]+ \\*?memsys_${f}\\(memsys_instance_t \\*x[,)]`), `wrapper memsys_${f}`);
    assert.match(header, new RegExp(`^ \\*   ${f} +[a-z0-9]+ Z_memsys_stZ_${f}\\(inst`, 'm'), `table row for ${f}`);
  }
});

test("include/memsys.h: its own constants say what init does", () => {
  const min = declared.get('MIN_WASM_PAGES')!, meta = declared.get('META_BYTES_PER_PAGE')!, minData = declared.get('MIN_DATA_PAGES')!;
  assert.is(declared.get('WASM2C_MAX_PAGES'), 65535); // wasm_rt_memory_t's uint32_t byte size
  for (const wasmPages of [min - 1, min, min + 1, 4, 16, 17, 64, 100, 256]) {
    const memory = new WebAssembly.Memory({ initial: wasmPages, maximum: wasmPages });
    const x = instantiate(memory, false, false);
    const pages = wasmPages * 16;
    // As memsys_data_page() and memsys_arena_fits() compute it.
    const data = Math.ceil((4096 + meta * pages) / 4096);
    const fits = data + minData <= pages;
    assert.is(fits, wasmPages >= min, `${wasmPages} pages`);
    assert.is(x.init(0, 1, 1), fits ? 0 : E_TOO_SMALL, `${wasmPages} pages`);
    if (fits) assert.is(x.arena_stat(STAT_DATA_PAGE), data, `data page at ${wasmPages} pages`);
  }
});

const tc = toolchain();
needs('the C embedding suite (wasm2c + cc)', tc.missing === undefined, tc.missing ?? '', () => {
  const t = tc as Exclude<typeof tc, { missing: string }>;
  const dir = mkdtempSync(join(tmpdir(), 'memsys-embed-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));

  test('a C host of wasm2c\'s single-threaded core passes every check and a 300 000-operation model', () => {
    const host = buildHost(t, {
      dir, out: join(dir, 'host'), sources: [join(root, 'test', 'embed', 'host.c')],
      modules: [{ name: 'memsys_st', wasm: join(root, 'build', 'memsys.st.wasm') }],
    });
    for (const seed of [1, 20260]) {
      const r = spawnSync(host, [String(seed), '300000'], { encoding: 'utf8', timeout: 60_000 });
      assert.is(r.status, 0, `seed ${seed}: exit ${r.status} ${r.signal ?? ''}\n${r.stderr}${r.stdout}`);
      const model = /^model: (\d+) operations, seed (\d+)/m.exec(r.stdout);
      assert.ok(model && Number(model[1]) >= 200_000 && Number(model[2]) === seed, r.stdout);
      assert.match(r.stdout, /^memsys embed-c: all \d+ checks passed$/m);
    }
  });

  test("docs/embedding.md's program builds as the page says and prints what the page shows", () => {
    const m = /<!-- main\.c:[^\n]*-->\n```c\n([\s\S]*?)```\n\nIt prints:\n\n```text\n([\s\S]*?)```/.exec(embedding);
    assert.ok(m, 'the program and its output in docs/embedding.md');
    writeFileSync(join(dir, 'main.c'), m[1]);
    const main = buildHost(t, {
      dir, out: join(dir, 'main'), sources: [join(dir, 'main.c')],
      modules: [{ name: 'memsys_st', wasm: join(root, 'build', 'memsys.st.wasm') }],
    });
    const r = spawnSync(main, { encoding: 'utf8', timeout: 20_000 });
    assert.is(r.status, 0, r.stderr);
    assert.fixture(r.stdout, m[2]);
  });

  test('docs/embedding.md quotes what this wasm2c says of the threaded build', () => {
    const r = spawnSync(t.wasm2c, [join(root, 'build', 'memsys.wasm'), '-o', join(dir, 'threaded.c')], { encoding: 'utf8' });
    if (r.status === 0) {
      console.warn(`\n(wasm2c ${wasm2cVersion(t)} translates the threaded build; docs/embedding.md describes 1.0.32, which refuses it)\n`);
      return;
    }
    // wabt colours its messages where FORCE_COLOR is set (as under the test runner).
    const message = r.stderr.replace(/\x1b\[[0-9;]*m/g, '').trim().split('\n')[0].replace(/^\d+: /, '');
    assert.ok(embedding.includes(message), `docs/embedding.md lacks "${message}"`);
  });
});

test.run();
