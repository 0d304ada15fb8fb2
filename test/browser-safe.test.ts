// The browser-safe entry bundles for the browser with no Node built-in anywhere below it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import * as esbuild from 'esbuild';

test('src/index.ts bundles with platform browser and imports nothing from Node', async () => {
  const r = await esbuild.build({
    entryPoints: ['src/index.ts'], bundle: true, platform: 'browser', format: 'esm', write: false,
    logLevel: 'silent', metafile: true,
  });
  assert.is(r.errors.length, 0);
  const inputs = Object.keys(r.metafile!.inputs);
  assert.ok(inputs.some((f) => f.endsWith('src/mmsa.ts')));
  assert.not.ok(inputs.some((f) => f.includes('src/node/')), 'nothing from src/node/');
  for (const out of Object.values(r.metafile!.outputs)) {
    for (const imp of out.imports) assert.unreachable(`bundle imports ${imp.path}`);
  }
});

test('build/browser.js: no Node import, no inlined core, each core named beside it for bundlers to find', () => {
  const js = readFileSync(new URL('../build/browser.js', import.meta.url), 'utf8');
  assert.not.match(js, /from\s*["']node:|import\(["']node:|require\(/);
  assert.not.match(js, /AGFzbQ/, 'no base64 wasm (its magic number, base64)');
  for (const f of ['memsys.wasm', 'memsys.st.wasm', 'memsys.debug.wasm', 'memsys.st.debug.wasm']) {
    assert.ok(js.includes(`new URL("./${f}", import.meta.url)`), f);
  }
  const inline = readFileSync(new URL('../build/index.js', import.meta.url), 'utf8');
  assert.match(inline, /AGFzbQ/, 'the inlined bundle does carry it (the check can fail)');
});

test('the check fails on a Node import (it can fail)', async () => {
  let failed = false;
  try {
    await esbuild.build({
      stdin: { contents: "import { readFileSync } from 'node:fs'; console.log(readFileSync);", resolveDir: '.' },
      bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent',
    });
  } catch {
    failed = true;
  }
  assert.ok(failed);
});

test.run();
