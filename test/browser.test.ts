// memsys in a real browser: Debian's Chromium through playwright-core, pages served on localhost
// by this test. In CI a missing browser fails the run; elsewhere the suite is skipped, loudly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import type { Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('..', import.meta.url).pathname;
const have = existsSync(CHROMIUM);

if (!have && process.env.CI) {
  test('Chromium is installed (CI runs the browser suite for real)', () => {
    assert.unreachable(`${CHROMIUM} is missing: .ci/run installs the chromium package`);
  });
} else if (!have) {
  console.warn(`\n!!! browser tests SKIPPED: ${CHROMIUM} not found (apt-get install chromium); CI runs them\n`);
  test.skip('browser suite (no Chromium here)', () => {});
} else {
  let server: Server;
  let base = '';
  let browser: Browser;

  // Serves the repository read-only; /isolated/… pages get COOP/COEP (cross-origin isolated).
  test.before(async () => {
    const types: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.map': 'application/json' };
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const isolated = url.pathname.startsWith('/isolated/');
      const rel = normalize(url.pathname.replace(/^\/isolated\//, '/')).replace(/^(\.\.[/\\])+/, '');
      const headers: Record<string, string> = isolated
        ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
        : {};
      if (rel === '/page.html') {
        res.writeHead(200, { ...headers, 'content-type': 'text/html' });
        res.end('<!doctype html><meta charset="utf-8"><title>memsys</title><body></body>');
        return;
      }
      if (rel === '/worker.js') {
        // A module worker: attaches the page's MMSA, allocates buffers stamped with its number and
        // posts them back; frees what the page posts to it after checking the page's stamp.
        res.writeHead(200, { ...headers, 'content-type': 'text/javascript' });
        res.end(`import { MMSA } from '/isolated/build/index.js';
          let mm;
          onmessage = (e) => {
            const d = e.data;
            if (d.memsys) return; // memsys's own announcements on this port
            if (d.desc) { mm = MMSA.attach(d.desc, self); postMessage('ready'); return; }
            if (d.alloc) {
              const bufs = [];
              for (let i = 0; i < d.alloc; i++) { const b = mm.allocSize(8192); b.fill(d.id); bufs.push(b); }
              postMessage(bufs);
              return;
            }
            if (d.free) { let ok = 0; for (const b of d.free) { if (b.every((x) => x === 9)) ok++; mm.free(b); } postMessage(ok); return; }
            if (d.bye) { mm.terminate(); postMessage('bye'); }
          };`);
        return;
      }
      if (rel === '/body.bin') {
        res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream' });
        const chunk = new Uint8Array(65536).map((_, i) => i * 7);
        let n = 0;
        const more = () => { while (n < 64) { n++; if (!res.write(chunk)) return res.once('drain', more); } res.end(); };
        more();
        return;
      }
      const file = join(ROOT, rel);
      if (!file.startsWith(join(ROOT, 'build')) || !existsSync(file)) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { ...headers, 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  });

  test.after(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  // Runs `fn` in a fresh page at `path` and returns its result.
  async function inPage<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const page = await browser.newPage();
    // tsx (esbuild, keepNames) wraps named functions in __name(); the page needs it too.
    await page.addInitScript({ content: 'globalThis.__name = (f) => f;' });
    try {
      await page.goto(base + path);
      return await page.evaluate(fn);
    } finally {
      await page.close();
    }
  }

  test('an isolated page: shared arenas, slab alloc/free, bad input refused, an SGL from a fetch body', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/index.js' as string);
      const mm = new m.MMSA({ name: 'page', arenaSize: 4 << 20, minFree: 16 << 20, memStats: m.browserMemStats({ budget: 256 << 20 }) });
      const err = mm.init();
      const slab = mm.getSlab(32768);
      const a = slab.alloc();
      a.fill(5);
      slab.free(a);
      const codes: string[] = [];
      for (const f of [() => slab.free(a), () => mm.free(new Uint8Array(32768)), () => mm.allocSize(1 << 20)]) {
        try { f(); codes.push('none'); } catch (e) { codes.push((e as { code: string }).code); }
      }
      const sgl = mm.newSGL();
      const res = await fetch('/isolated/body.bin');
      const n = await sgl.readFrom(res.body!);
      const all = sgl.readAll();
      let ok = all.length === 64 * 65536;
      for (let i = 0; i < all.length && ok; i += 4099) ok = all[i] === ((i % 65536) * 7 & 255);
      sgl.free();
      const st = mm.stats();
      const out = { err: err?.code ?? null, isolated: crossOriginIsolated, mode: st.mode, codes, n, ok, pressure: mm.pressure(), inUse: st.classes.reduce((s: number, c: { inUse: number }) => s + c.inUse, 0) };
      mm.terminate();
      return out;
    });
    assert.is(r.isolated, true);
    assert.is(r.mode, 'shared');
    assert.is(r.err, null);
    assert.equal(r.codes, ['ERR_MEMSYS_NOT_LIVE', 'ERR_MEMSYS_NOT_OWNED', 'ERR_MEMSYS_SIZE_TOO_LARGE']);
    assert.is(r.n, 64 * 65536);
    assert.ok(r.ok, 'the fetch body arrived intact in the SGL');
    assert.is(r.inUse, 0);
    assert.is(r.pressure, 0);
  });

  test('an isolated page shares its MMSA with two Web Workers; buffers cross both ways; dropped arenas give memory back', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/index.js' as string);
      const mm = new m.MMSA({ name: 'ww', arenaSize: 1 << 20, minFree: 0, housekeeping: false });
      mm.init();
      const workers = [1, 2].map(() => new Worker('/isolated/worker.js', { type: 'module' }));
      const ask = (w: Worker, msg: unknown) => new Promise<unknown>((res) => {
        w.onmessage = (e) => { if (!(e.data && e.data.memsys)) res(e.data); };
        w.postMessage(msg);
      });
      // Each worker is linked by its own port: browsers do not pass memories on a BroadcastChannel.
      for (const w of workers) await ask(w, { desc: mm.share(w) });
      // Each worker allocates 200 buffers (new arenas of their own); the page checks and frees them.
      let fromWorkers = 0;
      for (const [i, w] of workers.entries()) {
        const bufs = (await ask(w, { alloc: 200, id: i + 1 })) as Uint8Array[];
        for (const b of bufs) { if (b.every((x) => x === i + 1)) fromWorkers++; mm.free(b); }
      }
      // The page allocates, stamps and posts to the first worker, which frees them.
      const mine = Array.from({ length: 100 }, () => { const b = mm.allocSize(8192); b.fill(9); return b; });
      const freedThere = await ask(workers[0], { free: mine });
      for (const w of workers) await ask(w, { bye: true });
      workers.forEach((w) => w.terminate());
      await new Promise((res) => setTimeout(res, 50)); // announcements of the workers' arenas
      const before = mm.stats().arenas;
      const r2 = mm.freeMem({ totally: true });
      const out = { fromWorkers, freedThere, arenasBefore: before, dropped: r2.dropped, after: r2.arenas,
        inUse: mm.stats().classes.reduce((s: number, c: { inUse: number }) => s + c.inUse, 0) };
      mm.terminate();
      return out;
    });
    assert.is(r.fromWorkers, 400, 'every buffer from the workers had its stamp');
    assert.is(r.freedThere, 100, 'and every buffer of the page arrived intact');
    assert.ok(r.arenasBefore >= 3, `the page knows the workers' arenas (${r.arenasBefore})`);
    assert.is(r.inUse, 0, 'every count balances over the three realms');
    assert.is(r.after, 0, 'every arena closed and dropped: the memories came over the ports');
    assert.is(r.dropped, r.arenasBefore);
  });

  test('a page without isolation runs single-threaded on plain memories', async () => {
    const r = await inPage('/page.html', async () => {
      const m = await import('/build/index.js' as string);
      const mm = new m.MMSA({ name: 'plain', arenaSize: 1 << 20 });
      mm.init();
      const b = mm.alloc();
      b[0] = 1;
      mm.free(b);
      let shareCode = '';
      try { mm.share(); } catch (e) { shareCode = (e as { code: string }).code; }
      const out = { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer, mode: mm.stats().mode, shareCode };
      mm.terminate();
      return out;
    });
    assert.is(r.isolated, false);
    assert.is(r.mode, 'single-threaded');
    assert.is(r.shareCode, 'ERR_MEMSYS_STATE');
  });
}

test.run();
