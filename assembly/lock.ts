// The arena lock: one word in the header, taken around every call that changes core state. It
// holds the realm tag of the instance inside the call (0: free), so that a host can tell who
// holds it, and take it over from a realm that died inside a call (`recover`).
//
// Calls are short (a batch of at most a few hundred slots) and rare next to the JavaScript
// magazines' hot path, so a plain compare-and-swap spin is enough. It cannot wait with
// `memory.atomic.wait32`: a browser's main thread may not block. The spin is bounded: a lock
// still held after SPIN_LIMIT tries makes the call return E_BUSY (`alloc`: 0) and change nothing,
// so a realm whose holder died is never stuck; its host decides whether the holder is gone. The
// single-threaded build compiles the lock away, so it contains no atomic instruction at all.

import { H_LOCK } from "./layout";

// ~2^24 tries of one atomic load each: tens of milliseconds, far beyond any call but a debug
// check of a huge arena, and short enough that a waiter is not stuck for long.
const SPIN_LIMIT: u32 = 1 << 24;

// This instance's realm tag (set_realm); 1 for a host that never sets one.
let realm: u32 = 1;

export function setRealm(tag: u32): void { realm = tag; }
export function realmTag(): u32 { return realm; }

// True once the lock is ours; false after SPIN_LIMIT tries (the caller returns E_BUSY).
@inline export function lock(): bool {
  if (ASC_FEATURE_THREADS) {
    if (atomic.cmpxchg<u32>(H_LOCK, 0, realm) == 0) return true;
    for (let i: u32 = 0; i < SPIN_LIMIT; i++) {
      if (atomic.load<u32>(H_LOCK) == 0 && atomic.cmpxchg<u32>(H_LOCK, 0, realm) == 0) return true;
    }
    return false;
  }
  return true;
}

// Takes the lock from `holder`, a realm its host knows to be dead; false if `holder` does not hold it.
export function takeOver(holder: u32): bool {
  if (ASC_FEATURE_THREADS) return atomic.cmpxchg<u32>(H_LOCK, holder, realm) == holder;
  return false;
}

export function lockWord(): u32 {
  if (ASC_FEATURE_THREADS) return atomic.load<u32>(H_LOCK);
  return 0;
}

@inline export function unlock(): void {
  if (ASC_FEATURE_THREADS) atomic.store<u32>(H_LOCK, 0);
}
