// The core module: compiling it once per realm and binding an instance to an arena's memory.
// The ABI is documented in docs/abi.md; this is its TypeScript face.
//
// Plain WebAssembly APIs, not @assemblyscript/loader: the core's ABI is numbers only (no strings,
// arrays or managed objects to lift and lower) and it never traps; its errors are return codes,
// which arena.ts turns into typed errors. The loader would add ~3 KB and a per-call shim for none
// of that. (docs/architecture.md)

import { CHECK_MESSAGES } from '#abi';
import { type CoreFile, coreUrl, inlined } from '#core';
import { MemsysError, invalidArg } from '../errors.js';
import { sharedAvailable } from '../platform/host.js';

/** @internal */
export interface CoreExports {
  init(flags: number, owner: number, id: number): number;
  attach(): number;
  check(): number;
  alloc(c: number): number;
  alloc_batch(c: number, out: number, n: number): number;
  free(off: number, c: number): number;
  free_batch(c: number, ptr: number, n: number): number;
  validate(off: number, c: number): number;
  trim(c: number, depth: number): number;
  release(): number;
  raw_alloc(n: number): number;
  raw_free(off: number): number;
  class_stat(c: number, field: number): number;
  arena_stat(field: number): number;
  close(): number;
  reopen(id: number): number;
  scavenge(out: number, max: number): number;
  scavenged(off: number): number;
  set_realm(tag: number): number;
  recover(dead: number): number;
  reclaim(dead: number): number;
  held(dead: number): number;
}


/** @internal */
export function checkMessage(code: number): string {
  return CHECK_MESSAGES[code] ?? `unknown core error ${code}`;
}

// ---- where the core comes from ------------------------------------------------------------------
//
// Four modules: threaded (shared memories) or single-threaded, release or debug. A bundle carries
// them one of two ways (scripts/build.js): inlined, compiled synchronously on first use; or as
// files next to the bundle (the browser bundle), which loadCore() fetches and compiles before the
// first MMSA. Either way a realm compiles each module once, and a worker that attaches an MMSA
// gets the compiled module in the share descriptor instead of fetching it again.

const FILES: readonly CoreFile[] = ['memsys.st.wasm', 'memsys.wasm', 'memsys.st.debug.wasm', 'memsys.debug.wasm'];
const fileOf = (shared: boolean, debug: boolean): CoreFile => FILES[(shared ? 1 : 0) | (debug ? 2 : 0)];
const modules = new Map<CoreFile, WebAssembly.Module>();

const EXPORTS: readonly (keyof CoreExports)[] = [
  'init', 'attach', 'check', 'alloc', 'alloc_batch', 'free', 'free_batch', 'validate', 'trim',
  'release', 'raw_alloc', 'raw_free', 'class_stat', 'arena_stat', 'close',
];

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The compiled core for shared (threaded build) or plain memories, release or debug.
/** @internal */
export function coreModule(shared: boolean, debug: boolean): WebAssembly.Module {
  const file = fileOf(shared, debug);
  let m = modules.get(file);
  if (m) return m;
  if (!inlined) {
    throw new MemsysError('ERR_MEMSYS_STATE', `the core ${file} is not loaded: this bundle fetches it, so await loadCore(${debug ? '{ debug: true }' : ''}) before the first MMSA (or import memsys/inline)`);
  }
  m = new WebAssembly.Module(decode(inlined[file]));
  modules.set(file, m);
  return m;
}

// A compiled module that came with a share descriptor (see above), for shared memories; false if
// it is not a threaded memsys core. The caller adopts it only once the whole descriptor is good.
/** @internal */
export function adoptCore(m: WebAssembly.Module, debug: boolean): boolean {
  if (!isCore(m, true)) return false;
  const file = fileOf(true, debug);
  if (!modules.has(file)) modules.set(file, m);
  return true;
}

// Whether `m` is a memsys core for shared (threaded build) or plain memories. The four builds
// export and import the same names; only the memory's sharedness tells the threaded pair from the
// single-threaded one, and linking is the one check the JS API offers, so the module is linked
// once against a one-page memory. (Debug and release differ only in optimisation and asserts:
// debug checks are a flag in the arena's header.)
function isCore(m: WebAssembly.Module, shared: boolean): boolean {
  const names = new Set(WebAssembly.Module.exports(m).map((e) => e.name));
  const imports = WebAssembly.Module.imports(m);
  if (!(EXPORTS.every((n) => names.has(n)) && imports.length === 1 && imports[0].module === 'env' && imports[0].name === 'memory')) return false;
  try {
    new WebAssembly.Instance(m, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared }) } });
    return true;
  } catch {
    return false;
  }
}

/** What loadCore() loads, and from where. */
export interface LoadCoreOptions {
  /** Also load the debug modules (MMSAs made with `debug: true`). Default false. */
  debug?: boolean;
  /**
   * The directory URL the `.wasm` files are served from, ending in "/" (relative to the page).
   * Default: next to the bundle; in a bundle with inlined modules, those.
   */
  base?: string | URL;
}

/**
 * Compiles the core modules this realm's MMSAs need, off the main thread where the engine can,
 * and resolves when they are ready. The browser bundle must call it before the first MMSA (until
 * then `mm.init()` throws ERR_MEMSYS_STATE); with the inlined modules (Node, `memsys/inline`) it
 * is optional: it only moves the compile out of the first MMSA's way. Concurrent calls share one
 * fetch; the threaded modules are loaded only where memories can be shared.
 *
 * Rejects with ERR_MEMSYS_INVALID_ARG for bad options (a `base` that is no URL or not a
 * directory), and with ERR_MEMSYS_CORE_FETCH, naming the URL, when a module cannot be fetched or
 * is not a memsys core.
 */
export async function loadCore(options: LoadCoreOptions = {}): Promise<void> {
  if (typeof options !== 'object' || options === null) throw invalidArg('options', options, 'must be an object');
  const { debug = false, base } = options;
  if (typeof debug !== 'boolean') throw invalidArg('option debug', debug, 'must be a boolean');
  let dir: URL | undefined;
  if (base !== undefined) {
    if (typeof base !== 'string' && !(base instanceof URL)) throw invalidArg('option base', base, 'must be a string or a URL');
    try {
      dir = new URL(base, (globalThis as { location?: { href: string } }).location?.href);
    } catch {
      throw invalidArg('option base', String(base), 'is not a URL (nor a path relative to the page)');
    }
    if (!dir.pathname.endsWith('/')) throw invalidArg('option base', dir.href, 'must be a directory: end it with "/"');
  }
  // The threaded builds only where memories can be shared: elsewhere they are of no use, and an
  // engine may refuse even the one-page shared memory isCore links them against (SpiderMonkey in
  // a page that is not cross-origin isolated).
  const want = FILES.filter((_, i) => (debug || i < 2) && (sharedAvailable() || (i & 1) === 0));
  await Promise.all(want.map((f) => modules.get(f) ?? loadFile(f, dir)));
}

// One load per file and place at a time: concurrent loadCore() calls share it; a failed one is
// forgotten.
const loading = new Map<string, Promise<WebAssembly.Module>>();

function loadFile(file: CoreFile, dir: URL | undefined): Promise<WebAssembly.Module> {
  const key = `${dir?.href ?? ''} ${file}`;
  let p = loading.get(key);
  if (!p) {
    p = compileCore(file, dir).then((m) => {
      if (!modules.has(file)) modules.set(file, m); // a module adopted meanwhile stays
      return modules.get(file)!;
    }).finally(() => loading.delete(key));
    loading.set(key, p);
  }
  return p;
}

async function compileCore(file: CoreFile, dir: URL | undefined): Promise<WebAssembly.Module> {
  if (inlined && !dir) return WebAssembly.compile(decode(inlined[file]));
  let url: URL;
  try {
    url = dir ? new URL(file, dir) : coreUrl!(file);
  } catch (e) {
    // import.meta.url is empty where a bundler wrote a script rather than a module (esbuild's iife).
    throw new MemsysError('ERR_MEMSYS_CORE_FETCH', `cannot tell where the core ${file} is: ${(e as Error).message} (no import.meta.url in this bundle? pass loadCore({ base }) or import memsys/inline)`);
  }
  const failed = (why: string) => new MemsysError('ERR_MEMSYS_CORE_FETCH', `cannot load the core from ${url.href}: ${why}`);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw failed((e as Error).message);
  }
  if (!res.ok) throw failed(`HTTP ${res.status}`);
  let m: WebAssembly.Module;
  try {
    // Streaming compile needs the application/wasm type; a server that sends another gets the
    // bytes compiled whole.
    m = res.headers.get('content-type')?.startsWith('application/wasm')
      ? await WebAssembly.compileStreaming(res)
      : await WebAssembly.compile(await res.arrayBuffer());
  } catch (e) {
    throw failed((e as Error).message);
  }
  const shared = (FILES.indexOf(file) & 1) === 1;
  if (!isCore(m, shared)) throw failed(`not a memsys core for ${shared ? 'shared' : 'plain'} memories (its imports, exports or memory differ)`);
  return m;
}

/** @internal */
export function instantiate(memory: WebAssembly.Memory, shared: boolean, debug: boolean): CoreExports {
  const inst = new WebAssembly.Instance(coreModule(shared, debug), { env: { memory } });
  return inst.exports as unknown as CoreExports;
}
