// The platform's means of giving pages back: the one contract between the pool and the host's
// native helpers. A host that can discard pages in place (memsys/node's page helper) or ask its
// engine for a collection registers them here; the browser-safe code never learns how.

/** How the host gives free pages back (every member optional): what setPageOps() registers. */
export interface PageOps {
  /** Gives back `length` bytes at `offset` of the memory under `view` (whole 4 KiB pages) to the
   * kernel; lazy: MADV_FREE rather than MADV_DONTNEED. Returns 0 or an errno. */
  discard?(view: Uint8Array, offset: number, length: number, lazy: boolean): number;
  /** Asks the engine for a full collection, so that dropped memories really go. */
  collect?(): void;
  /** Why `discard` is missing, and how to get it (for `memsys doctor`). */
  missing?: string;
}

let ops: PageOps = {};

/** Registers how this realm gives pages back, replacing what was there (the Node entry registers
 * its native page helper and V8's collector); `{}` for neither. */
export function setPageOps(o: PageOps): void {
  ops = o;
}

/** What setPageOps() registered last (`{}` until then). */
export function pageOps(): PageOps {
  return ops;
}
