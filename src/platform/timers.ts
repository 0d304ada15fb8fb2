// Timers and handles that must never keep a Node process alive (Node's unref; elsewhere there is
// nothing to do: a page's timers do not hold it open).

export function unref<T>(handle: T): T {
  (handle as { unref?: () => void } | null | undefined)?.unref?.();
  return handle;
}
