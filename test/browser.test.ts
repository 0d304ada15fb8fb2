// memsys in a real browser: Debian's Chromium through playwright-core, pages served on localhost
// by this test (test/chromium.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { ISOLATED, fileUnder, inPage as run, launch, listen, pathOf, sendFile, withChromium } from './chromium.js';

const ROOT = new URL('..', import.meta.url).pathname;

withChromium('browser suite', () => {
  let server: Server;
  let base = '';
  let browser: Browser;
  const seen: string[] = []; // paths requested, in order

  // Serves the repository read-only; /isolated/… pages get COOP/COEP (cross-origin isolated).
  test.before(async () => {
    ({ server, base } = await listen((req, res) => {
      const path = pathOf(req) ?? '';
      seen.push(path);
      const isolated = path.startsWith('/isolated/');
      const rel = path.replace(/^\/isolated\//, '/');
      const headers: Record<string, string> = isolated ? ISOLATED : {};
      if (rel === '/page.html') {
        res.writeHead(200, { ...headers, 'content-type': 'text/html' });
        res.end('<!doctype html><meta charset="utf-8"><title>memsys</title><body></body>');
        return;
      }
      if (rel === '/worker.js') {
        // A module worker: attaches the page's MMSA, allocates buffers stamped with its number and
        // posts them back; frees what the page posts to it after checking the page's stamp.
        res.writeHead(200, { ...headers, 'content-type': 'text/javascript' });
        res.end(`import { MMSA } from '/isolated/build/browser.js';
          let mm;
          onmessage = (e) => {
            const d = e.data;
            if (d.memsys) return; // memsys's own announcements on this port
            if (d.desc) { mm = MMSA.attach(d.desc, self); mm.watched.then(() => postMessage('ready')); return; }
            if (d.alloc) {
              const bufs = [];
              for (let i = 0; i < d.alloc; i++) { const b = mm.allocSize(8192); b.fill(d.id); bufs.push(b); }
              postMessage(bufs);
              return;
            }
            if (d.free) { let ok = 0; for (const b of d.free) { if (b.every((x) => x === 9)) ok++; mm.free(b); } postMessage(ok); return; }
            if (d.bye) { mm.terminate(); postMessage('bye'); }
            if (d.churn) { // until terminated: SGLs in and out of the pool, every call a core call
              postMessage('churning');
              const data = new Uint8Array(300000).fill(7);
              try { for (;;) { const s = mm.newSGL(0, 128); s.write(data); s.free(); } } catch (e) { postMessage({ err: e.stack }); }
            }
          };`);
        return;
      }
      if (rel.startsWith('/fake/') && rel.endsWith('.wasm')) {
        // A valid module that is not a memsys core.
        res.writeHead(200, { ...headers, 'content-type': 'application/wasm' });
        res.end(Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
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
      sendFile(res, rel.startsWith('/build/') ? fileUnder(join(ROOT, 'build'), rel.slice('/build'.length)) : null, headers);
    }));
    browser = await launch();
  });

  test.after(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  const inPage = <T, A = undefined>(path: string, fn: (arg: A) => Promise<T>, arg?: A) => run(browser, base + path, fn, arg);

  test('an isolated page with the inlined bundle: shared arenas, slab alloc/free, bad input refused, an SGL from a fetch body', async () => {
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
    seen.length = 0;
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/browser.js' as string);
      await m.loadCore();
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
    // The page fetched the core once; the workers took the compiled module from the descriptor.
    assert.is(seen.filter((p) => p.endsWith('/memsys.wasm')).length, 1, seen.join(' '));
    assert.is(seen.filter((p) => p.endsWith('/worker.js')).length, 2);
  });

  test('the browser bundle fetches its core from next to it: refused before loadCore(), bad URLs and modules named', async () => {
    seen.length = 0;
    const r = await inPage('/page.html', async () => {
      const m = await import('/build/browser.js' as string);
      const codeOf = async (f: () => unknown) => {
        try { await f(); return 'none'; } catch (e) { return `${(e as { code: string }).code}: ${(e as Error).message}`; }
      };
      const mm = new m.MMSA({ name: 'fetched', arenaSize: 1 << 20, minFree: 0 });
      const before = await codeOf(() => mm.init());
      // A refused init reads nothing and sets nothing: not the provider, not the debug flag.
      let reads = 0;
      const dm = new m.MMSA({ name: 'envdbg', arenaSize: 1 << 20, minFree: 0, env: { AIS_DEBUG: 'memsys=4' }, memStats: () => { reads++; return undefined; } });
      const refused = { code: await codeOf(() => dm.init()), debug: dm.debug, reads };
      const missing = await codeOf(() => m.loadCore({ base: '/nowhere/' }));
      const fake = await codeOf(() => m.loadCore({ base: '/fake/' }));
      const file = await codeOf(() => m.loadCore({ base: '/build/memsys.wasm' }));
      await m.loadCore();
      const noDebug = await codeOf(() => new m.MMSA({ name: 'dbg', debug: true, arenaSize: 1 << 20, minFree: 0 }).init());
      await m.loadCore({ debug: true });
      mm.init(); // the same MMSA: the refusal left it as it was
      const b = mm.alloc();
      b.fill(3);
      mm.free(b);
      const dbg = new m.MMSA({ name: 'dbg', debug: true, arenaSize: 1 << 20, minFree: 0 });
      dbg.init();
      dbg.free(dbg.alloc());
      const out = { before, refused, missing, fake, file, noDebug, mode: mm.stats().mode, sources: mm.hostStats()?.sources ?? [] };
      mm.terminate();
      dbg.terminate();
      return out;
    });
    assert.match(r.before, /^ERR_MEMSYS_STATE: .*memsys\.st\.wasm is not loaded.*await loadCore\(\)/);
    assert.match(r.refused.code, /^ERR_MEMSYS_STATE: .*memsys\.st\.debug\.wasm is not loaded/);
    assert.equal([r.refused.debug, r.refused.reads], [false, 0]);
    assert.match(r.missing, /^ERR_MEMSYS_CORE_FETCH: .*\/nowhere\/memsys.*HTTP 404/);
    assert.match(r.fake, /^ERR_MEMSYS_CORE_FETCH: .*\/fake\/memsys.*not a memsys core/);
    assert.match(r.file, /^ERR_MEMSYS_INVALID_ARG: .*memsys\.wasm.*end it with "\/"/);
    assert.match(r.noDebug, /^ERR_MEMSYS_STATE: .*memsys\.st\.debug\.wasm is not loaded.*debug: true/);
    assert.is(r.mode, 'single-threaded');
    // A page without isolation cannot share memories: it fetched the single-threaded cores only.
    assert.ok(seen.includes('/build/memsys.st.wasm') && seen.includes('/build/memsys.st.debug.wasm'), seen.join(' '));
    assert.not.ok(seen.includes('/build/memsys.wasm') || seen.includes('/build/memsys.debug.wasm'), seen.join(' '));
    // No provider given: the browser's own (navigator.deviceMemory) is the default.
    assert.ok(r.sources.includes('navigator.deviceMemory'), r.sources.join());
  });

  test('the browser bundle adopts a core only from a descriptor that is good in every part', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const inl = await import('/build/index.js' as string);    // the inlined bundle: a pool to attach to
      const fetched = await import('/build/browser.js' as string); // its own cache, nothing loaded
      const src = new inl.MMSA({ name: 'src', arenaSize: 1 << 20, minFree: 0, housekeeping: false });
      src.init();
      const d = src.share();
      const code = (f: () => unknown) => { try { f(); return 'none'; } catch (e) { return (e as { code: string }).code; } };
      const initFetched = (name: string) => code(() => new fetched.MMSA({ name, arenaSize: 1 << 20, minFree: 0, housekeeping: false }).init());
      const st = await WebAssembly.compile(await (await fetch('/build/memsys.st.wasm')).arrayBuffer());
      const out = {
        badName: code(() => fetched.MMSA.attach({ ...d, name: '' })),
        afterBadName: initFetched('a'),
        stCore: code(() => fetched.MMSA.attach({ ...d, core: st })),
        badControl: code(() => fetched.MMSA.attach({ ...d, control: new SharedArrayBuffer(8) })),
        badPort: code(() => fetched.MMSA.attach(d, {} as never)),
        noCore: code(() => fetched.MMSA.attach({ ...d, core: undefined })),
        afterRefusals: initFetched('b'),
        attached: code(() => { const a = fetched.MMSA.attach(d); a.free(a.alloc()); a.terminate(); }),
        afterAttach: initFetched('c'),
      };
      src.terminate();
      return out;
    });
    assert.equal(r, {
      badName: 'ERR_MEMSYS_INVALID_ARG',
      afterBadName: 'ERR_MEMSYS_STATE', // the refused descriptor's core was not kept
      stCore: 'ERR_MEMSYS_DESCRIPTOR',
      badControl: 'ERR_MEMSYS_DESCRIPTOR',
      badPort: 'ERR_MEMSYS_INVALID_ARG',
      noCore: 'ERR_MEMSYS_STATE',
      afterRefusals: 'ERR_MEMSYS_STATE',
      attached: 'none',
      afterAttach: 'none',           // the good descriptor's threaded core serves new MMSAs too
    });
  });

  test('the browser provider takes the page\'s own memory from measureUserAgentSpecificMemory (isolated pages)', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/browser.js' as string);
      const budget = 256 << 20;
      const provider = m.browserMemStats({ budget, sampleMs: 1 });
      const first = provider({ poolBytes: 1 << 10 });
      let last = first;
      for (let i = 0; i < 100 && !last.sources.includes('performance.measureUserAgentSpecificMemory'); i++) {
        await new Promise((res) => setTimeout(res, 50));
        last = provider({ poolBytes: 1 << 10 });
      }
      const direct = await (performance as unknown as { measureUserAgentSpecificMemory(): Promise<{ bytes: number }> }).measureUserAgentSpecificMemory();
      return { first, last, direct: direct.bytes, budget };
    });
    assert.equal(r.first.sources, ['budget', 'pool'], 'the first reading has only the budget and the pool');
    assert.equal(r.first.free, r.budget - (1 << 10));
    assert.ok(r.last.sources.includes('performance.measureUserAgentSpecificMemory'), r.last.sources.join());
    const used = r.budget - r.last.free;
    assert.ok(used > 1 << 16, `the page's measured memory (${used} B) counts, not the pool's 1 KiB`);
    assert.ok(Math.abs(used - r.direct) < 16 << 20, `and is near what the browser reports directly (${r.direct} B)`);
  });

  test('dropped arenas are memory the browser gets back: its own measure before, full, and after', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const g = globalThis as unknown as { gc(): void };
      const measure = async () => {
        g.gc();
        return (await (performance as unknown as { measureUserAgentSpecificMemory(): Promise<{ bytes: number }> }).measureUserAgentSpecificMemory()).bytes;
      };
      const m = await import('/build/browser.js' as string);
      await m.loadCore();
      const base = await measure();
      const mm = new m.MMSA({ name: 'back', arenaSize: 4 << 20, minFree: 0, housekeeping: false });
      mm.init();
      const bufs: Uint8Array[] = [];
      for (let i = 0; i < 900; i++) { const b = mm.allocSize(65536); b.fill(1); bufs.push(b); }
      const full = await measure();
      for (const b of bufs) mm.free(b);
      bufs.length = 0;
      const fm = mm.freeMem({ totally: true });
      const after = await measure();
      const out = { base, full, after, dropped: fm.dropped, arenas: mm.stats().arenas };
      mm.terminate();
      return out;
    });
    const MiB = 1 << 20;
    assert.is(r.dropped, 15, 'fifteen 4 MiB arenas held 900 × 64 KiB');
    assert.is(r.arenas, 0);
    assert.ok(r.full - r.base >= 50 * MiB, `the browser counted the arenas: ${(r.base / MiB).toFixed(1)} -> ${(r.full / MiB).toFixed(1)} MiB`);
    assert.ok(r.after - r.base < 16 * MiB, `and counts them no more once dropped: ${(r.full / MiB).toFixed(1)} -> ${(r.after / MiB).toFixed(1)} MiB`);
  });

  test('SGLs to and from ReadableStream and WritableStream: a fetch body piped in, a slow sink and a Response out', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/browser.js' as string);
      await m.loadCore();
      const mm = new m.MMSA({ name: 'streams', arenaSize: 4 << 20, minFree: 0, housekeeping: false });
      mm.init();
      const hex = async (b: BufferSource) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', b))].map((x) => x.toString(16).padStart(2, '0')).join('');
      const chunk = new Uint8Array(65536).map((_, i) => i * 7);
      const expected = new Uint8Array(64 * 65536);
      for (let i = 0; i < 64; i++) expected.set(chunk, i * 65536);
      // In: a fetch body piped into the SGL's WritableStream.
      const a = mm.newSGL();
      await (await fetch('/isolated/body.bin')).body!.pipeTo(a.toWritableStream());
      // Out: to a slow WritableStream (one chunk queued at a time) ...
      const got: Uint8Array[] = [];
      let maxQueued = 0;
      let queued = 0;
      const sink = new WritableStream<Uint8Array>({
        async write(c) { queued++; maxQueued = Math.max(maxQueued, queued); got.push(c.slice()); await new Promise((res) => setTimeout(res, 1)); queued--; },
      }, new CountQueuingStrategy({ highWaterMark: 1 }));
      const written = await a.writeTo(sink);
      const slow = new Uint8Array(written);
      let at = 0;
      for (const c of got) { slow.set(c, at); at += c.length; }
      // ... and as a ReadableStream into a Response.
      a.rewind();
      const viaResponse = new Uint8Array(await new Response(a.toReadableStream()).arrayBuffer());
      const out = {
        size: a.size, written, chunks: got.length, maxQueued,
        want: await hex(expected), slow: await hex(slow), response: await hex(viaResponse),
      };
      a.free();
      const inUse = mm.stats().classes.reduce((s: number, c: { inUse: number }) => s + c.inUse, 0);
      mm.terminate();
      return { ...out, inUse };
    });
    assert.is(r.size, 64 * 65536);
    assert.is(r.written, 64 * 65536);
    assert.ok(r.chunks > 1, `written in chunks (${r.chunks})`);
    assert.is(r.maxQueued, 1, 'the sink was never written ahead of its back-pressure');
    assert.is(r.slow, r.want);
    assert.is(r.response, r.want);
    assert.is(r.inUse, 0);
  });

  test('pressure from the browser provider: a budget fills, levels rise, housekeeping and the budget controller give arenas back', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/browser.js' as string);
      await m.loadCore();
      const MiB = 1 << 20;
      const mm = new m.MMSA({
        name: 'budget', arenaSize: 4 * MiB, minFree: 16 * MiB, housekeeping: false,
        memStats: m.browserMemStats({ budget: 64 * MiB }), budget: { ceiling: 48 * MiB, shrink: 1, hold: 0 },
      });
      mm.init();
      const levels: string[] = [];
      mm.addEventListener('pressure', (e: Event) => {
        const d = (e as unknown as { detail: { from: number; to: number } }).detail;
        levels.push(`${d.from}->${d.to}`);
      });
      const start = mm.pressure();
      const bufs: Uint8Array[] = [];
      let refused = '';
      try { for (;;) bufs.push(mm.allocSize(65536)); } catch (e) { refused = (e as { code: string }).code; }
      const host = mm.hostStats();
      const full = { level: mm.pressure(), pool: host.pool, free: host.free, sources: host.sources };
      mm.housekeep();
      bufs.forEach((b: Uint8Array) => mm.free(b)); // no loop variable left on the suspended frame
      const reports = [mm.housekeep(), mm.housekeep(), mm.housekeep()];
      // A browser cannot be asked to collect: dropped arenas count as the pool's until it has.
      const retired = { pool: mm.hostStats()?.pool, retired: mm.stats().retired };
      const n = bufs.length;
      bufs.length = 0; // freed views keep their arena's memory alive
      for (let i = 0; i < 50 && mm.stats().retired > 0; i++) {
        (globalThis as unknown as { gc(): void }).gc();
        await new Promise((res) => setTimeout(res, 20));
      }
      const after = { level: mm.pressure(), arenas: mm.stats().arenas, pool: mm.hostStats()?.pool, target: mm.budget?.target };
      mm.terminate();
      return { start, refused, n, full, retired, after, levels, reports: reports.map((x) => ({ dropped: x.dropped, arenas: x.arenas })) };
    });
    assert.is(r.start, 0, 'an empty pool in a 64 MiB budget: Low');
    assert.is(r.refused, 'ERR_MEMSYS_BUDGET', 'the pool stops at the ceiling');
    assert.is(r.full.pool, 48 << 20);
    assert.is(r.n * 65536 <= 48 << 20, true);
    assert.equal(r.full.sources, ['budget', 'pool']);
    assert.is(r.full.free, 16 << 20, 'the budget less the pool');
    assert.ok(r.full.level >= 2, `48 of 64 MiB with 16 MiB the minimum: High or worse (${r.full.level})`);
    assert.is(r.levels[0], `0->${r.full.level}`, 'housekeeping announced the level');
    assert.is(r.levels.at(-1), `${r.full.level}->0`);
    assert.is(r.reports[0].dropped, 12, 'all twelve 4 MiB arenas dropped once empty');
    assert.equal(r.retired, { pool: 48 << 20, retired: 12 }, 'dropped but not yet collected: still counted');
    assert.equal(r.after, { level: 0, arenas: 0, pool: 0, target: 0 });
  });

  test('every SGL method works over shared memory in an isolated page; which Web APIs refuse shared views, and copies do not', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/index.js' as string);
      const mm = new m.MMSA({ name: 'sglpage', arenaSize: 4 << 20, minFree: 0, housekeeping: false });
      mm.init();
      const errs: string[] = [];
      const step = async (name: string, f: () => unknown) => {
        try { await f(); } catch (e) { errs.push(`${name}: ${(e as Error).name} ${(e as Error).message}`); }
      };
      const sgl = mm.newSGL(0, 4096);
      const out: Record<string, unknown> = {};
      await step('write', () => sgl.write(new Uint8Array(5000).fill(65)));
      await step('writeByte', () => sgl.writeByte(10));
      await step('writeString', () => sgl.writeString('trailer\n'));           // the README's own: room in the last buffer
      await step('writeString long', () => sgl.writeString('é'.repeat(3000) + '\n'));
      await step('writeAt', () => sgl.writeAt(new Uint8Array([66]), 0));
      await step('nextLine', () => { out.line1 = sgl.nextLine()!.length; out.line2 = sgl.nextLine(); });
      await step('readByte/unreadByte', () => { out.b = sgl.readByte(); sgl.unreadByte(); });
      await step('read', () => { const into = new Uint8Array(10); out.read = sgl.read(into); });
      await step('readAll/bytes', () => { out.all = sgl.readAll().length; out.bytes = sgl.bytes().length; });
      await step('reader', () => { const rd = sgl.open(); rd.seek(1, 'start'); out.rd = rd.readByte(); out.rdlen = rd.len; });
      await step('writeAllTo', async () => { const got: number[] = []; await sgl.writeAllTo(new WritableStream({ write(c) { got.push(c.length); } })); out.allTo = got.reduce((a, b) => a + b, 0); });
      await step('iterate', async () => { const s2 = mm.newSGL(0, 4096); s2.writeString('x'.repeat(9000)); let n = 0; for await (const c of s2) n += c.length; out.iter = n; s2.free(); });
      await step('toReadableStream', async () => { const s2 = mm.newSGL(0, 4096); s2.writeString('y'.repeat(9000)); out.rs = (await new Response(s2.toReadableStream()).arrayBuffer()).byteLength; s2.free(); });
      await step('toWritableStream', async () => { const s2 = mm.newSGL(0, 4096); await new Response('z'.repeat(7000)).body!.pipeTo(s2.toWritableStream()); out.ws = s2.len; s2.free(); });
      await step('writeTo', async () => { let n = 0; await sgl.writeTo(new WritableStream({ write(c) { n += c.length; } })); out.to = n; });
      await step('handoff/receive', async () => { const s2 = mm.newSGL(0, 4096); s2.writeString('h'.repeat(5000)); const s3 = mm.receive(s2.handoff()); out.recv = s3.len; s3.free(); });
      await step('rewind/reset', () => { sgl.rewind(); out.rewound = sgl.len; sgl.reset(); out.reset = sgl.len; });
      await step('free', () => sgl.free());
      // Web APIs over a view of shared memory, and over a copy ({ copy: true } chunks).
      const s4 = mm.newSGL(0, 4096);
      s4.writeString('abc');
      const view = s4.bytes();
      const refuses: Record<string, boolean> = {};
      const tryApi = async (name: string, f: (v: never) => unknown) => {
        let shared = false, copy = false;
        try { await f(view as never); } catch { shared = true; }
        try { await f(view.slice() as never); } catch { copy = true; }
        refuses[name] = shared;
        if (copy) errs.push(`${name} refuses a copy too`);
      };
      await tryApi('TextDecoder', (v) => new TextDecoder().decode(v));
      await tryApi('crypto.subtle.digest', (v) => crypto.subtle.digest('SHA-256', v));
      await tryApi('getRandomValues', (v) => crypto.getRandomValues(v));
      await tryApi('Blob', (v) => new Blob([v]));
      await tryApi('CompressionStream', (v) => new Response(new ReadableStream({ start(c) { c.enqueue(v); c.close(); } }).pipeThrough(new CompressionStream('gzip'))).arrayBuffer());
      s4.free();
      const inUse = mm.stats().classes.reduce((n: number, c: { inUse: number }) => n + c.inUse, 0);
      mm.terminate();
      return { errs, out, refuses, inUse };
    });
    assert.equal(r.errs, []);
    assert.equal(r.out, {
      line1: 5000, line2: 'trailer', b: 195, read: 10, all: 11010, bytes: 11010, rd: 65, rdlen: 11008,
      allTo: 11010, iter: 9000, rs: 9000, ws: 7000, to: 11010 - 5001 - 8 - 10, recv: 5000, rewound: 11010, reset: 0,
    });
    assert.equal(r.refuses, { TextDecoder: true, 'crypto.subtle.digest': true, getRandomValues: true, Blob: true, CompressionStream: true });
    assert.is(r.inUse, 0);
  });

  test('Web Workers terminated while they churn SGLs: the page never hangs, their locks are recovered and their cached buffers go back', async () => {
    const r = await inPage('/isolated/page.html', async () => {
      const m = await import('/build/browser.js' as string);
      await m.loadCore();
      const mm = new m.MMSA({ name: 'dying', arenaSize: 4 << 20, minFree: 0, housekeeping: false, magazineBytes: 0 });
      mm.init();
      const seen = { dead: 0, recovered: 0, quarantined: 0, returned: 0 };
      mm.addEventListener('realm-dead', (e: Event) => { seen.dead++; seen.returned += (e as unknown as { detail: { returned: number } }).detail.returned; });
      mm.addEventListener('arena-recovered', () => seen.recovered++);
      mm.addEventListener('arena-quarantined', () => seen.quarantined++);
      const data = new Uint8Array(300000).fill(9);
      const errs: string[] = [];
      addEventListener('error', (e) => errs.push(String((e as ErrorEvent).error?.stack ?? (e as ErrorEvent).message)));
      let slowest = 0;
      const kills = 20;
      for (let i = 0; i < kills; i++) {
        const w = new Worker('/isolated/worker.js', { type: 'module' });
        const next = () => new Promise<unknown>((res) => { w.onmessage = (e) => { if (e.data && e.data.err) errs.push('worker: ' + e.data.err); else if (!(e.data && e.data.memsys)) res(e.data); }; });
        const ready = next();
        w.postMessage({ desc: mm.share(w) });
        await ready;
        const churning = next();
        w.postMessage({ churn: true });
        await churning;
        await new Promise((res) => setTimeout(res, 5 + (i * 7) % 20));
        w.terminate();
        const t0 = performance.now();
        try { const sgl = mm.newSGL(0, 128);
        sgl.write(data);
        sgl.free(); } catch (e) { errs.push('page: ' + (e as Error).stack); }
        slowest = Math.max(slowest, performance.now() - t0);
      }
      // A realm counts as dead once the browser has released its Web Lock, when it has really stopped.
      for (let t = 0; t < 100 && seen.dead < kills; t++) await new Promise((res) => setTimeout(res, 50));
      const sgl = mm.newSGL(0, 128);
      sgl.write(data);
      const ok = sgl.readAll().every((x: number) => x === 9);
      sgl.free();
      mm.check();
      mm.terminate();
      return { ...seen, kills, ok, slowest, errs };
    });
    assert.equal(r.errs, [], 'no error in the page or a worker');
    assert.is(r.dead, r.kills, 'every terminated worker was known dead');
    assert.ok(r.ok);
    assert.ok(r.returned > 0, 'the buffers cached in their magazines went back');
    console.log(`  Chromium: ${r.kills} workers terminated, ${r.recovered} locks recovered, ${r.quarantined} quarantined, slowest page call ${r.slowest.toFixed(1)} ms`);
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
});

test.run();
