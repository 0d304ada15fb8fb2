// Realms that die.
//
// A realm can die at any instruction (worker.terminate()), also inside a core call, holding an
// arena's lock. The lock word holds the holder's realm tag, and a core call that finds it taken
// for too long returns E_BUSY instead of spinning forever. A realm is known dead once the realm
// that linked its port sees it go (a Node Worker's 'exit'; in a browser, the Web Lock the realm
// holds for its life is granted) or it terminates its MMSA; then any realm that meets its lock
// takes it over and checks the arena (core `recover`): consistent, it is used on; broken, it is
// quarantined. The buffers the dead realm had cached go back; those in its user's hands are
// counted (they stay out until whoever holds them frees them).

import type { Arena } from '../core/arena.js';
import { type Portlike, asNodeWorker, webLocks } from '../platform/ports.js';
import type { Emit } from '../pool/arenas.js';
import { unlessBusy } from '../pool/busy.js';
import type { Pool } from '../pool/pool.js';

export class Deaths {
  private readonly portRealms = new Map<Portlike, Set<number>>(); // realms reached through each port
  private readonly toReclaim = new Map<number, Set<Arena>>();   // dead realms' arenas locked at their death
  /** Resolves once the realm this one was attached from can learn of its death (see announce). */
  watched: Promise<void> = Promise.resolve();

  constructor(private readonly pool: Pool, private readonly emit: Emit) {}

  // Called by an arena whose lock stayed taken: true if its holder is dead and the lock recovered.
  recoverFrom(a: Arena): boolean {
    const holder = a.lockHolder;
    if (holder === 0) return true; // released meanwhile
    if (!this.pool.control.isDead(holder)) return false;
    const r = a.recover(holder);
    if (r === 'ok') this.emit('arena-recovered', { id: a.id, realm: holder });
    if (r === 'quarantined') this.emit('arena-quarantined', { id: a.id, realm: holder });
    return r !== false || a.lockHolder !== holder;
  }

  // Tells the realm at the other end of `port` this realm's tag (by `say`), so that it can recover
  // what this realm leaves if it dies. Where there are Web Locks (browsers), it first takes a lock
  // named after the tag and never lets go of it: the browser releases it only once this realm is
  // gone, which is how the other realm learns of it (see watch).
  announce(say: () => void): void {
    const locks = webLocks();
    if (!locks) {
      say();
      return;
    }
    this.watched = new Promise<void>((resolve) => {
      void locks.request(this.lockName(this.pool.cfg.realm), () => {
        say();
        resolve();
        return new Promise<void>(() => {});
      });
    });
  }

  private lockName(tag: number): string {
    return `memsys:${this.pool.id}:${tag}`;
  }

  // A realm reached through port `p` said its tag: learn when it dies. A Node Worker emits 'exit'
  // once its thread is gone; in a browser the realm's Web Lock is granted to us only then (a
  // Worker's terminate() returns long before a busy worker has stopped: measured over 100 ms).
  watch(p: Portlike, tag: number): void {
    const w = asNodeWorker(p);
    if (w) {
      let tags = this.portRealms.get(p);
      if (!tags) {
        this.portRealms.set(p, (tags = new Set()));
        w.on('exit', () => { for (const t of tags!) this.gone(t); this.portRealms.delete(p); });
      }
      tags.add(tag);
      return;
    }
    void webLocks()?.request(this.lockName(tag), () => this.gone(tag));
  }

  // Realm `tag` is gone: marked dead, its locks recovered, the buffers in its magazines given
  // back, and the ones it held counted ('realm-dead': `returned` buffers, `held` bytes).
  private gone(tag: number): void {
    this.pool.control.setDead(tag);
    const r = this.reclaimFrom(tag, this.pool.arenas.list);
    this.emit('realm-dead', { realm: tag, returned: r.returned, held: r.held });
  }

  // Gives back what realm `tag` had cached in `arenas`; an arena locked meanwhile is tried again at
  // the next housekeeping pass, for as long as no live realm shares the tag's low 16 bits.
  private reclaimFrom(tag: number, arenas: readonly Arena[]): { returned: number; held: number } {
    let returned = 0;
    let held = 0;
    if (!this.pool.usable || !this.pool.control.ownerFree(tag)) return { returned, held };
    for (const a of arenas) {
      if (a.lockHolder === tag) this.recoverFrom(a);
      if (!a.core || a.quarantined) continue;
      const done = unlessBusy(() => {
        const r = a.reclaimDead(tag);
        returned += r.returned;
        held += r.held;
      });
      if (!done) {
        let later = this.toReclaim.get(tag);
        if (!later) this.toReclaim.set(tag, (later = new Set()));
        later.add(a);
      }
    }
    return { returned, held };
  }

  // The reclaims an arena's lock kept back, tried again (at each housekeeping pass).
  retry(): void {
    for (const [tag, arenas] of [...this.toReclaim]) {
      this.toReclaim.delete(tag);
      this.reclaimFrom(tag, [...arenas].filter((a) => this.pool.arenas.list.includes(a)));
    }
  }

  // Arena `a` was let go of: nothing of it is reclaimed later.
  forget(a: Arena): void {
    for (const later of this.toReclaim.values()) later.delete(a);
  }

  clear(): void {
    this.toReclaim.clear();
  }
}
