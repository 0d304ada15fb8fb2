// memsys in a user's app: the app imports `memsys` (or `memsys/inline`), is bundled by esbuild or
// Vite as its author would, and the output runs in Chromium.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import type { Browser } from 'playwright-core';
import { ISOLATED, fileUnder, launch, listen, newPage, pathOf, sendFile, withChromium } from './chromium.js';

const ROOT = new URL('..', import.meta.url).pathname;

// The app: a pool in an isolated page, a buffer, and an SGL collected and read back.
// `load`: loadCore's arguments, or null for no call.
const app = (entry: string, load: string | null) => `
import { MMSA, loadCore } from '${entry}';
globalThis.done = (async () => {
  ${load === null ? '' : `await loadCore(${load});`}
  const mm = new MMSA({ name: 'app', arenaSize: 1 << 20, minFree: 0 });
  mm.init();
  const b = mm.alloc();
  b.fill(7);
  mm.free(b);
  const sgl = mm.newSGL();
  for (let i = 0; i < 100; i++) sgl.write(new Uint8Array(1000).fill(i));
  const all = sgl.readAll();
  const ok = all.length === 100000 && all[0] === 0 && all[99999] === 99;
  sgl.free();
  const out = { mode: mm.stats().mode, ok };
  mm.terminate();
  return out;
})();
`;

withChromium('app bundling suite', () => {
  let dir = '';
  let server: Server;
  let base = '';
  let browser: Browser;

  // A user's project: memsys installed under node_modules (its package.json and build/, as the
  // published package has them).
  test.before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memsys-app-'));
    const pkg = join(dir, 'node_modules', 'memsys');
    mkdirSync(pkg, { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(ROOT, 'build'), join(pkg, 'build'), { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>');
    ({ server, base } = await listen((req, res) => {
      const path = pathOf(req);
      sendFile(res, path === null ? null : fileUnder(join(dir, 'out'), path), ISOLATED);
    }));
    browser = await launch();
  });

  test.after(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  // Loads the app at `url` and waits for its result (a dev server loads its modules after the
  // page's load event).
  async function runAt(url: string): Promise<{ mode: string; ok: boolean }> {
    const page = await newPage(browser);
    try {
      await page.goto(url);
      await page.waitForFunction(() => 'done' in globalThis, undefined, { timeout: 15_000 });
      return await page.evaluate(() => (globalThis as unknown as { done: Promise<{ mode: string; ok: boolean }> }).done);
    } finally {
      await page.close();
    }
  }
  const runApp = (sub: string) => runAt(`${base}/${sub}/index.html`);

  // The cores beside a bundle, as an esbuild user copies them.
  function copyCores(to: string): void {
    mkdirSync(to, { recursive: true });
    for (const f of readdirSync(join(dir, 'node_modules/memsys/build')).filter((n) => n.endsWith('.wasm'))) {
      cpSync(join(dir, 'node_modules/memsys/build', f), join(to, f));
    }
  }

  async function esbuildApp(sub: string, entry: string, load: string | null, format: 'esm' | 'iife' = 'esm') {
    writeFileSync(join(dir, 'main.js'), app(entry, load));
    const out = join(dir, 'out', sub);
    const r = await esbuild.build({
      entryPoints: [join(dir, 'main.js')], bundle: true, platform: 'browser', format, target: 'es2022',
      outdir: out, metafile: true, logLevel: 'silent',
    });
    cpSync(join(dir, 'index.html'), join(out, 'index.html'));
    return { out, inputs: Object.keys(r.metafile.inputs), js: readFileSync(join(out, 'main.js'), 'utf8') };
  }

  test('esbuild: `memsys` resolves to the browser bundle; its cores go next to the app bundle', async () => {
    const b = await esbuildApp('esbuild', 'memsys', '');
    assert.ok(b.inputs.some((f) => f.endsWith('build/browser.js')), b.inputs.join());
    assert.not.match(b.js, /from\s*["']node:|require\(/);
    copyCores(b.out); // what the README tells esbuild users
    assert.equal(await runApp('esbuild'), { mode: 'shared', ok: true });
  });

  test('esbuild: `memsys/inline` carries its cores and needs no loadCore()', async () => {
    const b = await esbuildApp('inline', 'memsys/inline', null);
    assert.ok(b.inputs.some((f) => f.endsWith('build/index.js')), b.inputs.join());
    assert.not.match(b.js, /new URL\("\.\/memsys/, 'no core fetched');
    assert.equal(await runApp('inline'), { mode: 'shared', ok: true });
  });

  test('esbuild as a script (iife): no import.meta.url, so loadCore() says to pass base; with base it runs', async () => {
    await esbuildApp('iife', 'memsys', '', 'iife');
    const page = await newPage(browser);
    try {
      await page.goto(`${base}/iife/index.html`);
      const err = await page.evaluate(() => (globalThis as unknown as { done: Promise<unknown> }).done.then(() => 'none', (e) => `${e.code}: ${e.message}`));
      assert.match(err, /^ERR_MEMSYS_CORE_FETCH: .*cannot tell where the core memsys(\.st)?\.wasm is.*loadCore\(\{ base \}\)/);
    } finally {
      await page.close();
    }
    const b = await esbuildApp('iife', 'memsys', "{ base: '/iife/cores/' }", 'iife');
    copyCores(join(b.out, 'cores'));
    assert.equal(await runApp('iife'), { mode: 'shared', ok: true });
  });

  test('Vite: a production build emits the cores as assets and the app runs', async () => {
    writeFileSync(join(dir, 'main.js'), app('memsys', ''));
    const { build } = await import('vite');
    await build({
      root: dir, base: './', configFile: false, logLevel: 'silent',
      build: { outDir: join(dir, 'out', 'vite'), target: 'es2022', emptyOutDir: true },
    });
    const assets = readdirSync(join(dir, 'out/vite/assets'));
    for (const core of ['memsys', 'memsys.st', 'memsys.debug', 'memsys.st.debug']) {
      assert.ok(assets.some((f) => f.startsWith(`${core}-`) && f.endsWith('.wasm')), `${core}.wasm emitted: ${assets.join()}`);
    }
    assert.equal(await runApp('vite'), { mode: 'shared', ok: true });
  });

  test('Vite: the dev server serves the app and its cores as they are', async () => {
    writeFileSync(join(dir, 'main.js'), app('memsys', ''));
    const { createServer } = await import('vite');
    const seen: string[] = [];
    const vite = await createServer({
      root: dir, configFile: false, logLevel: 'silent', server: { port: 0, host: '127.0.0.1', headers: ISOLATED },
      plugins: [{ name: 'requests', configureServer: (s) => { s.middlewares.use((req, _res, next) => { seen.push(req.url ?? ''); next(); }); } }],
    });
    await vite.listen();
    try {
      assert.equal(await runAt(vite.resolvedUrls!.local[0]), { mode: 'shared', ok: true });
      // The browser bundle, whose cores were fetched as files (not the inlined one).
      for (const f of ['memsys.wasm', 'memsys.st.wasm']) assert.ok(seen.some((u) => u.endsWith(`/build/${f}`)), `${f} fetched: ${seen.join(' ')}`);
    } finally {
      await vite.close();
    }
  });
});

test.run();
