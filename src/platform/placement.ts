// Placing the pool's memory on a NUMA node: the one contract between mm.place() and the host's
// means to move pages. Moving and binding pages takes a helper process and a native addon, so
// only memsys/node registers a placement; the browser-safe code hands over its arenas' memories
// and never learns how they are moved.

/** What moving pages to a node did: what `mm.place()` and memsys/node's `movePages()` resolve. */
export interface MoveReport {
  /** Pages (4 KiB) handled so far: all of the request once it is done. */
  pages: number;
  /** Pages that were moved to the node. */
  moved: number;
  /** Pages that were on the node already. */
  already: number;
  /** Pages that could not be moved, by errno name (`ENOENT`: never touched, so on no node yet;
   * `EFAULT`: not mapped or the zero page; `EBUSY`: in use, try again; `ENOMEM`: the node is full). */
  failed: Record<string, number>;
  /** Milliseconds it took. */
  ms: number;
  /** Whether the kernel's automatic NUMA balancing is on (undefined: unknown). When it is, the
   * kernel may move pages back towards the CPUs that touch them within seconds, unless they are
   * bound (`bind`). */
  balancing: boolean | undefined;
  /** Whether the memory was also bound to the node (`bind`). */
  bound: boolean;
}

/** What `mm.place()` takes besides the node. */
export interface PlaceOptions {
  /** Also bind the arenas' memory to the node (mbind(2), MPOL_BIND with MPOL_MF_MOVE), so that
   * automatic NUMA balancing does not pull pages back and new pages come from it. */
  bind?: boolean;
  /** At most this many MB (2^20 bytes) a second. */
  bandwidth?: number;
}

/** One arena's memory as the placement gets it: `view` is over the whole memory. */
export interface PlacedMemory {
  id: number;
  view: Uint8Array;
}

/** What mm.place() hands the placement. */
export interface PlaceRequest {
  node: number;
  options: PlaceOptions;
  /** The MMSA: its 'arena-added' events name the arenas to place next. */
  owner: EventTarget;
  /** This realm's arenas now. */
  memories(): PlacedMemory[];
  /** The arena an 'arena-added' event named, if this realm has its memory. */
  memory(id: number): PlacedMemory | undefined;
  /** False once the MMSA is terminated: nothing more is placed. */
  live(): boolean;
}

/** How the host places memory on NUMA nodes: what setPlacement() registers. */
export interface Placement {
  /** Moves the request's arenas to its node now and each arena the owner adds later, until it is
   * asked to place the same owner again or the owner terminates; resolves what the first move did. */
  place(req: PlaceRequest): Promise<MoveReport>;
}

let current: Placement | undefined;

/** Registers how this realm places memory on NUMA nodes (memsys/node registers its sidecar's),
 * replacing what was there; undefined for none. */
export function setPlacement(p: Placement | undefined): void {
  current = p;
}

/** What setPlacement() registered last (undefined until then: mm.place() is unsupported). */
export function placement(): Placement | undefined {
  return current;
}
