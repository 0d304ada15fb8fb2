// The global memory manager, as in AIStore: one page MMSA and one small-buffer MMSA per realm,
// set up once by init(). Specialised users create their own MMSAs instead.
//
// Parameters follow the AIStore README's global manager: MinPctFree 50 % (half of the memory free
// at init) and TimeIval 2 minutes; the environment (AIS_MINMEM_*) still takes precedence.

import { MMSA } from './mmsa.js';

let page: MMSA | undefined;
let byte: MMSA | undefined;
let firstError: Error | null = null;

/** Sets up both global MMSAs once ("memsys.gmm" for pages, "memsys.smm" for small buffers; 50 %
 * of the memory free at init kept free, housekeeping every 2 minutes) and returns the page MMSA;
 * later calls return it as it is. An init error (ERR_MEMSYS_INSUFFICIENT_MEMORY, ERR_MEMSYS_ENV)
 * is thrown when `panicOnErr`, otherwise kept in initError(); the MMSAs work either way. */
export function init(panicOnErr = false): MMSA {
  if (page && byte) return page;
  const p = new MMSA({ name: 'memsys.gmm', minPctFree: 50, timeIval: 120_000 });
  const s = new MMSA({ name: 'memsys.smm', small: true, minPctFree: 50, timeIval: 120_000 });
  const e1 = p.init(false);
  const e2 = s.init(false);
  firstError = e1 ?? e2;
  page = p;
  byte = s;
  if (firstError && panicOnErr) throw firstError;
  return p;
}

/** The first init error of the global MMSAs, or null. */
export function initError(): Error | null {
  return firstError;
}

/** The global page MMSA (default buffer 32 KiB), set up by init() on first use. */
export function pageMM(): MMSA {
  return page ?? (init(), page!);
}

/** The global small-buffer MMSA (default buffer 1 KiB), set up by init() on first use. */
export function byteMM(): MMSA {
  return byte ?? (init(), byte!);
}
