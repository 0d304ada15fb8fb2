// Links between the realms of a pool: how an arena made in one realm reaches the others.
//
//   announcement        meaning
//   { arena: memory }   an arena to adopt (sent by its maker, and in answer to want / hello)
//   { want: id }        a realm has buffers of arena `id` but not its memory
//   { hello: true }     a realm attached and wants every arena made since its descriptor
//   { drop: id }        arena `id` was closed: let go of it
//   { realm: tag }      (ports only) the realm at the other end has this tag: watch for its death
//
// They travel on a BroadcastChannel named after the pool and on every linked port. Browsers do
// not deliver a shared WebAssembly.Memory over a BroadcastChannel (Chromium, measured), so there
// every realm must be linked by a port; a realm relays what came by one port to its others, and a
// relay ends where the arena is known.

import { type Arena, readHeader } from '../core/arena.js';
import { MemsysError, isIntIn } from '../errors.js';
import { type PortListener, type Portlike, checkPort, listenPort, unlistenPort } from '../platform/ports.js';
import { unref } from '../platform/timers.js';
import type { Pool } from '../pool/pool.js';

type Announcement = { arena?: WebAssembly.Memory; want?: number; hello?: boolean; drop?: number; realm?: number };

export class Links {
  private channel: BroadcastChannel | undefined;
  private readonly ports = new Map<Portlike, PortListener>();
  /** A realm reached through a port said its tag. */
  onRealm: ((port: Portlike, tag: number) => void) | undefined;
  /** An announced arena could not be adopted (made by a core of another ABI version). */
  onRefused: ((id: number, why: MemsysError) => void) | undefined;

  constructor(private readonly pool: Pool) {}

  // Sends an announcement to every other realm: on the BroadcastChannel and on each port.
  private broadcast(msg: Announcement, except?: Portlike): void {
    this.channel?.postMessage(msg);
    for (const p of this.ports.keys()) if (p !== except) this.tell(p, msg);
  }

  added(a: Arena): void {
    if (a.memory) this.broadcast({ arena: a.memory });
  }

  wanted(id: number): void {
    this.broadcast({ want: id });
  }

  closed(a: Arena): void {
    this.broadcast({ drop: a.id });
  }

  // Tells the realm at the other end of `port` something about this realm (its tag).
  tell(port: Portlike, msg: Announcement): void {
    port.postMessage({ memsys: this.pool.id, msg });
  }

  // The memories of this realm's arenas, for a share descriptor.
  memories(): WebAssembly.Memory[] {
    return this.pool.arenas.list.filter((a) => a.memory).map((a) => a.memory!);
  }

  linkPort(p: Portlike): void {
    checkPort(p);
    if (this.ports.has(p)) return;
    const fn = (data: unknown) => {
      const d = data as { memsys?: unknown; msg?: Announcement } | null;
      if (d?.memsys !== this.pool.id || !d.msg) return;
      const tag = d.msg.realm;
      if (isIntIn(tag, 2, Number.MAX_SAFE_INTEGER)) this.onRealm?.(p, tag);
      else this.announced(d.msg, p);
    };
    this.ports.set(p, listenPort(p, fn));
  }

  listen(): void {
    if (this.channel || typeof BroadcastChannel !== 'function') return;
    const ch = new BroadcastChannel(`memsys:${this.pool.id}`);
    ch.onmessage = (e: MessageEvent) => this.announced(e.data as Announcement);
    this.channel = unref(ch);
  }

  // Arenas made after the descriptor was: every realm that holds one answers with its memory.
  hello(): void {
    this.broadcast({ hello: true });
  }

  // True if this realm has a core for arena `id`; otherwise asks the realms that have its memory
  // to send it.
  request(id: number): boolean {
    if (this.pool.arenas.byId.get(id)?.core) return true;
    this.listen();
    this.broadcast({ want: id });
    return false;
  }

  // Resolves once this realm has a core for arena `id`, asking the other realms for its memory;
  // rejects at `deadline` (a performance.now() time).
  async known(id: number, deadline: number): Promise<void> {
    if (this.request(id)) return;
    while (!this.pool.arenas.byId.get(id)?.core) {
      if (performance.now() >= deadline || !this.pool.usable) {
        throw new MemsysError('ERR_MEMSYS_DESCRIPTOR', `arena ${id} did not reach this realm in time (is the realm that made it alive?)`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  close(): void {
    this.channel?.close();
    this.channel = undefined;
    for (const [p, fn] of this.ports) unlistenPort(p, fn);
    this.ports.clear();
  }

  // An announcement from another realm, by the BroadcastChannel or by a port (`from`, to which
  // answers go; announcements that came by port are relayed to this realm's other ports).
  private announced(d: Announcement | null, from?: Portlike): void {
    const pool = this.pool;
    if (d?.arena instanceof WebAssembly.Memory) {
      const id = readHeader(d.arena.buffer)?.id;
      const had = id !== undefined && pool.arenas.byId.get(id)?.core !== undefined;
      // A message handler must not throw (in Node that ends the process): an arena this realm
      // cannot use is refused, and said so.
      try {
        pool.adopt(d.arena);
      } catch (e) {
        if (!(e instanceof MemsysError)) throw e;
        this.onRefused?.(id ?? 0, e);
        return;
      }
      if (from && !had) this.broadcast(d, from); // new here: pass it on
    } else if (typeof d?.drop === 'number') {
      const a = pool.arenas.byId.get(d.drop);
      if (a?.closed) pool.arenas.drop(a, false);
      if (from && a) this.broadcast(d, from);
    } else if (pool.usable && (d?.hello || typeof d?.want === 'number')) {
      for (const a of pool.arenas.list) {
        if (!a.memory || !(d.hello || a.id === d.want)) continue;
        if (from) this.tell(from, { arena: a.memory });
        else this.channel?.postMessage({ arena: a.memory });
      }
    }
  }
}
