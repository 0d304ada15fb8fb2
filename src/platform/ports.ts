// Message ports of every kind a realm can be reached by: a DOM MessagePort or Worker
// (addEventListener, MessageEvent) or a Node Worker or MessagePort (on('message', data)).

import { invalidArg } from '../errors.js';

/** What carries arena announcements between realms besides the BroadcastChannel: a Worker, a
 * MessagePort, or anything with postMessage and message events. */
export interface Portlike {
  postMessage(message: unknown): void;
  addEventListener?(type: 'message', fn: (e: { data: unknown }) => void): void;
  removeEventListener?(type: 'message', fn: (e: { data: unknown }) => void): void;
  on?(type: 'message', fn: (data: unknown) => void): unknown;
  off?(type: 'message', fn: (data: unknown) => void): unknown;
}

/** @internal */
export type PortListener = (data: unknown) => void;

/** @internal */
export function checkPort(p: Portlike): void {
  if (typeof p !== 'object' || p === null || typeof (p as { postMessage?: unknown }).postMessage !== 'function') {
    throw invalidArg('port', p, 'must be a Worker, a MessagePort or another object with postMessage');
  }
}

// Listens for messages on a port, whichever event API it has; returns the listener to remove later.
/** @internal */
export function listenPort(p: Portlike, fn: PortListener): PortListener {
  if (typeof p.addEventListener === 'function') {
    const h = (e: { data: unknown }) => fn(e.data);
    p.addEventListener('message', h);
    return h as unknown as PortListener;
  }
  p.on?.('message', fn);
  return fn;
}

/** @internal */
export function unlistenPort(p: Portlike, h: PortListener): void {
  if (typeof p.removeEventListener === 'function') p.removeEventListener('message', h as unknown as (e: { data: unknown }) => void);
  else p.off?.('message', h);
}

// A Node Worker (it emits 'exit' once its thread is gone), as opposed to a port of any other kind.
/** @internal */
export function asNodeWorker(p: Portlike): { on(e: 'exit', f: () => void): unknown } | undefined {
  const w = p as { on?: (e: string, f: () => void) => unknown; threadId?: unknown };
  return typeof w.on === 'function' && typeof w.threadId === 'number' ? (w as { on(e: 'exit', f: () => void): unknown }) : undefined;
}

type WebLocks = { request(name: string, fn: () => unknown): Promise<unknown> };

// The Web Locks API where there is one (browsers: a realm's lock is released only when it is gone).
/** @internal */
export function webLocks(): WebLocks | undefined {
  const l = (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks;
  return typeof l?.request === 'function' ? l : undefined;
}
