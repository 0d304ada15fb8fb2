// Memory-pressure events: where the host can tell of a stall as it happens (Linux PSI triggers,
// through memsys/node's sidecar), housekeeping runs at once instead of at its next tick. The
// browser-safe code only subscribes; memsys/node registers the source.

/** Subscribes `onPressure` to the host's memory-pressure events; returns the unsubscribe. */
export type PressureEvents = (onPressure: () => void) => () => void;

let source: PressureEvents | undefined;

/** Registers the host's source of memory-pressure events (memsys/node does, with PSI triggers). */
export function setPressureEvents(s: PressureEvents | undefined): void {
  source = s;
}

/** @internal */
export function pressureEvents(): PressureEvents | undefined {
  return source;
}
