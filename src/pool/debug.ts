// Debug mode: every free buffer holds DEADBEEF, so a write after free shows as a word that is not
// the pattern when the buffer is next handed out; the error names the arena, offset and byte.
// Zero is accepted too: pages never used, or given back to the OS, read as zero.

import { type Arena, DEADBEEF } from '../core/arena.js';
import { MemsysError } from '../errors.js';
import { MAX_SIZE } from '../sizes.js';


// The pattern, once per pool (a largest buffer's worth, copied with one set()).
export function deadbeef(): Uint32Array {
  return new Uint32Array(MAX_SIZE / 4).fill(DEADBEEF);
}

export function poison(v: Uint8Array, pattern: Uint32Array): void {
  new Uint32Array(v.buffer, v.byteOffset, v.byteLength >>> 2).set(pattern.subarray(0, v.byteLength >>> 2));
}

// The error for a free buffer written at some word, or undefined if it still holds the pattern.
// `zeroOk`: a slot taken from the core may read zero (fresh or given-back pages); a view cached in
// a magazine was poisoned when it went there, so it must hold DEADBEEF exactly.
export function writtenWhileFree(a: Arena, off: number, size: number, zeroOk: boolean): MemsysError | undefined {
  const w = new Uint32Array(a.buffer, off, size >>> 2);
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    if (x !== DEADBEEF && !(zeroOk && x === 0)) {
      return new MemsysError('ERR_MEMSYS_USE_AFTER_FREE', zeroOk
        ? `buffer at offset ${off} of arena ${a.id} was written at byte ${i * 4} while free (after it went back to the arena)`
        : `buffer at offset ${off} of arena ${a.id} was written at byte ${i * 4} while free`);
    }
  }
  return undefined;
}
