// The core module: compiling it once per realm and binding an instance to an arena's memory.
// The ABI is documented in docs/abi.md; this is its TypeScript face.
//
// Plain WebAssembly APIs, not @assemblyscript/loader: the core's ABI is numbers only (no strings,
// arrays or managed objects to lift and lower) and it never traps; its errors are return codes,
// which arena.ts turns into typed errors. The loader would add ~3 KB and a per-call shim for none
// of that. (docs/architecture.md)

import * as wasm from '#core';

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
}

// Return codes (assembly/index.ts, assembly/check.ts).
export const E_CLASS = -1;
export const E_OFFSET = -2;
export const E_NOT_SLOT = -3;
export const E_WRONG_CLASS = -4;
export const E_NOT_OUT = -5;
export const E_FORMAT = -6;
export const E_TOO_SMALL = -7;
export const E_ARG = -8;
export const FLAG_DEBUG = 1;
export const FLAG_CLOSED = 2;

export const CSTAT_RUNS = 3;
export const CSTAT_FREE = 4;
export const CSTAT_OUT = 5;
export const STAT_FREE_PAGES = 3;

// Slot state byte (assembly/layout.ts): class << 2 | FREE 1, OUT 2, LIVE 3.
export const ST_OUT = 2;
export const ST_LIVE = 3;

// Header words (u32 index) that any realm can read straight from an arena's buffer.
export const H_MAGIC = 0;
export const H_FLAGS = 5;
export const H_OWNER = 6;
export const H_ARENA = 7;
export const H_STATE = 52; // byte 208: offset of the slot state table
export const MAGIC = 0x41534d4d;

const CHECK_MESSAGES: Record<number, string> = {
  [-101]: 'a span\'s head and tail disagree',
  [-102]: 'a page inside a used span does not point to its head',
  [-103]: 'a slot\'s state or free bit is wrong',
  [-104]: 'a run\'s free count differs from its free slots',
  [-105]: 'a class\'s counters differ from its runs',
  [-106]: 'free or raw page totals differ from the page map',
  [-107]: 'a free-span list is inconsistent with the page map',
  [-108]: 'a class\'s list of runs with a free slot is wrong',
};

export function checkMessage(code: number): string {
  return CHECK_MESSAGES[code] ?? `unknown core error ${code}`;
}

const modules = new Map<string, WebAssembly.Module>();

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The compiled core for shared (threaded build) or plain memories, release or debug.
export function coreModule(shared: boolean, debug: boolean): WebAssembly.Module {
  const key = `${shared ? 'mt' : 'st'}${debug ? '-debug' : ''}`;
  let m = modules.get(key);
  if (!m) {
    const b64 = shared ? (debug ? wasm.threadedDebug : wasm.threaded) : (debug ? wasm.singleDebug : wasm.single);
    m = new WebAssembly.Module(decode(b64));
    modules.set(key, m);
  }
  return m;
}

export function instantiate(memory: WebAssembly.Memory, shared: boolean, debug: boolean): CoreExports {
  const inst = new WebAssembly.Instance(coreModule(shared, debug), { env: { memory } });
  return inst.exports as unknown as CoreExports;
}
