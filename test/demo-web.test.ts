// `npm run demo:web`: the live view runs its workload in Chromium, draws its charts, and gives
// memory back after each burst; the test saves a screenshot to build/demo-web.png.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Browser } from 'playwright-core';
import { launch, newPage, withChromium } from './chromium.js';

const SHOT = new URL('../build/demo-web.png', import.meta.url).pathname;
const MiB = 1 << 20;

let server: ChildProcess;
let url = '';

test.before(async () => {
  server = spawn(process.execPath, ['scripts/demo-web.js', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (c) => {
      out += c;
      const m = /memsys live view: (http:\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`demo:web exited (${code}): ${out}`)));
  });
});

test.after(() => {
  server?.kill();
});

test('the demo server serves the page, the bundle and its cores isolated, and nothing outside them', async () => {
  for (const path of ['', 'app.js', 'build/browser.js', 'build/memsys.wasm']) {
    const r = await fetch(url + path);
    assert.is(r.status, 200, path);
    assert.is(r.headers.get('cross-origin-embedder-policy'), 'require-corp');
  }
  assert.is((await fetch(url + 'build/memsys.wasm')).headers.get('content-type'), 'application/wasm');
  // Directories, escapes and what does not exist: 404, and the server stays up.
  for (const path of ['build/', 'build/types', 'missing.js', 'build/../package.json', '%2e%2e/package.json', 'build/..%2f..%2fpackage.json', '..%2fscripts/demo-web.js', '%E0%A4%A']) {
    assert.is((await fetch(url + path)).status, 404, path);
  }
  // A request line whose URL does not parse gets an answer, and the server stays up.
  const { port } = new URL(url);
  const reply = await new Promise<string>((res, rej) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.end('GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    sock.on('data', (c) => { got += c; });
    sock.on('end', () => res(got));
    sock.on('error', rej);
  });
  assert.match(reply, /^HTTP\/1\.1 (400|404)/);
  assert.is((await fetch(url)).status, 200);
});

withChromium('live view test', () => {
  let browser: Browser;

  test.before(async () => {
    browser = await launch();
  });

  test.after(async () => {
    await browser?.close();
  });

  test('demo:web draws the pool live from a page and two workers, gives memory back, and is saved as a screenshot', async () => {
    const page = await newPage(browser, { viewport: { width: 1000, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    // Four times the usual pace: bursts of 2 s, quiet spells of 3 s.
    await page.goto(`${url}?speed=4`);
    await page.waitForFunction(() => (globalThis as unknown as { demo?: { cycles: number } }).demo?.cycles! >= 1, undefined, { timeout: 30_000 });
    await page.waitForFunction(() => (globalThis as unknown as { demo: { peak: number } }).demo.peak > 0, undefined, { timeout: 10_000 });
    await page.waitForTimeout(1500); // into the next burst, so the screenshot shows both
    const d = await page.evaluate(() => {
      const s = (globalThis as unknown as { demo: Record<string, unknown> & { samples: unknown[] } }).demo;
      const svg = (id: string) => document.querySelector(`#${id} svg`)?.outerHTML ?? '';
      return { ...s, samples: s.samples.length, timeline: svg('timeline'), classes: svg('classes'), status: document.getElementById('status')!.textContent };
    }) as { mode: string; workers: number; fromWorkers: number; errors: string[]; samples: number; log: { peak: number; after: number }[]; timeline: string; classes: string; status: string };
    await page.screenshot({ path: SHOT, fullPage: true });
    await page.close();
    assert.equal(problems, [], 'no errors in the page');
    assert.equal(d.errors, []);
    assert.is(d.mode, 'shared');
    assert.is(d.workers, 2, 'both workers attached');
    assert.ok(d.fromWorkers > 0, 'buffers made in the workers were freed in the page');
    assert.ok(d.samples >= 15, `sampled every 250 ms (${d.samples})`);
    const { peak, after } = d.log[0];
    assert.ok(peak >= 64 * MiB, `the burst grew the pool (${peak / MiB} MiB)`);
    assert.ok(after <= peak / 4, `the quiet spell gave it back: ${peak / MiB} -> ${after / MiB} MiB`);
    assert.is([...d.timeline.matchAll(/<polyline /g)].length, 3, 'pool, in use and budget left drawn');
    assert.match(d.timeline, /budget left \(right axis\)/);
    assert.ok([...d.classes.matchAll(/fill="#c62828"/g)].length >= 4, 'bars for the classes in use');
    assert.match(d.status, /pressure(low|moderate|high|extreme|OOM)/);
    const png = readFileSync(SHOT);
    assert.equal([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
    assert.ok(png.length > 20_000, `the screenshot has content (${png.length} bytes)`);
  });
});

test.run();
