// The core keeps its per-slot tables by 128-byte granule: a buffer starts on a granule, its state
// byte is `state[granule]` and its owner entry `owners[granule]`. A granule index of a 4 GiB arena
// needs 25 bits, so offsets are made by multiplying (a shift by 7 would overflow past 2 GiB).

import { GRANULE_SHIFT } from '#abi';

export const GRANULE = 1 << GRANULE_SHIFT;

// The granule index of a byte offset (offsets of an arena are below 2^32).
export function granuleOf(off: number): number {
  return off >>> GRANULE_SHIFT;
}

// The byte offset of granule `g`.
export function offsetOf(g: number): number {
  return g * GRANULE;
}

// True if `off` is where a granule starts (a buffer can start there).
export function onGranule(off: number): boolean {
  return off % GRANULE === 0;
}

// How many granules `bytes` hold.
export function granules(bytes: number): number {
  return Math.floor(bytes / GRANULE);
}
