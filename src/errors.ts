// Typed errors with stable codes, as in Node's lib/internal/errors: callers branch on `code`,
// people read `message`, which always names the bad value and the rule it broke.

export type MemsysErrorCode =
  | 'ERR_MEMSYS_INVALID_ARG'        // wrong type or shape of an argument or option
  | 'ERR_MEMSYS_INVALID_SIZE'       // a size that is not an integer, out of range, or not a class
  | 'ERR_MEMSYS_SIZE_TOO_LARGE'     // above the largest slab: use an SGL
  | 'ERR_MEMSYS_NOT_OWNED'          // a buffer this MMSA did not hand out (foreign, subarray, other MMSA)
  | 'ERR_MEMSYS_NOT_LIVE'           // a buffer that is not in use: a double free
  | 'ERR_MEMSYS_WRONG_SLAB'         // a buffer freed to a slab of another size
  | 'ERR_MEMSYS_USE_AFTER_FREE'     // debug mode: a free buffer was written to
  | 'ERR_MEMSYS_ENV'                // an environment variable that does not parse
  | 'ERR_MEMSYS_INSUFFICIENT_MEMORY'// less free memory than the configured minimum
  | 'ERR_MEMSYS_OUT_OF_MEMORY'      // a new arena could not be created
  | 'ERR_MEMSYS_BUDGET'             // a new arena would take the pool above its budget's ceiling
  | 'ERR_MEMSYS_STATE'              // used before init, after terminate, or not shareable
  | 'ERR_MEMSYS_DESCRIPTOR'         // a share or handoff descriptor that is not one
  | 'ERR_MEMSYS_SGL_FREED'          // a write to (or seek in) an SGL after free()
  | 'ERR_MEMSYS_MOVED'              // an SGL or buffer used after it was handed off, or a handoff received twice
  | 'ERR_MEMSYS_STREAM'             // a stream destination that closed early
  | 'ERR_MEMSYS_UNSUPPORTED'        // a feature this entry or platform lacks
  | 'ERR_MEMSYS_CORE_FETCH'        // a core module that could not be fetched, or is not a memsys core
  | 'ERR_MEMSYS_BUSY'              // an arena stayed locked by another realm (one that may have died); retry
  | 'ERR_MEMSYS_CORE';              // the core reported a broken invariant (a bug)

export class MemsysError extends Error {
  readonly code: MemsysErrorCode;
  constructor(code: MemsysErrorCode, message: string) {
    super(`memsys: ${message}`);
    this.name = 'MemsysError';
    this.code = code;
  }
}

export class MemsysRangeError extends RangeError {
  readonly code: MemsysErrorCode;
  constructor(code: MemsysErrorCode, message: string) {
    super(`memsys: ${message}`);
    this.name = 'MemsysRangeError';
    this.code = code;
  }
}

export class MemsysTypeError extends TypeError {
  readonly code: MemsysErrorCode;
  constructor(code: MemsysErrorCode, message: string) {
    super(`memsys: ${message}`);
    this.name = 'MemsysTypeError';
    this.code = code;
  }
}

// How a value appears in a message: strings quoted, everything else as JavaScript prints it.
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

export function invalidArg(what: string, v: unknown, rule: string): MemsysTypeError {
  return new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `${what} ${show(v)} ${rule}`);
}

export function invalidSize(what: string, v: unknown, rule: string): MemsysRangeError {
  return new MemsysRangeError('ERR_MEMSYS_INVALID_SIZE', `${what} ${show(v)} ${rule}`);
}

// True if v is an integer lo … hi: the one range rule of options, descriptors and handoffs.
export function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= lo && v <= hi;
}
