// Memory-pressure events from Linux PSI triggers, for MMSAs made with `pressureEvents: true`: one
// trigger through the sidecar for every subscriber of this process, on the process's cgroup v2
// `memory.pressure` where it has one (the stalls of this container), else the system's
// `/proc/pressure/memory`. Without the sidecar or PSI there are no events, and the timer alone runs.
//
// A trigger fires when tasks stalled on memory for `stallUs` within a window of `windowUs`; the
// kernel allows windows of 0.5–10 s (multiples of 2 s without CAP_SYS_RESOURCE). A trigger lives
// in the sidecar's process: when that goes (it died, was killed, or closed) while somebody listens,
// the trigger is set again in a new one after a pause, which doubles (1 s … 1 min) while each new
// one dies within a minute, so that a sidecar that cannot live is not restarted in a loop.

import { existsSync } from 'node:fs';
import type { PressureEvents } from '../platform/pressure-events.js';
import { findCgroup, reader } from './cgroup.js';
import { unref } from '../index.js';
import { type Sidecar, sidecar } from './sidecar.js';

export interface PsiOptions {
  /** Stall time that fires the trigger, µs (default 150 000: 150 ms). */
  stallUs?: number;
  /** The window it is measured over, µs (default 2 000 000). */
  windowUs?: number;
  /** The pressure file (default: the cgroup's, else the system's). */
  path?: string;
  /** @internal The sidecar to ask (default: this process's). */
  sidecar?: () => Sidecar;
  /** @internal The first pause before a trigger is set again, ms (default 1 000). */
  retryMs?: number;
}

const STABLE_MS = 60_000;

// The pressure file of this process's cgroup v2 group, else the system's, else undefined.
export function psiPath(): string | undefined {
  const cg = findCgroup(reader('', []));
  const own = cg?.version === 2 ? `${cg.dirs[0]}/memory.pressure` : undefined;
  if (own && existsSync(own)) return own;
  return existsSync('/proc/pressure/memory') ? '/proc/pressure/memory' : undefined;
}

export function nodePressureEvents(o: PsiOptions = {}): PressureEvents {
  const listeners = new Set<() => void>();
  const get = o.sidecar ?? sidecar;
  const firstPause = o.retryMs ?? 1000;
  let pause = firstPause;
  let generation = 0;   // a watch that resolves after its subscribers left is undone
  let stop: (() => void) | undefined;
  const start = (): void => {
    const path = o.path ?? psiPath();
    if (!path) return;
    const mine = ++generation;
    const sc = get();
    let trigger: number | undefined;
    let since = 0;        // when the trigger was set
    let again: ReturnType<typeof setTimeout> | undefined;
    const offPsi = sc.onPsi((t) => { if (t === trigger) for (const l of [...listeners]) l(); });
    const offExit = sc.onExit(() => {
      if (trigger === undefined || mine !== generation) return;
      trigger = undefined;
      const wait = performance.now() - since >= STABLE_MS ? firstPause : pause;
      pause = Math.min(wait * 2, STABLE_MS);
      again = unref(setTimeout(() => {
        if (mine !== generation) return;
        off();
        start();
      }, wait));
    });
    const off = () => { offPsi(); offExit(); clearTimeout(again); };
    const unwatch = () => {
      off();
      if (trigger !== undefined) sc.request({ op: 'psi_unwatch', trigger }).catch(() => { /* gone with the sidecar */ });
      trigger = undefined;
    };
    stop = unwatch;
    sc.request<{ trigger: number }>({ op: 'psi_watch', path, kind: 'some', stall_us: o.stallUs ?? 150_000, window_us: o.windowUs ?? 2_000_000 })
      .then((r) => {
        trigger = r.trigger;
        since = performance.now();
        if (mine !== generation) unwatch();
      })
      .catch(() => { off(); }); // no sidecar, or no PSI here: no events, the timer alone runs
  };
  return (fn) => {
    listeners.add(fn);
    if (listeners.size === 1) start();
    return () => {
      if (!listeners.delete(fn) || listeners.size > 0) return;
      generation++;
      stop?.();
      stop = undefined;
    };
  };
}
