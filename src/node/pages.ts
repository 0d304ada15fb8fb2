// The Node side of giving memory back (giveback.ts): the native page helper (native/pages.c,
// built by `npm install` where a C compiler and Node's headers exist) and V8's collector.
//
// Without the helper, dropped arenas go only when V8 collects them; `gc` is not exposed unless
// Node runs with --expose-gc, so it is taken from a fresh context after turning the flag on,
// which V8 allows at run time for this flag (measured: a 4.5 ms collection on a small heap, the
// memory back within 500 ms as its backing store is freed on a background thread).

import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { PageOps } from '../platform/pages.js';

type Native = { discard(view: Uint8Array, offset: number, length: number, lazy: number): number };

export function nodePageOps(): PageOps {
  let native: Native | undefined;
  let missing: string | undefined;
  if (process.platform !== 'linux') {
    missing = `the native page helper is Linux-only (this is ${process.platform})`;
  } else {
    try {
      native = createRequire(import.meta.url)('#pages') as Native;
    } catch (e) {
      missing = `the native page helper is not built (${(e as Error).message.split('\n')[0]}): ` +
        'install a C compiler (apt-get install gcc) and run `npm run build` in the memsys package';
    }
  }
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
