// Frees the fast path cannot prove: what is wrong with a buffer handed to free(), named exactly,
// and the checks that tell a whole buffer posted from another realm from a part of one.

import { granuleOf, onGranule } from '../core/granule.js';
import { MemsysError } from '../errors.js';
import { classSize } from '../sizes.js';

export function describe(buf: Uint8Array): string {
  return `Uint8Array(${buf.byteLength}) at offset ${buf.byteOffset}`;
}

export function notOwned(buf: Uint8Array, why: string): MemsysError {
  return new MemsysError('ERR_MEMSYS_NOT_OWNED', `cannot free ${describe(buf)}: ${why}`);
}

export function notLive(buf: Uint8Array): MemsysError {
  return new MemsysError('ERR_MEMSYS_NOT_LIVE', `cannot free ${describe(buf)}: it is not in use (a double free, or a view kept after free)`);
}

export function wrongSlab(buf: Uint8Array, slabSize: number, size: number): MemsysError {
  return new MemsysError('ERR_MEMSYS_WRONG_SLAB', `cannot free ${describe(buf)} to the ${slabSize}-byte slab: it is a ${size}-byte buffer`);
}

export function handedOff(buf: Uint8Array): MemsysError {
  return new MemsysError('ERR_MEMSYS_MOVED', `the ${buf.length}-byte buffer was handed off to another realm; free it there`);
}

// A posted view of a whole buffer is that buffer: its class (from the state byte at its start), or
// why it is only a part of one.
// `state`: its arena's state table.
export function postedClass(buf: Uint8Array, state: Uint8Array): number | string {
  const off = buf.byteOffset;
  const s = state[granuleOf(off)];
  if (!onGranule(off) || (s & 3) === 0) return `offset ${off} is not the start of a buffer (a subarray?)`;
  const size = classSize(s >>> 2);
  if (buf.byteLength !== size) return `it is ${buf.byteLength} bytes of a ${size}-byte buffer (a subarray?)`;
  return s >>> 2;
}

