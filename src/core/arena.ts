// An arena: one WebAssembly.Memory that never grows, and this realm's core instance over it.
//
// The memory's initial size is its maximum, so its buffer never detaches and every view handed
// out stays valid for the arena's life. Shared arenas are reached from several realms (workers);
// each realm has its own Arena object and core instance over the same memory, and they find
// each other's arenas by the ids in the header (owner = MMSA id, arena id).
//
//   this realm                          linear memory (see assembly/layout.ts)
//   ┌────────────┐   scratch  ┌───────┬──────────┬────────────┬──────────────────────┐
//   │ Arena      │──────────▶ │header │ tables   │ state bytes│ data … [scratch page]│
//   │  core      │            └───────┴──────────┴────────────┴──────────────────────┘
//   │  state ────┼──────────────────────────────▶ one byte per 128 B, read and written by the
//   └────────────┘                                magazines without calling the core
//
// The scratch page is this realm's own raw span: batch calls pass their offsets through it.
//
// The owner table (a u16 per 128-byte granule, its offset in header word W_OWNERS) names the
// realm (tag mod 65536) that last took each slot: the core writes it when it hands a slot out, a
// realm writes it when it takes a buffer over outside the core (a posted buffer freed into its
// magazine, a handoff received). When a realm dies, the core gives back its OUT slots (they were
// in its magazines) and counts its LIVE ones (in its user's hands, or passed on).

import {
  CSTAT_OUT, E_ARG, E_BUSY, E_CLASS, E_NOT_OUT, E_NOT_SLOT, E_OFFSET, E_WRONG_CLASS, FLAG_CLOSED, FLAG_DEBUG, FLAG_QUARANTINED,
  ABI_VERSION, MAGIC, NUM_CLASSES, PAGE_SHIFT, STAT_CLEAN_PAGES, STAT_FREE_PAGES, W_ABI, W_ARENA, W_FLAGS, W_LOCK, W_MAGIC, W_OWNER,
  W_OWNERS, W_STATE, WASM_PAGE_SHIFT,
} from '#abi';
import { granuleOf, granules } from './granule.js';
import { type CoreExports, checkMessage, instantiate } from './module.js';
import { MemsysError } from '../errors.js';
import { formatBytes } from '../sizes.js';

/** @internal */
export const PAGE = 1 << PAGE_SHIFT;
/** @internal */
export const WASM_PAGE = 1 << WASM_PAGE_SHIFT;
/** @internal */
export const BATCH_MAX = PAGE / 4; // offsets that fit in one scratch page
const STUCK_MS = 100;
// The owner table keeps the low 16 bits of a realm's tag.
/** @internal */
export const OWNER_MASK = 0xffff;
// Debug mode's pattern for free memory: the little-endian bytes DE AD BE EF.
/** @internal */
export const DEADBEEF = 0xefbeadde;

/** @internal */
export class Arena {
  id: number;                        // changes only when a closed arena is reopened (retired reuse)
  readonly bytes: number;
  readonly shared: boolean;
  memory: WebAssembly.Memory | undefined;
  core: CoreExports | undefined;     // undefined while only a posted buffer of it has been seen
  buffer: ArrayBufferLike;
  state: Uint8Array;
  u32: Uint32Array;
  u8: Uint8Array;                    // the whole memory: SGLs copy through it by offset
  private scratch = 0;               // byte offset of this realm's scratch page, 0 until needed
  private readonly debug: boolean;
  private readonly realm: number;    // this realm's tag in the lock word
  // Asked when the lock stayed taken (E_BUSY): true if the holder was found dead and the lock
  // recovered, so that the call is worth one more try.
  onBusy: ((a: Arena) => boolean) | undefined;
  reused = false;                    // reopened after it was dropped (may hold less than a fresh one)
  private owners: Uint16Array | undefined;

  private constructor(id: number, buffer: ArrayBufferLike, shared: boolean, debug: boolean, realm: number) {
    this.id = id;
    this.realm = realm;
    this.bytes = buffer.byteLength;
    this.shared = shared;
    this.debug = debug;
    this.buffer = buffer;
    this.u32 = new Uint32Array(buffer);
    this.u8 = new Uint8Array(buffer);
    // state[granuleOf(offset)] is the state byte of the buffer at `offset` (the table's place
    // is in the header; for an arena being created it is known once init has run).
    this.state = new Uint8Array(0);
  }

  private mapState(): void {
    this.state = stateTable(this.buffer);
    const owners = Atomics.load(this.u32, W_OWNERS);
    this.owners = owners ? new Uint16Array(this.buffer, owners, granules(this.bytes)) : undefined;
  }

  // A new arena of `bytes` (a multiple of 64 KiB). A RangeError from the engine (no address space,
  // a memory limit) becomes ERR_MEMSYS_OUT_OF_MEMORY; the caller's state is untouched.
  static create(bytes: number, shared: boolean, debug: boolean, owner: number, id: number, realm: number): Arena {
    const pages = bytes / WASM_PAGE;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    } catch (e) {
      throw new MemsysError('ERR_MEMSYS_OUT_OF_MEMORY',
        `cannot create a ${formatBytes(bytes)} arena: ${(e as Error).message}`);
    }
    const a = new Arena(id, memory.buffer, shared, debug, realm);
    a.memory = memory;
    a.core = instantiate(memory, shared, debug);
    a.core.set_realm(realm);
    const r = a.core.init(debug ? FLAG_DEBUG : 0, owner, id);
    if (r !== 0) throw new MemsysError('ERR_MEMSYS_CORE', `arena init failed with code ${r}`);
    a.mapState();
    return a;
  }

  // This realm's view of an arena another realm created (its memory arrived by postMessage).
  static adopt(memory: WebAssembly.Memory, debug: boolean, realm: number): Arena {
    const hdr = readHeader(memory.buffer);
    if (!hdr) throw new MemsysError('ERR_MEMSYS_DESCRIPTOR', 'memory is not a memsys arena (no header)');
    checkAbi(memory.buffer, hdr.id);
    const a = new Arena(hdr.id, memory.buffer, true, debug, realm);
    a.mapState();
    a.bind(memory);
    return a;
  }

  // An arena known only from a posted buffer's SharedArrayBuffer: its bytes and state can be used,
  // its core cannot be called until its memory arrives (bind).
  static fromBuffer(buffer: SharedArrayBuffer, id: number, debug: boolean, realm: number): Arena {
    checkAbi(buffer, id);
    const a = new Arena(id, buffer, true, debug, realm);
    a.mapState();
    return a;
  }

  bind(memory: WebAssembly.Memory): void {
    checkAbi(memory.buffer, this.id);
    if (this.buffer !== memory.buffer) {
      // A placeholder gets its memory: from now on new views are made over the memory's own
      // buffer, which the MMSA registers as local (the posted one stays "posted" for views that
      // came with it). Same bytes, so views made before stay valid.
      this.buffer = memory.buffer;
      this.u32 = new Uint32Array(memory.buffer);
      this.u8 = new Uint8Array(memory.buffer);
      this.mapState();
    }
    this.memory = memory;
    this.core = instantiate(memory, this.shared, this.debug);
    this.core.set_realm(this.realm);
    if (this.core.attach() !== 0) throw new MemsysError('ERR_MEMSYS_DESCRIPTOR', `arena ${this.id}: header or ABI mismatch`);
  }

  // This realm's scratch page, as a u32 index; -1 while the arena has no page to spare (the batch
  // calls then fall back to one call per buffer, which needs no array; a later call tries again).
  private scratchIndex(): number {
    if (this.scratch === 0) this.scratch = this.core!.raw_alloc(1) >>> 0;
    return this.scratch > 0 ? this.scratch >>> 2 : -1;
  }

  // Takes up to n (≤ BATCH_MAX) buffers of class c, each pushed as a slot: this arena onto
  // `arenas`, its offset onto `offs`. Returns how many.
  take(c: number, n: number, arenas: Arena[], offs: number[]): number {
    const core = this.core!;
    const at = this.scratchIndex();
    if (at < 0) {
      let got = 0;
      for (let off: number; got < n && (off = core.alloc(c) >>> 0) !== 0; got++) {
        arenas.push(this);
        offs.push(off);
      }
      return got;
    }
    const got = this.call(() => core.alloc_batch(c, at * 4, n));
    this.fail(got);
    const u32 = this.u32;
    for (let i = 0; i < got; i++) {
      arenas.push(this);
      offs.push(u32[at + i]);
    }
    return got;
  }

  // Gives back the n (≤ BATCH_MAX) buffers of class c at offs[from] … offs[from + n − 1].
  // Returns how many went back: fewer than n (the first ones) only when the arena stayed locked by
  // another realm; the caller keeps the rest.
  give(c: number, offs: ArrayLike<number>, from: number, n: number): number {
    const core = this.core!;
    const at = this.scratchIndex();
    if (at < 0) {
      for (let i = 0; i < n; i++) {
        const r = this.call(() => core.free(offs[from + i], c));
        if (r === E_BUSY) return i;
        this.fail(r);
      }
      return n;
    }
    const u32 = this.u32;
    // Filled inside the call: a retry after a recovered lock follows the 'arena-recovered'
    // listeners, and one that frees or allocates here uses this page too.
    const r = this.call(() => {
      for (let i = 0; i < n; i++) u32[at + i] = offs[from + i];
      return core.free_batch(c, at * 4, n);
    });
    if (r === E_BUSY) return 0;
    this.fail(r);
    return n;
  }

  // One core call; if the lock stayed taken and the holder was found dead and recovered, once more.
  // For STUCK_MS after a call found the lock stuck, a call that finds the same holder in the lock
  // word is not tried: a lock stuck by a realm not known dead would cost every call a full spin
  // (tens of ms). After that, or once the word changes, calls spin again (the same tag may have let
  // go and taken the lock again in between).
  private call(f: () => number): number {
    if (this.stuck !== 0 && Atomics.load(this.u32, W_LOCK) === this.stuck && performance.now() < this.stuckUntil &&
        !this.onBusy?.(this)) return E_BUSY;
    const r = f();
    if (r !== E_BUSY) { this.stuck = 0; return r; }
    this.stuck = Atomics.load(this.u32, W_LOCK);
    this.stuckUntil = performance.now() + STUCK_MS;
    return this.onBusy?.(this) ? f() : r;
  }
  private stuck = 0;      // the lock word that made the last call busy
  private stuckUntil = 0; // until when calls that find it are not tried

  // A negative core result here is a bug of ours (the TypeScript validated everything first),
  // except E_BUSY: the lock stayed taken by another realm.
  private fail(r: number): void {
    if (r >= 0) return;
    if (r === E_BUSY) {
      throw new MemsysError('ERR_MEMSYS_BUSY', `arena ${this.id} stayed locked by realm ${this.lockHolder} (if that realm died, ` +
        'the arena is recovered once its death is known: retry)');
    }
    const code = r <= -16 ? -(-r & 15) : r;
    const what = r <= -16 ? `entry ${(-r >> 4) - 1}: ` : '';
    const text: Record<number, string> = {
      [E_CLASS]: 'bad class', [E_OFFSET]: 'bad offset', [E_NOT_SLOT]: 'not a buffer',
      [E_WRONG_CLASS]: 'wrong class', [E_NOT_OUT]: 'already free', [E_ARG]: 'bad array',
    };
    throw new MemsysError('ERR_MEMSYS_CORE', `arena ${this.id}: ${what}${text[code] ?? checkMessage(code)}`);
  }

  check(): void {
    if (!this.core || this.quarantined) return;
    const core = this.core;
    const r = this.call(() => core.check());
    if (r === E_BUSY) return; // locked by another realm: checked another time
    if (r !== 0) throw new MemsysError('ERR_MEMSYS_CORE', `arena ${this.id}: ${checkMessage(r)}`);
  }

  // Gives every fully free run of every class back to the span allocator.
  release(): void {
    const core = this.core;
    if (core) this.fail(this.call(() => core.release()));
  }

  // Gives back fully free runs, and this realm's scratch page; afterwards the arena is empty iff
  // nothing of it is in use anywhere.
  releaseAll(): void {
    if (!this.core) return;
    this.release();
    this.releaseScratch();
  }

  // Gives back this realm's scratch page (also in a closed arena, which every realm lets go of).
  // In debug mode it is poisoned first: its pages may become free slots, which must read DEADBEEF.
  releaseScratch(): void {
    const core = this.core;
    if (!core || this.scratch <= 0) return;
    if (this.debug) this.u32.fill(DEADBEEF, this.scratch >>> 2, (this.scratch + PAGE) >>> 2);
    this.fail(this.call(() => core.raw_free(this.scratch)));
    this.scratch = 0;
  }

  get freePages(): number { return this.core ? this.core.arena_stat(STAT_FREE_PAGES) : 0; }

  // Free pages given back to the OS since they were last used (giveback.ts).
  get cleanPages(): number { return this.core ? this.core.arena_stat(STAT_CLEAN_PAGES) : 0; }

  // True if this realm has its scratch page (taking it now if the arena can spare one): the
  // batch calls and scavenge need it, and a closed arena hands out none.
  ensureScratch(): boolean {
    return this.core !== undefined && this.scratchIndex() >= 0;
  }

  // Takes free spans that may hold data out of the arena as raw spans, for the host to discard:
  // (offset, length) pairs in bytes, empty when there are none (or no scratch page for the list).
  scavenge(): number[] {
    const at = this.scratchIndex();
    if (at < 0) return [];
    const core = this.core!;
    const n = this.call(() => core.scavenge(at * 4, BATCH_MAX / 2));
    this.fail(n);
    return Array.from(this.u32.subarray(at, at + 2 * n));
  }

  // Returns a span `scavenge` took: clean if its pages were discarded. If the arena stayed locked
  // by another realm, the span waits for the next `returnPending`.
  scavenged(off: number, clean: boolean): void {
    const core = this.core!;
    const r = this.call(() => (clean ? core.scavenged(off) : core.raw_free(off)));
    if (r === E_BUSY) { this.pending.push(off, clean ? 1 : 0); return; }
    this.fail(r);
  }

  // Returns the spans a busy lock kept; true once none is left.
  returnPending(): boolean {
    const p = this.pending.splice(0);
    for (let i = 0; i < p.length; i += 2) this.scavenged(p[i], p[i + 1] === 1);
    return this.pending.length === 0;
  }
  private readonly pending: number[] = []; // (offset, clean) of spans waiting to go back

  // A closed arena opens again as arena `id` (a retired arena reused instead of mapping a new one).
  reopen(id: number): boolean {
    if (!this.core || this.core.reopen(id) !== 0) return false;
    this.id = id;
    return true;
  }

  // Buffers of every class handed out by the core (in magazines, in use, in SGLs), all realms.
  outSlots(): number {
    let n = 0;
    if (this.core) for (let c = 0; c < NUM_CLASSES; c++) n += this.core.class_stat(c, CSTAT_OUT);
    return n;
  }

  // Releases fully free runs of class c while it keeps `depth` free buffers; returns how many
  // buffers' runs went back to the span allocator.
  trim(c: number, depth: number): number {
    const core = this.core;
    if (!core) return 0;
    const r = this.call(() => core.trim(c, depth));
    this.fail(r);
    return r;
  }

  // Closes the arena if nothing of it is out (the core's close); then no realm gets buffers from
  // it and each can drop it (a realm notices through `closed`). 'closed': by this call;
  // 'already': by another realm first; false: buffers are out.
  close(): 'closed' | 'already' | false {
    const core = this.core;
    const r = core ? this.call(() => core.close()) : 0;
    return r === 1 ? 'closed' : r === 2 ? 'already' : false;
  }

  get closed(): boolean { return (this.u32[W_FLAGS] & FLAG_CLOSED) !== 0; }

  // Recovered from a realm that died inside a call and found broken: nothing is handed out from it.
  get quarantined(): boolean { return (this.u32[W_FLAGS] & FLAG_QUARANTINED) !== 0; }

  // The realm tag in the lock word (0: free).
  get lockHolder(): number { return Atomics.load(this.u32, W_LOCK); }

  // Marks the slot at `off` as this realm's (a posted buffer freed into its magazine); returns the
  // owner it had, for `unclaim` if the buffer turns out not to be one to free.
  claim(off: number): number {
    const own = this.owners;
    return own ? Atomics.exchange(own, granuleOf(off), this.realm & OWNER_MASK) : 0;
  }

  unclaim(off: number, was: number): void {
    if (this.owners) Atomics.compareExchange(this.owners, granuleOf(off), this.realm & OWNER_MASK, was); // unless another realm claimed it since
  }

  // The slot at `off` is no realm's (an orphan: whichever realm gives it back, not its dead owner's).
  disown(off: number): void {
    if (this.owners) Atomics.store(this.owners, granuleOf(off), 0);
  }

  // Gives back the buffers realm `dead` had cached (OUT slots it owned: nobody else can hold them);
  // returns how many, and the bytes of the LIVE ones it owned (in its user's hands, or passed on:
  // they stay out until whoever holds them frees them).
  reclaimDead(dead: number): { returned: number; held: number } {
    const core = this.core;
    if (!core) return { returned: 0, held: 0 };
    const r = this.call(() => core.reclaim(dead));
    this.fail(r);
    return { returned: r, held: core.held(dead) };
  }

  // Takes the lock over from `dead` and checks the arena: 'ok', 'quarantined', or false if `dead`
  // does not hold it.
  recover(dead: number): 'ok' | 'quarantined' | false {
    const r = this.core ? this.core.recover(dead) : -1;
    return r === 0 ? 'ok' : r === 1 ? 'quarantined' : false;
  }
}

// The ids in an arena's header, read straight from any realm's copy of its buffer; undefined if
// the buffer is not an arena.
/** @internal */
export function readHeader(buffer: ArrayBufferLike): { owner: number; id: number; closed: boolean; abi: number } | undefined {
  if (buffer.byteLength < WASM_PAGE) return undefined;
  const h = new Uint32Array(buffer, 0, PAGE / 4); // the header page
  if (h[W_MAGIC] !== MAGIC) return undefined;
  return { owner: h[W_OWNER], id: h[W_ARENA], closed: (h[W_FLAGS] & FLAG_CLOSED) !== 0, abi: h[W_ABI] };
}

// An arena made by a core of another ABI version has another layout: this realm's core and views
// must not touch it. Checked before anything reads its tables.
function checkAbi(buffer: ArrayBufferLike, id: number): void {
  const abi = new Uint32Array(buffer, 0, W_ABI + 1)[W_ABI];
  if (abi !== ABI_VERSION) {
    throw new MemsysError('ERR_MEMSYS_ABI', `arena ${id} was made by a memsys core of ABI version ${abi}; ` +
      `this realm's core speaks ABI version ${ABI_VERSION} (every realm of a pool must load the same memsys)`);
  }
}

// The slot state table of an arena, from any realm's copy of its buffer (one byte per granule).
/** @internal */
export function stateTable(buffer: ArrayBufferLike): Uint8Array {
  return new Uint8Array(buffer, new Uint32Array(buffer, 0, W_STATE + 1)[W_STATE], granules(buffer.byteLength));
}
