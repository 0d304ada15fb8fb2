// Channel: hands buffers and SGLs from one realm to another through shared memory, without
// postMessage on the way. A postMessage round trip between Node worker threads costs 80–100 µs on
// the development VM, more than copying 1 MiB twice would take at memcpy speed; a wait/notify round
// trip over a SharedArrayBuffer costs ~12 µs (bench/RESULTS.md). The descriptor is the handoff's
// (handoff.ts), written as integers into a ring that one realm writes and one realm reads.
//
//   Int32Array over the channel's SharedArrayBuffer
//   ┌──────┬──────┬─────────────────────────── ring: RING words ───────────────────────────┐
//   │ head │ tail │ record │ record │ SKIP … │ record │ …                                   │
//   └──────┴──────┴────────────────────────────────────────────────────────────────────────┘
//   head, tail: words written and read so far (wrapping u32; RING divides 2^32)
//   record: words, kind, cls, ticket, n, woff lo, woff hi, roff lo, roff hi, then n × (arena, slot)
//   SKIP (-1): the rest of the ring is unused; the next record starts at its beginning
//
// Records are never split across the end of the ring. The writer publishes a record by storing
// head (Atomics, so the words before it are visible) and notifies; the reader waits on head
// (Atomics.waitAsync) and releases space by storing tail.

import { MemsysError, invalidArg, show } from '../errors.js';
import { granuleOf, offsetOf } from '../core/granule.js';
import { SGL } from '../sgl/sgl.js';
import { DescriptorCheck } from './descriptor.js';
import type { BufferHandoff, Handoff, SGLHandoff } from '../pool/tickets.js';

const HEAD = 0;
const TAIL = 1;
const HDR = 2;
const RING = 1 << 16; // words: 256 KiB, room for an SGL of 32 000 buffers
const SKIP = -1;
const FIXED = 9;      // record words before the buffer pairs
const KIND_BUF = 1;
const KIND_SGL = 2;
const SPIN_MS = 0.1;
const U32 = 2 ** 32;

type WaitAsync = (a: Int32Array, i: number, v: number, t?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

// A pending waitAsync does not keep Node's event loop alive: while any receive waits, one
// long-lived timer is ref'd (ref/unref cost next to nothing; a timer per wait cost ~40 µs a round
// trip). Browsers have no ref and never exit under a page, so nothing is needed there.
interface Refable { ref(): void; unref(): void }
let keepAlive: Refable | undefined;
let waiting = 0;
function hold(): void {
  if (waiting++ > 0) return;
  if (!keepAlive) {
    const t = setInterval(() => {}, 2 ** 31 - 1) as unknown as Partial<Refable>;
    if (typeof t.unref !== 'function') { clearInterval(t as never); return; }
    keepAlive = t as Refable;
  }
  keepAlive.ref();
}
function release(): void {
  if (--waiting === 0) keepAlive?.unref();
}

/** What channel.port() returns: post it once to the realm at the other end. One realm sends on a
 * channel and one receives; open one channel per direction. */
export interface ChannelPort {
  kind: 'memsys.channel';
  v: 1;
  mm: number;
  sab: SharedArrayBuffer;
}

/** @internal What a channel needs of the MMSA at its end. */
export interface ChannelHost {
  readonly id: number;
  readonly name: string;
  /** The pool an SGL's slab must belong to (`sgl.slab.pool`). */
  readonly pool: object;
  handoff(buf: Uint8Array): BufferHandoff;
  receive(h: Handoff): Uint8Array | SGL;
  /** True if this realm has a core for arena `id`; otherwise asks for its memory. */
  requestArena(id: number): boolean;
  /** Resolves once this realm has a core for arena `id`; rejects at `deadline`. */
  arenaKnown(id: number, deadline: number): Promise<void>;
}

export class Channel {
  /** @internal */ readonly mm: ChannelHost;
  private readonly sab: SharedArrayBuffer;
  private readonly w: Int32Array;

  /** @internal */
  constructor(mm: ChannelHost, sab: SharedArrayBuffer);
  /** Channels are made by `mm.openChannel()` and `mm.openChannel(port)`, not by `new`. */
  constructor(made: never, ...rest: never[]);
  constructor(mm: ChannelHost, sab: SharedArrayBuffer) {
    this.mm = mm;
    this.sab = sab;
    this.w = new Int32Array(sab);
  }

  /** A descriptor of this channel for the realm at the other end: `mm.openChannel(port)` there. */
  port(): ChannelPort {
    return { kind: 'memsys.channel', v: 1, mm: this.mm.id, sab: this.sab };
  }

  /** Hands a buffer in use, or an SGL, to the reading realm. Nothing is copied; the sender can no
   * longer use it. Throws, handing off nothing, when the ring has no room (the reader is behind). */
  send(x: Uint8Array | SGL): void {
    if (!(x instanceof SGL) && !(x instanceof Uint8Array)) throw invalidArg('value', x, 'must be a Uint8Array from this MMSA or an SGL');
    if (x instanceof SGL && x.slab.pool !== this.mm.pool) {
      throw new MemsysError('ERR_MEMSYS_NOT_OWNED', `the SGL belongs to MMSA ${show(x.slab.pool.name)}, not to this channel's ${show(this.mm.name)}`);
    }
    const n = x instanceof SGL ? x.offs.length : 1;
    const words = FIXED + 2 * n;
    const w = this.w;
    const head = Atomics.load(w, HEAD) >>> 0;
    const at = head % RING;
    const skip = RING - at < words ? RING - at : 0;
    if (words > RING || ((head - (Atomics.load(w, TAIL) >>> 0)) >>> 0) + skip + words > RING) {
      throw new MemsysError('ERR_MEMSYS_STATE', `the channel has no room for ${words} words: the reading realm is behind (or the SGL has over ${(RING - FIXED) >> 1} buffers)`);
    }
    const h: Handoff = x instanceof SGL ? x.handoff() : this.mm.handoff(x);
    if (skip) w[HDR + at] = SKIP;
    const p = HDR + (head + skip) % RING;
    const sgl = h.kind === 'memsys.sgl' ? h : undefined;
    w[p] = words;
    w[p + 1] = sgl ? KIND_SGL : KIND_BUF;
    w[p + 2] = h.cls;
    w[p + 3] = h.ticket;
    w[p + 4] = n;
    putU53(w, p + 5, sgl?.woff ?? 0);
    putU53(w, p + 7, sgl?.roff ?? 0);
    for (let i = 0; i < n; i++) {
      w[p + FIXED + 2 * i] = h.arenas[i];
      w[p + FIXED + 2 * i + 1] = granuleOf(h.offs[i]);
    }
    Atomics.store(w, HEAD, (head + skip + words) % U32);
    Atomics.notify(w, HEAD);
  }

  /** The next buffer or SGL, now this realm's; undefined if none is waiting, or if the next one
   * names an arena this realm has not seen yet (it is asked for; try again). */
  tryReceive(): Uint8Array | SGL | undefined {
    const r = this.peek();
    if (!r) return undefined;
    let known = true;
    for (const id of r.h.arenas) known = this.mm.requestArena(id) && known;
    return known ? this.take(r) : undefined;
  }

  /** The next buffer or SGL, waiting for one (up to `timeoutMs`) and for any arena it names that
   * this realm has not seen yet. */
  async receive(timeoutMs = Infinity): Promise<Uint8Array | SGL> {
    if (!(timeoutMs >= 0)) throw invalidArg('timeoutMs', timeoutMs, 'must be a non-negative number');
    const end = performance.now() + timeoutMs;
    const w = this.w;
    // Spin a few microseconds first: a reply that is already on its way arrives sooner than a
    // waitAsync wake-up (~10 µs each way) would deliver it.
    const spinUntil = performance.now() + SPIN_MS;
    while (Atomics.load(w, HEAD) === Atomics.load(w, TAIL) && performance.now() < spinUntil);
    for (;;) {
      const head = Atomics.load(w, HEAD);
      if (head !== Atomics.load(w, TAIL)) break;
      const left = end - performance.now();
      if (left <= 0) throw new MemsysError('ERR_MEMSYS_STATE', `nothing arrived on the channel within ${timeoutMs} ms`);
      const r = waitAsync?.(w, HEAD, head, left === Infinity ? undefined : left);
      if (!r) {
        await new Promise((res) => setTimeout(res, 1)); // engines without Atomics.waitAsync poll
      } else if (r.async) {
        hold();
        try { await r.value; } finally { release(); }
      }
    }
    const r = this.peek()!;
    // Waiting for an arena leaves the record in the ring: a timeout loses nothing.
    for (const id of r.h.arenas) if (!this.mm.requestArena(id)) await this.mm.arenaKnown(id, end);
    return this.take(r);
  }

  // Receives a record and removes it from the ring, also when receiving fails: every check that
  // can fail once the arenas are known (ticket, state of the buffers) fails for good.
  private take(r: { h: Handoff; next: number }): Uint8Array | SGL {
    try {
      return this.mm.receive(r.h);
    } finally {
      Atomics.store(this.w, TAIL, r.next);
    }
  }

  // The next record as a handoff descriptor (its arenas' memories are not in it), and where the
  // record after it starts; the ring is not changed.
  private peek(): { h: Handoff; next: number } | undefined {
    const w = this.w;
    let tail = Atomics.load(w, TAIL) >>> 0;
    const head = Atomics.load(w, HEAD) >>> 0;
    if (tail === head) return undefined;
    if (w[HDR + (tail % RING)] === SKIP) tail = (tail + RING - (tail % RING)) % U32;
    const p = HDR + (tail % RING);
    const words = w[p];
    const n = w[p + 4];
    const arenas: number[] = [];
    const offs: number[] = [];
    for (let i = 0; i < n; i++) {
      arenas.push(w[p + FIXED + 2 * i]);
      offs.push(offsetOf(w[p + FIXED + 2 * i + 1]));
    }
    const base = { v: 1 as const, mm: this.mm.id, cls: w[p + 2], ticket: w[p + 3], arenas, offs, memories: [] };
    const h: Handoff = w[p + 1] === KIND_SGL
      ? { kind: 'memsys.sgl', ...base, woff: getU53(w, p + 5), roff: getU53(w, p + 7) } satisfies SGLHandoff
      : { kind: 'memsys.buf', ...base } satisfies BufferHandoff;
    return { h, next: (tail + words) % U32 };
  }
}

const check = new DescriptorCheck('a channel port', 'channel.port()');

/** @internal A new channel (`shared`: the MMSA's arenas are shared), or the other end of one from its port. */
export function openChannel(mm: ChannelHost, shared: boolean, port?: ChannelPort): Channel {
  if (port === undefined) {
    if (typeof SharedArrayBuffer !== 'function' || !shared) {
      throw new MemsysError('ERR_MEMSYS_STATE', `MMSA ${show(mm.name)} is single-threaded (no SharedArrayBuffer): it has no channels`);
    }
    return new Channel(mm, new SharedArrayBuffer((HDR + RING) * 4));
  }
  const o = check.shape(port, ['memsys.channel']);
  if (o.mm !== mm.id) throw check.bad(`it belongs to another MMSA (id ${show(o.mm)}, this is ${mm.id})`);
  if (!(o.sab instanceof SharedArrayBuffer) || o.sab.byteLength !== (HDR + RING) * 4) throw check.bad('sab is not a channel\'s SharedArrayBuffer');
  return new Channel(mm, o.sab);
}

function putU53(w: Int32Array, p: number, v: number): void {
  w[p] = v % U32;
  w[p + 1] = Math.floor(v / U32);
}

function getU53(w: Int32Array, p: number): number {
  return (w[p] >>> 0) + (w[p + 1] >>> 0) * U32;
}
