// mm.place() in Node: each arena's memory found by its address in this process (the native page
// helper), moved by the sidecar (numa.ts's movePages), and with `bind` bound to the node by
// mbind(2), which only this process can do. Automatic NUMA balancing moves pages back towards
// the CPUs that touch them within seconds, so a placement that is meant to last binds.
//
// Arenas come and go while a pool runs: the placement follows the MMSA's 'arena-added' events
// and places each new arena the same way, one at a time behind the others so that the bandwidth
// limit holds over all of them, until place() is called again or the MMSA is terminated.

import { MemsysError, MemsysTypeError, type MoveReport, type PlaceRequest, type PlacedMemory, type Placement } from '../index.js';
import { NumaError, type SidecarClient, type Topology, checkNode, errnoName, movePages, pacing, topology } from './numa.js';
import { type NativeNuma, nativeNuma } from './pages.js';

/** What the Node placement works with (tests pass fakes). */
export interface PlacementDeps {
  /** The native page helper's NUMA calls, or why there are none. */
  native?: { numa?: NativeNuma; missing?: string };
  /** The sidecar (default: memsys/node's). */
  sidecar?: SidecarClient;
  /** The machine's nodes (default: topology() at each place()). */
  topology?: () => Topology;
  /** Where a failure to place an arena added later goes (default: a process warning). */
  warn?: (e: Error) => void;
}

/** @internal The placement memsys/node registers. */
export function nodePlacement(deps: PlacementDeps = {}): Placement {
  const following = new WeakMap<EventTarget, () => void>();
  return {
    async place(req: PlaceRequest): Promise<MoveReport> {
      const { node, options: o } = req;
      if (!(Number.isSafeInteger(node) && node >= 0)) throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `node ${String(node)} must be an integer of at least 0`);
      if (o === null || typeof o !== 'object') throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `place() options ${String(o)} must be an object`);
      if (o.bind !== undefined && typeof o.bind !== 'boolean') throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `bind ${String(o.bind)} must be a boolean`);
      pacing({ bandwidth: o.bandwidth });
      const topo = (deps.topology ?? topology)();
      checkNode(node, topo);
      const { numa, missing } = deps.native ?? nativeNuma();
      if (!numa) {
        throw new MemsysError('ERR_MEMSYS_UNSUPPORTED', `place() needs the arenas' addresses${o.bind ? ' and mbind(2)' : ''} from the native page helper, and ${missing ?? 'it is missing'}`);
      }
      following.get(req.owner)?.();
      let stopped = false;
      let queue: Promise<unknown> = Promise.resolve();
      const onAdded = (e: Event) => {
        if (stopped) return;
        if (!req.live()) return stop();
        const m = req.memory((e as Event & { detail?: { id?: number } }).detail?.id ?? -1);
        if (!m) return;
        queue = queue.then(() => (stopped ? undefined : placeOne(m))).catch((err: Error) => (deps.warn ?? warn)(err));
      };
      const stop = () => {
        stopped = true;
        req.owner.removeEventListener('arena-added', onAdded);
        if (following.get(req.owner) === stop) following.delete(req.owner);
      };
      const placeOne = async (m: PlacedMemory): Promise<MoveReport> => {
        const bytes = m.view.byteLength;
        const opts: Parameters<typeof movePages>[4] = { topology: topo };
        if (o.bandwidth !== undefined) opts.bandwidth = o.bandwidth;
        if (deps.sidecar) opts.sidecar = deps.sidecar;
        const r = await movePages(process.pid, numa.address(m.view), bytes / 4096, node, opts);
        if (o.bind) {
          // After the move, so that the bandwidth limit holds: mbind finds the pages in place and
          // only sets the policy (and moves what balancing pulled back meanwhile).
          const err = numa.mbind(m.view, 0, bytes, node, true);
          if (err !== 0) {
            throw new NumaError(`binding arena ${m.id} (${bytes} bytes) to node ${node} with mbind failed with ${errnoName(err)}` +
              (errnoName(err) === 'EINVAL' ? ' (the node is not online, has no memory, or is not in this process\'s cpuset)' : ''), { report: r, errno: errnoName(err) });
          }
          r.bound = true;
        }
        return r;
      };
      following.set(req.owner, stop);
      req.owner.addEventListener('arena-added', onAdded);
      const total: MoveReport = { pages: 0, moved: 0, already: 0, failed: {}, ms: 0, balancing: topo.balancing, bound: Boolean(o.bind) };
      const add = (r: MoveReport) => {
        total.pages += r.pages;
        total.moved += r.moved;
        total.already += r.already;
        for (const [k, v] of Object.entries(r.failed)) total.failed[k] = (total.failed[k] ?? 0) + v;
      };
      const t0 = performance.now();
      const first = queue.then(async () => {
        for (const m of req.memories()) {
          if (stopped) break;
          add(await placeOne(m));
        }
      });
      queue = first.catch(() => undefined);
      try {
        await first;
      } catch (e) {
        stop(); // the caller learns of it; arenas added later are not placed behind its back
        // Say what the whole place() did before it stopped: the arenas moved (and bound) before
        // the one that failed, with what that one moved.
        const part = (e as { report?: MoveReport }).report;
        if (part) add(part);
        total.ms = performance.now() - t0;
        if (e instanceof MemsysError) {
          throw new NumaError(`${e.message.replace(/^memsys: /, '')} (place(${node}) had handled ${total.pages} pages of its arenas: ` +
            `${total.moved} moved, ${total.already} there already)`, { report: total, errno: (e as { errno?: string }).errno });
        }
        throw e;
      }
      total.ms = performance.now() - t0;
      return total;
    },
  };
}

function warn(e: Error): void {
  process.emitWarning(e.message.replace(/^memsys: /, 'memsys: placing a new arena: '), { code: 'ERR_MEMSYS_NUMA' });
}
