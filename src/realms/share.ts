// The share descriptor: what a realm posts to a worker so that the worker's MMSA.attach() joins
// the same pool (its control block, its arenas, its compiled core).

import { show } from '../errors.js';
import type { BudgetOptions } from '../policy/budget.js';
import { CONTROL_BYTES } from '../pool/control.js';
import { DescriptorCheck } from './descriptor.js';

/** What `mm.share()` returns: post it to a worker and pass it to `MMSA.attach` there. */
export interface ShareDescriptor {
  /** Tells a share descriptor from other messages. */
  kind: 'memsys.mmsa';
  /** The descriptor's format version. */
  v: 1;
  /** The pool's id, the same in every realm. */
  id: number;
  /** The sharer's `name` option (the attaching MMSA takes the sharer's options as its own). */
  name: string;
  /** The sharer's `small` option. */
  small: boolean;
  /** The sharer's `defaultSize`, bytes. */
  defaultSize: number;
  /** The sharer's `arenaSize`, bytes. */
  arenaSize: number;
  /** The sharer's `magazineBytes`. */
  magazineBytes: number;
  /** The sharer's housekeeping interval, ms. */
  timeIval: number;
  /** The sharer's debug mode (every realm's core modules must match it). */
  debug: boolean;
  /** The pool's control block (counters, tickets, realms: pool/control.ts). */
  control: SharedArrayBuffer;
  /** The arenas the sharer knows; later ones are announced. */
  arenas: WebAssembly.Memory[];
  /** The sharer's minimum free memory, bytes, so that every realm reports the same levels. */
  minFree?: number;
  /** The sharer's low watermark, bytes. */
  lowWM?: number;
  /** The sharer's budget: every realm holds the pool to it. */
  budget?: BudgetOptions;
  /** The compiled core, so that an attaching realm need not fetch or compile it again. */
  core?: WebAssembly.Module;
}

/** @internal */
export const shareCheck = new DescriptorCheck('a share descriptor', 'mm.share()');

// The parts attach() takes as they are; the options in it are checked as options by the MMSA made.
/** @internal */
export function checkDescriptor(d: ShareDescriptor): void {
  const o = shareCheck.shape(d, ['memsys.mmsa']);
  const bad = (why: string) => shareCheck.bad(why);
  if (!(o.control instanceof SharedArrayBuffer)) throw bad('control is not a SharedArrayBuffer');
  if (!Array.isArray(o.arenas) || !o.arenas.every((m) => m instanceof WebAssembly.Memory)) throw bad('arenas is not a list of WebAssembly.Memory');
  if (o.control.byteLength !== CONTROL_BYTES) throw bad(`control is ${o.control.byteLength} bytes, not ${CONTROL_BYTES}`);
  if (o.core !== undefined && !(o.core instanceof WebAssembly.Module)) throw bad(`core ${show(o.core)} is not a WebAssembly.Module`);
  shareCheck.int(o, 'id', 1, 0xffffffff, 'a pool id (an integer 1 … 2^32 − 1)');
  for (const k of ['minFree', 'lowWM'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw bad(`${k} ${show(v)} is not a number of bytes`);
  }
}
