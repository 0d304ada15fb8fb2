// Shared by the browser suites: Debian's Chromium through playwright-core, and pages served on
// localhost by the test itself. In CI a missing browser fails the run; elsewhere a suite is
// skipped, loudly.
import { existsSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { needs } from './helpers.js';

export const CHROMIUM = '/usr/bin/chromium';

// Runs `define` (which declares the suite's tests) when Chromium is installed.
export function withChromium(suite: string, define: () => void): void {
  needs(suite, existsSync(CHROMIUM), `${CHROMIUM} not found (apt-get install chromium; .ci/run installs it)`, define);
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // ForceEagerMeasureMemory: measureUserAgentSpecificMemory() resolves in ~0.1 s instead of at a
  // GC up to 20 s away; --expose-gc: a page can collect before it measures. So a test can see what
  // the browser itself counts, before and after memsys gives memory back.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--enable-blink-features=ForceEagerMeasureMemory', '--js-flags=--expose-gc'],
  });
}

export { ISOLATED, fileUnder, pathOf, sendFile } from '../scripts/serve.js';

// An HTTP server on 127.0.0.1 and an ephemeral port; `base` is its origin.
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

// A fresh page. tsx (esbuild, keepNames) wraps the functions a test hands to page.evaluate in
// __name(); the page needs it too.
export async function newPage(browser: Browser, opts?: Parameters<Browser['newPage']>[0]): Promise<Page> {
  const page = await browser.newPage(opts);
  await page.addInitScript({ content: 'globalThis.__name = (f) => f;' });
  return page;
}

// Runs `fn(arg)` in a fresh page at `url` and returns its result.
export async function inPage<T, A = undefined>(browser: Browser, url: string, fn: (arg: A) => Promise<T>, arg?: A): Promise<T> {
  const page = await newPage(browser);
  try {
    await page.goto(url);
    return await page.evaluate(fn as (a: unknown) => Promise<T>, arg);
  } finally {
    await page.close();
  }
}
