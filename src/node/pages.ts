// The Node side of giving memory back (giveback.ts): the native page helper (native/pages.c,
// built by `npm install` where a C compiler and Node's headers exist) and V8's collector. The
// helper also finds and binds memory for NUMA placement (mover.ts).
//
// Without the helper, dropped arenas go only when V8 collects them; `gc` is not exposed unless
// Node runs with --expose-gc, so it is taken from a fresh context after turning the flag on,
// which V8 allows at run time for this flag (measured: a 4.5 ms collection on a small heap, the
// memory back within 500 ms as its backing store is freed on a background thread).

import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { PageOps } from '../platform/pages.js';

type Native = { discard(view: Uint8Array, offset: number, length: number, lazy: number): number } & Partial<NativeNuma>;

/** The native page helper's NUMA calls, which act on this process only. */
export interface NativeNuma {
  /** The address of the view's first byte in this process. */
  address(view: Uint8Array): number;
  /** Binds [offset, offset + length) of the memory under `view` (whole 4 KiB pages) to `node`
   * (MPOL_BIND); `move` also migrates the pages already there (MPOL_MF_MOVE). 0 or an errno. */
  mbind(view: Uint8Array, offset: number, length: number, node: number, move: boolean): number;
}

let loaded: { native?: Native; missing?: string } | undefined;

function load(): { native?: Native; missing?: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') {
    loaded = { missing: `the native page helper is Linux-only (this is ${process.platform})` };
  } else {
    try {
      loaded = { native: createRequire(import.meta.url)('#pages') as Native };
    } catch (e) {
      loaded = {
        missing: `the native page helper is not built (${(e as Error).message.split('\n')[0]}): ` +
          'install a C compiler (apt-get install gcc) and run `npm run build` in the memsys package',
      };
    }
  }
  return loaded;
}

/** The helper's NUMA calls, or why there are none (`missing`). */
export function nativeNuma(): { numa?: NativeNuma; missing?: string } {
  const { native, missing } = load();
  if (!native) return { missing };
  if (typeof native.address !== 'function' || typeof native.mbind !== 'function') {
    return { missing: 'the native page helper was built from an older native/pages.c without address() and mbind(): run `npm run build` in the memsys package' };
  }
  return { numa: { address: native.address, mbind: native.mbind } };
}

export function nodePageOps(): PageOps {
  const { native, missing } = load();
  const ops: PageOps = { collect: collector() };
  if (native) {
    const n = native;
    ops.discard = (view, offset, length, lazy) => n.discard(view, offset, length, lazy ? 1 : 0);
  } else {
    ops.missing = missing;
  }
  return ops;
}

function collector(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return () => g();
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? () => (gc as () => void)() : undefined;
  } catch {
    return undefined;
  }
}
