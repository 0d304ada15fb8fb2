// Typed errors with stable codes, as in Node's lib/internal/errors: callers branch on `code`,
// people read `message`, which always names the bad value and the rule it broke.

/**
 * The stable code of every memsys error (`err.code`), to branch on:
 * - `ERR_MEMSYS_INVALID_ARG`: wrong type or shape of an argument or option;
 * - `ERR_MEMSYS_INVALID_SIZE`: a size that is not an integer, out of range, or not a class;
 * - `ERR_MEMSYS_SIZE_TOO_LARGE`: above the largest slab (128 KiB): use an SGL;
 * - `ERR_MEMSYS_NOT_OWNED`: a buffer this MMSA did not hand out (foreign, a subarray, another MMSA's);
 * - `ERR_MEMSYS_NOT_LIVE`: a buffer that is not in use: a double free;
 * - `ERR_MEMSYS_WRONG_SLAB`: a buffer freed to a slab of another size;
 * - `ERR_MEMSYS_USE_AFTER_FREE`: debug mode: a free buffer was written to;
 * - `ERR_MEMSYS_ENV`: an environment variable (AIS_MINMEM_*) that does not parse;
 * - `ERR_MEMSYS_INSUFFICIENT_MEMORY`: less free memory than the configured minimum;
 * - `ERR_MEMSYS_OUT_OF_MEMORY`: a new arena could not be created;
 * - `ERR_MEMSYS_BUDGET`: a new arena would take the pool above its budget's ceiling;
 * - `ERR_MEMSYS_STATE`: used before init, after terminate, or not shareable;
 * - `ERR_MEMSYS_DESCRIPTOR`: a share or handoff descriptor that is not one;
 * - `ERR_MEMSYS_SGL_FREED`: a write to (or seek in) an SGL after free();
 * - `ERR_MEMSYS_MOVED`: an SGL or buffer used after it was handed off, or a handoff received twice;
 * - `ERR_MEMSYS_STREAM`: a stream destination that closed early;
 * - `ERR_MEMSYS_BODY_TOO_LARGE`: a request body above its limit (HTTP 413; memsys/node's readBody);
 * - `ERR_MEMSYS_BODY`: a request body cut short, unlike its Content-Length, or not valid data of its
 *   Content-Encoding (HTTP 400);
 * - `ERR_MEMSYS_BODY_ENCODING`: a request body in a Content-Encoding readBody does not decode (HTTP 415);
 * - `ERR_MEMSYS_UNSUPPORTED`: a feature this entry or platform lacks;
 * - `ERR_MEMSYS_NUMA`: a NUMA node, process or address range that cannot be placed or moved (named, with why);
 * - `ERR_MEMSYS_CORE_FETCH`: a core module that could not be fetched, or is not a memsys core;
 * - `ERR_MEMSYS_ABI`: an arena made by a core of another ABI version (two memsys versions in one pool);
 * - `ERR_MEMSYS_BUSY`: an arena stayed locked by another realm (one that may have died): retry;
 * - `ERR_MEMSYS_SIDECAR`: the NUMA sidecar answered an error, died, or did not answer in time;
 * - `ERR_MEMSYS_CORE`: the core reported a broken invariant (a bug).
 */
export type MemsysErrorCode =
  | 'ERR_MEMSYS_INVALID_ARG'
  | 'ERR_MEMSYS_INVALID_SIZE'
  | 'ERR_MEMSYS_SIZE_TOO_LARGE'
  | 'ERR_MEMSYS_NOT_OWNED'
  | 'ERR_MEMSYS_NOT_LIVE'
  | 'ERR_MEMSYS_WRONG_SLAB'
  | 'ERR_MEMSYS_USE_AFTER_FREE'
  | 'ERR_MEMSYS_ENV'
  | 'ERR_MEMSYS_INSUFFICIENT_MEMORY'
  | 'ERR_MEMSYS_OUT_OF_MEMORY'
  | 'ERR_MEMSYS_BUDGET'
  | 'ERR_MEMSYS_STATE'
  | 'ERR_MEMSYS_DESCRIPTOR'
  | 'ERR_MEMSYS_SGL_FREED'
  | 'ERR_MEMSYS_MOVED'
  | 'ERR_MEMSYS_STREAM'
  | 'ERR_MEMSYS_BODY_TOO_LARGE'
  | 'ERR_MEMSYS_BODY'
  | 'ERR_MEMSYS_BODY_ENCODING'
  | 'ERR_MEMSYS_UNSUPPORTED'
  | 'ERR_MEMSYS_NUMA'
  | 'ERR_MEMSYS_CORE_FETCH'
  | 'ERR_MEMSYS_ABI'
  | 'ERR_MEMSYS_BUSY'
  | 'ERR_MEMSYS_SIDECAR'
  | 'ERR_MEMSYS_CORE';

/** An error memsys throws (or returns, as `mm.init()` does); `message` names the bad value and
 * the rule it broke, prefixed "memsys: ". */
export class MemsysError extends Error {
  /** What went wrong, stable across versions. */
  readonly code: MemsysErrorCode;
  /** An error with `code`; the message is prefixed "memsys: ". */
  constructor(code: MemsysErrorCode, message: string) {
    super(`memsys: ${message}`);
    this.name = 'MemsysError';
    this.code = code;
  }
}

/** A memsys error that is a RangeError: a size out of range (ERR_MEMSYS_INVALID_SIZE,
 * ERR_MEMSYS_SIZE_TOO_LARGE). */
export class MemsysRangeError extends RangeError {
  /** What went wrong, stable across versions. */
  readonly code: MemsysErrorCode;
  /** An error with `code`; the message is prefixed "memsys: ". */
  constructor(code: MemsysErrorCode, message: string) {
    super(`memsys: ${message}`);
    this.name = 'MemsysRangeError';
    this.code = code;
  }
}

/** A memsys error that is a TypeError: an argument or option of the wrong type or shape
 * (ERR_MEMSYS_INVALID_ARG), or a descriptor that is not one (ERR_MEMSYS_DESCRIPTOR). */
export class MemsysTypeError extends TypeError {
  /** What went wrong, stable across versions. */
  readonly code: MemsysErrorCode;
  /** An error with `code`; the message is prefixed "memsys: ". */
  constructor(code: MemsysErrorCode, message: string) {
    super(`memsys: ${message}`);
    this.name = 'MemsysTypeError';
    this.code = code;
  }
}

// How a value appears in a message: strings quoted, everything else as JavaScript prints it.
/** @internal */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `Uint8Array(${v.byteLength})`;
  if (typeof v === 'object' && v !== null) {
    try {
      return v.constructor?.name ?? 'object';
    } catch {
      return 'object'; // a Proxy or getter that throws: the message must not
    }
  }
  return typeof v === 'symbol' ? v.toString() : String(v);
}

/** @internal */
export function invalidArg(what: string, v: unknown, rule: string): MemsysTypeError {
  return new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `${what} ${show(v)} ${rule}`);
}

/** @internal */
export function invalidSize(what: string, v: unknown, rule: string): MemsysRangeError {
  return new MemsysRangeError('ERR_MEMSYS_INVALID_SIZE', `${what} ${show(v)} ${rule}`);
}

// True if v is an integer lo … hi: the one range rule of options, descriptors and handoffs.
/** @internal */
export function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= lo && v <= hi;
}
