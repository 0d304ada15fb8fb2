// The arena lock: one word in the header, taken around every call that changes core state.
//
// Calls are short (a batch of at most a few hundred slots) and rare next to the JavaScript
// magazines' hot path, so a plain test-and-set spin is enough. It cannot wait with
// `memory.atomic.wait32`: a browser's main thread may not block. The single-threaded build
// compiles the lock away, so it contains no atomic instruction at all.

import { H_LOCK } from "./layout";

@inline export function lock(): void {
  if (ASC_FEATURE_THREADS) {
    while (atomic.cmpxchg<i32>(H_LOCK, 0, 1) != 0) {}
  }
}

@inline export function unlock(): void {
  if (ASC_FEATURE_THREADS) atomic.store<i32>(H_LOCK, 0);
}
