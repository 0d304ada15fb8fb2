// Loading the core: loadCore()'s options and the compiled module a share descriptor carries.
// (The fetched path runs in Chromium, in browser.test.ts, where each page is a fresh realm.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MMSA, loadCore } from '../src/index.js';
import { rejectsCode, throwsCode } from './helpers.js';

// The smallest valid module: magic and version, nothing else.
const EMPTY = new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));

test('loadCore() compiles each module once, ahead of the first MMSA, even when called twice at once', async () => {
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/load-core.ts', import.meta.url).href },
  });
  const steps = await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
  await w.terminate();
  assert.equal(steps, {
    'two loadCore at once': { compile: 2, module: 0 },   // the release pair, not four
    'loadCore again': { compile: 2, module: 0 },
    'loadCore debug': { compile: 4, module: 0 },         // and the debug pair
    'an MMSA': { compile: 4, module: 0 },                // no synchronous compile left to do
  });
});

test('loadCore() refuses bad options, naming the value and the rule', async () => {
  await rejectsCode(loadCore(null as never), 'ERR_MEMSYS_INVALID_ARG', 'options null', 'must be an object');
  await rejectsCode(loadCore({ debug: 'yes' as never }), 'ERR_MEMSYS_INVALID_ARG', 'option debug "yes"', 'boolean');
  await rejectsCode(loadCore({ base: 42 as never }), 'ERR_MEMSYS_INVALID_ARG', 'option base 42', 'string or a URL');
  await rejectsCode(loadCore({ base: 'not a url' }), 'ERR_MEMSYS_INVALID_ARG', '"not a url"', 'is not a URL');
  await rejectsCode(loadCore({ base: 'http://127.0.0.1:9/wasm' }), 'ERR_MEMSYS_INVALID_ARG', 'http://127.0.0.1:9/wasm', 'end it with "/"');
});

test('a share descriptor carries the compiled core; attach refuses one that is not a memsys core', () => {
  const mm = new MMSA({ name: 'carrier', arenaSize: 1 << 20, minFree: 0, housekeeping: false });
  mm.init();
  const d = mm.share();
  assert.ok(d.core instanceof WebAssembly.Module);
  assert.ok(WebAssembly.Module.exports(d.core!).some((e) => e.name === 'alloc_batch'));
  throwsCode(() => MMSA.attach({ ...d, core: {} as never }), 'ERR_MEMSYS_DESCRIPTOR', 'core Object', 'not a WebAssembly.Module');
  throwsCode(() => MMSA.attach({ ...d, core: EMPTY }), 'ERR_MEMSYS_DESCRIPTOR', 'not a memsys core for shared memories');
  // The single-threaded build has the same imports and exports; only its memory is not shared.
  const st = new WebAssembly.Module(readFileSync(new URL('../build/memsys.st.wasm', import.meta.url)));
  throwsCode(() => MMSA.attach({ ...d, core: st }), 'ERR_MEMSYS_DESCRIPTOR', 'not a memsys core for shared memories');
  throwsCode(() => MMSA.attach({ ...d, control: new SharedArrayBuffer(8) }), 'ERR_MEMSYS_DESCRIPTOR', 'control is 8 bytes');
  throwsCode(() => MMSA.attach(d, {} as never), 'ERR_MEMSYS_INVALID_ARG', 'port Object', 'postMessage');
  const other = MMSA.attach(d);
  other.free(other.alloc());
  other.terminate();
  mm.terminate();
});

test.run();
