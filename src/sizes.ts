// Size classes on the JavaScript side (the table of assembly/classes.ts, through the generated
// `#abi`), and size strings.

import { NUM_CLASSES, NUM_SMALL, PAGE_STEP, SMALL_STEP } from '#abi';
import { MemsysRangeError, invalidSize } from './errors.js';

export { NUM_CLASSES, NUM_SMALL, PAGE_STEP, SMALL_STEP };

/** 1024 bytes. */
export const KiB = 1024;
/** 1024 KiB, bytes. */
export const MiB = 1024 * KiB;
/** 1024 MiB, bytes. */
export const GiB = 1024 * MiB;

/** @internal */
export const MAX_SMALL = NUM_SMALL * SMALL_STEP;               // 4 KiB
/** The largest buffer a slab hands out, bytes (128 KiB); larger data goes in an SGL. */
export const MAX_SIZE = (NUM_CLASSES - NUM_SMALL) * PAGE_STEP;
// Both steps are powers of two: fitClassOf divides by them with shifts.
const SMALL_SHIFT = 31 - Math.clz32(SMALL_STEP);
const PAGE_STEP_SHIFT = 31 - Math.clz32(PAGE_STEP);

/** The buffer size of size class `c`, bytes: classes 0 … 31 are 128 B … 4 KiB in steps of 128 B,
 * classes 32 … 63 are 4 KiB … 128 KiB in steps of 4 KiB (as `mm.stats().classes` lists them). */
export function classSize(c: number): number {
  return c < NUM_SMALL ? SMALL_STEP * (c + 1) : PAGE_STEP * (c - NUM_SMALL + 1);
}

// The class of buffers of exactly `size` bytes. 4 KiB is in both families: `small` picks which.
/** @internal */
export function exactClass(size: number, small: boolean): number {
  checkSize('size', size);
  if (size === 0 || size > MAX_SIZE) throw outOfRange(size);
  if (size < MAX_SMALL || (size === MAX_SMALL && small)) {
    if (size % SMALL_STEP === 0) return size / SMALL_STEP - 1;
  } else if (size % PAGE_STEP === 0) return NUM_SMALL + size / PAGE_STEP - 1;
  throw invalidSize('size', size,
    `is not a slab size: slabs are multiples of ${SMALL_STEP} B up to ${MAX_SMALL / KiB} KiB and of ${PAGE_STEP / KiB} KiB up to ${MAX_SIZE / KiB} KiB`);
}

// The smallest class whose buffers hold `n` bytes.
/** @internal */
export function fitClass(n: number, small: boolean): number {
  checkSize('size', n);
  if (n > MAX_SIZE) throw outOfRange(n);
  return fitClassOf(n, small);
}

// fitClass without the checks, for an integer 0 … MAX_SIZE (the allocSize fast path).
/** @internal */
export function fitClassOf(n: number, small: boolean): number {
  if (n < MAX_SMALL || (n === MAX_SMALL && small)) return n <= SMALL_STEP ? 0 : ((n + SMALL_STEP - 1) >>> SMALL_SHIFT) - 1;
  return NUM_SMALL - 1 + ((n + PAGE_STEP - 1) >>> PAGE_STEP_SHIFT);
}

// An SGL's buffer class for an expected size `imm` > 0, within one family (small: 128 B … 4 KiB;
// page: 4 KiB … 128 KiB): the smallest buffer that holds it, or above the family's largest, the
// smallest that holds a sixteenth of it (AIStore's countThreshold), capped at the largest.
/** @internal */
export function sglClass(imm: number, small: boolean): number {
  const [first, step, max] = small ? [0, SMALL_STEP, MAX_SMALL] : [NUM_SMALL, PAGE_STEP, MAX_SIZE];
  const want = Math.min(max, imm <= max ? imm : Math.ceil(imm / SGL_BUFFERS));
  return first + Math.max(0, Math.ceil(want / step) - 1);
}
const SGL_BUFFERS = 16;

function checkSize(what: string, n: unknown): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalidSize(what, n, 'must be a non-negative integer');
  }
}

function outOfRange(n: number): MemsysRangeError {
  if (n === 0) return invalidSize('size', n, `is not a slab size: the smallest slab is ${SMALL_STEP} B`);
  return new MemsysRangeError('ERR_MEMSYS_SIZE_TOO_LARGE',
    `size ${n} is above the largest slab (${MAX_SIZE} B): collect larger data in an SGL`);
}

/** Bytes in a size string: "2GiB", "2gb", "2G", "512MiB", "1.5k", "1048576" (bytes). Units are
 * binary (k = 1024), as in AIStore; case and spaces do not matter. Undefined when the string is
 * not a size or the bytes are not a safe integer. */
export function parseSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) return undefined;
  const unit = { '': 1, k: KiB, m: MiB, g: GiB, t: 1024 * GiB }[m[2].toLowerCase() as '' | 'k'];
  const n = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `n` bytes for people: "512 B", "1.50 KiB", "64.0 MiB" (binary units; two decimals below 10,
 * one from 10 on). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
