import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

// Asserts that fn throws an error with this code whose message mentions every one of `parts`.
export function throwsCode(fn: () => unknown, code: string, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  isCode(err, code, parts);
}

// The same for a promise that must reject.
export async function rejectsCode(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  isCode(err, code, parts);
}

function isCode(err: unknown, code: string, parts: string[]): void {
  assert.ok(err instanceof Error, `expected ${code}, nothing was thrown`);
  assert.is((err as { code?: string }).code, code, (err as Error).message);
  for (const p of parts) assert.ok((err as Error).message.includes(p), `message ${JSON.stringify((err as Error).message)} lacks ${JSON.stringify(p)}`);
}

// A directory tree for the Node statistics provider's injectable root: { '/proc/meminfo': text, … }.
// Removed when the process exits.
const trees: string[] = [];
export function fixtureTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'memsys-host-'));
  if (trees.push(root) === 1) process.once('exit', () => { for (const r of trees) rmSync(r, { recursive: true, force: true }); });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

// The development VM's /proc/meminfo (test/fixtures/host/meminfo) with fields replaced, in kB.
export const MEMINFO = readFileSync(new URL('./fixtures/host/meminfo', import.meta.url), 'utf8');
export function meminfo(kb: Record<string, number>): string {
  let t = MEMINFO;
  for (const [k, v] of Object.entries(kb)) {
    const re = new RegExp(`^${k.replace(/[()]/g, '\\$&')}:\\s+\\d+`, 'm');
    t = re.test(t) ? t.replace(re, `${k}:${' '.repeat(Math.max(1, 15 - k.length))}${v}`) : `${t}${k}:        ${v} kB\n`;
  }
  return t;
}

// Buffers in use in an MMSA, over every class and realm.
export function inUse(m: { stats(): { classes: { inUse: number }[] } }): number {
  return m.stats().classes.reduce((n, c) => n + c.inUse, 0);
}

// Deterministic bytes: the same (n, seed) always gives the same array.
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x; }
  return out;
}

// ---- servers on 127.0.0.1 -------------------------------------------------------------------------

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// The sha256 of an SGL's unread bytes (it is rewound afterwards).
export function sglSha(s: { nextChunk(): Uint8Array | null | undefined; rewind(): unknown }): string {
  const h = createHash('sha256');
  for (let c = s.nextChunk(); c; c = s.nextChunk()) h.update(c);
  s.rewind();
  return h.digest('hex');
}

export const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Waits until `cond` holds; fails after `ms` (two seconds), saying `what`.
export async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  for (let i = 0; i < ms / 10 && !cond(); i++) await tick(10);
  assert.ok(cond(), what);
}

// A wait until `m`'s pool holds nothing (frees happen on 'close', a tick after the client has its
// answer); it fails after a second.
export function drainer(m: { stats(): { classes: { inUse: number }[] } }): (what: string) => Promise<void> {
  return async (what) => {
    for (let i = 0; i < 100 && inUse(m) !== 0; i++) await tick(10);
    assert.is(inUse(m), 0, `${what}: the pool still holds ${inUse(m)} buffers`);
  };
}

export async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: { close(cb: () => void): unknown; closeAllConnections?: () => void }): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((r) => server.close(() => r()));
}

export interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

export interface RequestOptions {
  /** Send the body without a Content-Length (chunked), in 64 KiB writes. */
  chunked?: boolean;
  /** The Content-Type; default application/octet-stream. */
  type?: string;
  agent?: http.Agent;
  /** More request headers. */
  headers?: Record<string, string>;
}

// One request with node:http's client; it fails after 5 s of silence rather than hanging.
export function request(port: number, method: string, path: string, body?: Uint8Array, opts: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': opts.type ?? 'application/octet-stream', ...opts.headers };
    if (body && !opts.chunked) headers['content-length'] = body.length;
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: opts.agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path}: no answer after 5 s of silence`)));
    if (body) for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
    req.end();
  });
}

// Declares a suite's tests (`define`) where what they need is here. Without it: with CI set, one
// failing test says what is missing (CI installs it); elsewhere the suite is skipped, loudly.
export function needs(suite: string, have: boolean, missing: string, define: () => void): void {
  if (have) {
    define();
  } else if (process.env.CI) {
    test(`${suite}: what it needs is here (CI runs it for real)`, () => assert.unreachable(missing));
  } else {
    console.warn(`\n!!! ${suite} SKIPPED: ${missing}; CI runs it\n`);
    test.skip(`${suite} (${missing})`, () => {});
  }
}

// This process's memory cgroup (v1's memory controller, else the unified v2 group), under which
// the memory-limit tests make their own child groups; undefined where there is none.
export function ownCgroup(): { dir: string; v2: boolean } | undefined {
  let lines: string[];
  try { lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n'); } catch { return undefined; }
  const v1 = lines.map((l) => l.split(':')).find((f) => f[1].split(',').includes('memory'));
  if (v1 && existsSync(`/sys/fs/cgroup/memory${v1[2]}/memory.limit_in_bytes`)) return { dir: `/sys/fs/cgroup/memory${v1[2]}`.replace(/\/$/, ''), v2: false };
  const u = lines.find((l) => l.startsWith('0::'));
  if (u && existsSync('/sys/fs/cgroup/cgroup.controllers')) return { dir: `/sys/fs/cgroup${u.slice(3)}`.replace(/\/$/, ''), v2: true };
  return undefined;
}

// Removes child groups `prefix<pid>` of runs that were killed before they could (their process is
// gone); a group that still has tasks stays.
export function sweepGroups(parent: string, prefix: string): void {
  let names: string[];
  try { names = readdirSync(parent); } catch { return; } // not listable: nothing of ours there
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(\d+)$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid && !existsSync(`/proc/${pid}`)) try { rmdirSync(`${parent}/${name}`); } catch { /* still has tasks */ }
  }
}
