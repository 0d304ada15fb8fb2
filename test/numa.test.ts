// NUMA on the host (one node): topology and numa_maps read from fixture trees made to look like
// the two-node qemu guest and like this VM, and from the live machine; the native helper's
// address() and mbind(); movePages and whereAre against a fake sidecar (chunks, the bandwidth
// schedule, errors, a move that fails half-way); mm.place() with a fake sidecar, following new
// arenas. Moving pages for real between two nodes is test/numa-guest.test.ts's, in the guest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MMSA, MemsysError, type MemsysErrorCode, type MoveReport, placement, setPlacement } from '../src/node/index.js';
import { memoryMaps, moveSchedule, movePages, numaMaps, parseCpuList, setSidecar, topology, whereAre, NumaError, type SidecarClient } from '../src/node/numa.js';
import { nodePlacement } from '../src/node/mover.js';
import { nativeNuma } from '../src/node/pages.js';
import { rejectsCode } from './helpers.js';

const FIX = fileURLToPath(new URL('./fixtures/numa/', import.meta.url));
const TWO = `${FIX}two-node/sys/devices/system/node`;
const ONE = `${FIX}one-node/sys/devices/system/node`;
const PAGE = 4096;
const MiB = 2 ** 20;
const { numa } = nativeNuma();
const hex = (n: number) => n.toString(16);

// A sidecar that answers at once: every page moves but the first of each request, which was
// there already. Records each request.
function fakeSidecar(fail?: (req: Req, n: number) => Error | undefined): SidecarClient & { reqs: Req[] } {
  const reqs: Req[] = [];
  return {
    reqs,
    async request<T extends object>(req: { op: string; [k: string]: unknown }): Promise<T> {
      const r = req as unknown as Req;
      reqs.push(r);
      const err = fail?.(r, reqs.length);
      if (err) throw err;
      if (r.op === 'query') return { ok: true, nodes: Array.from({ length: r.pages }, (_, i) => (i % 3 === 2 ? -14 : 0)) } as T;
      return { ok: true, moved: r.pages - 1, already: 1, failed: {} } as T;
    },
  };
}
interface Req { op: string; pid: number; start: number; pages: number; node: number }
const sidecarError = (text: string, errno: number) =>
  Object.assign(new MemsysError('ERR_MEMSYS_SIDECAR' as MemsysErrorCode, `the sidecar answered: ${text}`), { errno });

// A fresh memory of this process with every page touched, and its address.
function touched(bytes: number): { mem: WebAssembly.Memory; view: Uint8Array; addr: number } {
  const mem = new WebAssembly.Memory({ initial: bytes / 65536, maximum: bytes / 65536 });
  const view = new Uint8Array(mem.buffer);
  for (let i = 0; i < bytes; i += PAGE) view[i] = 1;
  return { mem, view, addr: numa!.address(view) };
}

test('topology: the two-node guest tree, its nodes, CPUs, distances, memory and balancing', () => {
  const t = topology(TWO);
  assert.equal(t.nodes.map((n) => [n.id, n.cpus, n.distances]), [[0, [0], [10, 20]], [1, [1], [20, 10]]]);
  assert.equal(t.nodes.map((n) => [n.memTotal, n.memFree]), [[1031064 * 1024, 612400 * 1024], [1032168 * 1024, 918016 * 1024]]);
  assert.is(t.balancing, true);
  const one = topology(ONE + '/');
  assert.equal(one.nodes.map((n) => [n.id, n.cpus, n.distances]), [[0, [0, 1], [10]]]);
  assert.is(one.balancing, false);
  assert.equal(topology(`${FIX}nowhere/sys/devices/system/node`), { nodes: [], balancing: undefined }, 'a kernel without NUMA');
  assert.is(topology(`${FIX}two-node/sys/devices/system`).balancing, undefined, 'no proc/ to be found beside another root');
  assert.equal(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
  assert.equal(parseCpuList('\n'), []);
});

test('topology: the live host has one node, all its CPUs, distance 10 to itself', () => {
  const t = topology();
  assert.is(t.nodes.length, 1);
  const [n] = t.nodes;
  assert.is(n!.id, 0);
  assert.is(n!.cpus.length, cpus().length);
  assert.equal(n!.distances, [10]);
  assert.ok(n!.memTotal > 256 * MiB && n!.memFree > 0 && n!.memFree <= n!.memTotal, `${n!.memFree} of ${n!.memTotal}`);
  assert.type(t.balancing, 'boolean');
});

test('numaMaps: every kind of line, pages per node, policies, escaped file names', () => {
  const maps = numaMaps(4242, readFileSync(`${FIX}two-node/proc/4242/numa_maps`, 'utf8'));
  assert.is(maps.length, 12);
  const at = (a: number) => maps.find((m) => m.start === a)!;
  assert.equal(at(0x7fb23dfc0000), { start: 0x7fb23dfc0000, policy: 'default', pages: 65536, perNode: { 0: 1600, 1: 63936 }, kernelPageKB: 4, kind: 'anon' });
  assert.equal([at(0x5e1a000).kind, at(0x5e1a000).pages], ['heap', 682]);
  assert.equal([at(0x7ffd5c6f0000).kind, at(0x7ffd5c6f0000).perNode], ['stack', { 0: 9 }]);
  assert.equal([at(0x400000).kind, at(0x400000).file, at(0x400000).pages], ['file', '/bin/node', 4096]);
  assert.is(at(0x7fb4a2a00000).file, '/usr/share/my data/table.bin');
  assert.equal([at(0x7fb4a0000000).policy, at(0x7fb4a0000000).perNode], ['bind:1', { 1: 512 }]);
  assert.equal([at(0x7fb4a3000000).kind, at(0x7fb4a3000000).kernelPageKB, at(0x7fb4a3000000).file], ['huge', 2048, '/anon_hugepage (deleted)']);
  assert.equal([at(0x7fb24dfc0000).kind, at(0x7fb24dfc0000).pages, at(0x7fb24dfc0000).perNode], ['other', 0, {}]);
  assert.equal(numaMaps(1, '7f0000000000 default anon=3 dirty=3 kernelpagesize_kB=4\ngarbage\n\n'), [
    { start: 0x7f0000000000, policy: 'default', pages: 3, perNode: {}, kernelPageKB: 4, kind: 'anon' },
  ], 'anon= counts where no N is given; lines that do not parse are left out');
});

test('memoryMaps: ranges, permissions and paths (spaces kept), anonymous memory as ""', () => {
  const maps = memoryMaps(4242, readFileSync(`${FIX}two-node/proc/4242/maps`, 'utf8'));
  assert.is(maps.length, 12);
  assert.equal(maps[3], { start: 0x5e1a000, end: 0x60c4000, perms: 'rw-p', path: '[heap]' });
  assert.equal(maps[5], { start: 0x7fb23dfc0000, end: 0x7fb24dfc0000, perms: 'rw-p', path: '' });
  assert.is(maps[8]!.path, '/usr/share/my data/table.bin');
  assert.is(maps[9]!.path, '/anon_hugepage (deleted)');
});

test('the live process: a touched WebAssembly.Memory is one mapping in maps and numa_maps, its pages on node 0', () => {
  const { view, addr } = touched(2 * MiB);
  const m = memoryMaps('self').find((x) => x.start === addr);
  assert.ok(m, `no mapping starts at ${hex(addr)}`);
  assert.ok(m!.end - m!.start >= view.byteLength && m!.perms.startsWith('rw'), `${hex(m!.start)}-${hex(m!.end)} ${m!.perms}`);
  const n = numaMaps(process.pid).find((x) => x.start === addr);
  assert.ok(n, 'numa_maps has it');
  assert.equal([n!.kind, n!.pages, n!.perNode], ['anon', 512, { 0: 512 }]);
});

test('numaMaps and memoryMaps: a pid that does not exist is ERR_MEMSYS_NUMA naming it; a bad pid is an argument error', () => {
  let e: unknown;
  try { numaMaps(2 ** 22 + 1); } catch (x) { e = x; }
  assert.ok(e instanceof NumaError && e.code === 'ERR_MEMSYS_NUMA' && e.message.includes('pid 4194305 does not exist'), String(e));
  try { memoryMaps(0); } catch (x) { e = x; }
  assert.is((e as MemsysError).code, 'ERR_MEMSYS_INVALID_ARG');
});

test('the native helper: address() is the mapping start in /proc/self/maps; mbind binds to node 0, node 1 is EINVAL here', () => {
  assert.ok(numa, 'the native page helper is built');
  const { view, addr } = touched(MiB);
  assert.ok(addr > 0 && addr % PAGE === 0);
  assert.ok(memoryMaps('self').some((m) => m.start === addr), `maps has ${hex(addr)}`);
  assert.is(numa!.address(view.subarray(PAGE)), addr + PAGE, 'a subarray: its first byte');
  assert.throws(() => numa!.address(5 as unknown as Uint8Array), /Uint8Array/);
  assert.is(numa!.mbind(view, 0, view.byteLength, 0, true), 0);
  assert.is(numaMaps('self').find((m) => m.start === addr)!.policy, 'bind:0');
  assert.is(numa!.mbind(view, 0, view.byteLength, 1, true), 22, 'one node: node 1 is EINVAL');
  for (const [off, len, node] of [[1, PAGE, 0], [0, PAGE + 1, 0], [0, 2 * MiB, 0], [-PAGE, PAGE, 0], [0, 0, 0], [0, PAGE, -1], [0, PAGE, 1.5], [0, PAGE, 5000]]) {
    assert.is(numa!.mbind(view, off!, len!, node!, false), 22, `mbind(${off}, ${len}, ${node})`);
  }
  assert.is(numa!.mbind(new Uint16Array(4) as unknown as Uint8Array, 0, PAGE, 0, false), 22);
  assert.is(view[PAGE], 1, 'the data stays');
});

test('movePages: `chunk` pages a request over the whole range, the reports summed, progress after each request', async () => {
  const { mem, addr } = touched(8 * MiB);
  const sc = fakeSidecar();
  const progress: MoveReport[] = [];
  const pages = 2000;
  const r = await movePages(process.pid, addr, pages, 1, { sidecar: sc, chunk: 512, topology: topology(TWO), onProgress: (p) => progress.push(p) });
  assert.equal(sc.reqs.map((q) => [q.op, q.pid, q.start - addr, q.pages, q.node]),
    [['move', process.pid, 0, 512, 1], ['move', process.pid, 512 * PAGE, 512, 1], ['move', process.pid, 1024 * PAGE, 512, 1], ['move', process.pid, 1536 * PAGE, 464, 1]]);
  assert.equal({ ...r, ms: 0 }, { pages, moved: pages - 4, already: 4, failed: {}, ms: 0, balancing: true, bound: false });
  assert.equal(progress.map((p) => [p.pages, p.moved]), [[512, 511], [1024, 1022], [1536, 1533], [2000, 1996]]);
  const custom = fakeSidecar();
  await movePages(process.pid, addr, 2048, 0, { sidecar: custom, chunk: 1000, topology: topology(ONE) });
  assert.equal(custom.reqs.map((q) => q.pages), [1000, 1000, 48]);
  void mem;
});

test('movePages: failed pages summed by errno, as the sidecar counts them', async () => {
  const { addr } = touched(4 * MiB);
  let k = 0;
  const sc: SidecarClient = {
    async request<T extends object>(req: { op: string; [key: string]: unknown }): Promise<T> {
      const n = req.pages as number;
      k++;
      return { ok: true, moved: n - 3, already: 0, failed: k === 1 ? { ENOENT: 2, EBUSY: 1 } : { ENOENT: 3 } } as T;
    },
  };
  const r = await movePages(process.pid, addr, 1024, 0, { sidecar: sc, chunk: 512, topology: topology(ONE) });
  assert.equal([r.moved, r.failed, r.balancing], [1018, { ENOENT: 5, EBUSY: 1 }, false]);
});

test('the bandwidth schedule: requests start when the bytes before them fit the limit, at least an interval apart', () => {
  // 100 MiB/s: 512 pages (2 MiB) every 20 ms, memtierd's step
  assert.equal(moveSchedule(2048, { bandwidth: 100 }), { chunk: 512, starts: [0, 20, 40, 60] });
  assert.equal(moveSchedule(2048, { bandwidth: 100, interval: 20 }), { chunk: 512, starts: [0, 20, 40, 60] }, 'one interval\'s worth a request');
  assert.equal(moveSchedule(1000, { bandwidth: 10, interval: 40 }).chunk, 102, '10 MiB/s for 40 ms');
  assert.equal(moveSchedule(2048, { chunk: 512, interval: 30 }), { chunk: 512, starts: [0, 30, 60, 90] });
  assert.equal(moveSchedule(2048, { bandwidth: 100, chunk: 512, interval: 50 }), { chunk: 512, starts: [0, 50, 100, 150] }, 'the interval is the longer wait');
  assert.equal(moveSchedule(2048, { bandwidth: 50, chunk: 256 }).starts, [0, 20, 40, 60, 80, 100, 120, 140]);
  assert.equal(moveSchedule(40000, {}), { chunk: 16384, starts: [0, 0, 0] }, 'unpaced: 64 MiB a request');
  for (const o of [{ bandwidth: 0 }, { bandwidth: -1 }, { bandwidth: Infinity }, { interval: -1 }, { chunk: 0 }, { chunk: 2 ** 20 + 1 }, { chunk: 1.5 }]) {
    assert.throws(() => moveSchedule(10, o), (e: MemsysError) => e.code === 'ERR_MEMSYS_INVALID_ARG', JSON.stringify(o));
  }
});

test('the bandwidth limit on a real clock: an instant sidecar is held to it', async () => {
  const { addr } = touched(8 * MiB);
  const sc = fakeSidecar();
  const bandwidth = 20; // MiB/s: 6 MiB in 128-page (512 KiB) requests, the last one starting after 275 ms
  const pages = 1536;
  const t0 = performance.now();
  const r = await movePages(process.pid, addr, pages, 0, { sidecar: sc, bandwidth, chunk: 128, topology: topology(ONE) });
  const ms = performance.now() - t0;
  assert.is(sc.reqs.length, 12);
  const before = (pages - 128) * PAGE / MiB; // MB sent before the last request started
  const least = before / bandwidth * 1000;
  assert.ok(ms >= 0.9 * least, `${ms.toFixed(1)} ms, at least ${least} ms`);
  assert.ok(before / (ms / 1000) <= bandwidth * 1.1, `${(before / (ms / 1000)).toFixed(1)} MiB/s`);
  assert.ok(ms < least * 4 + 1000, `${ms.toFixed(1)} ms: the waits are not much longer than the limit needs`);
  assert.ok(Math.abs(r.ms - ms) < 50, `the report's ${r.ms} ms`);
});

test('movePages: a node that does not exist, a pid that does not exist, a range not mapped: ERR_MEMSYS_NUMA naming it, the sidecar never asked', async () => {
  const { addr } = touched(MiB);
  const sc = fakeSidecar();
  await rejectsCode(movePages(process.pid, addr, 256, 7, { sidecar: sc }), 'ERR_MEMSYS_NUMA', 'node 7 does not exist', 'this machine has node 0');
  await rejectsCode(movePages(process.pid, addr, 256, 7, { sidecar: sc, topology: topology(TWO) }), 'ERR_MEMSYS_NUMA', 'node 7', 'nodes 0, 1');
  await rejectsCode(movePages(2 ** 22 + 1, addr, 256, 0, { sidecar: sc }), 'ERR_MEMSYS_NUMA', 'pid 4194305 does not exist');
  await rejectsCode(movePages(process.pid, PAGE, 16, 0, { sidecar: sc }), 'ERR_MEMSYS_NUMA', 'the range 0x1000-0x11000 (16 pages) is not mapped', `pid ${process.pid}`);
  // a range that begins in a mapping and runs into the gap after it
  const maps = memoryMaps('self');
  const m = maps.find((x) => !maps.some((y) => y.start === x.end))!;
  await rejectsCode(movePages(process.pid, m.end - PAGE, 2, 0, { sidecar: sc }), 'ERR_MEMSYS_NUMA', `is not mapped in pid ${process.pid}: nothing is mapped at 0x${hex(m.end)}`);
  assert.is(sc.reqs.length, 0);
  for (const [args, part] of [[[0, addr, 1, 0], 'pid 0'], [[process.pid, addr + 1, 1, 0], 'multiple of 4096'], [[process.pid, addr, 0, 0], 'pages 0'],
    [[process.pid, addr, 1, -1], 'node -1'], [[process.pid, addr, 1, 0, { bandwidth: -5 }], 'bandwidth -5']] as const) {
    await rejectsCode(movePages(...(args as unknown as Parameters<typeof movePages>)), 'ERR_MEMSYS_INVALID_ARG', part);
  }
});

test('movePages: a request that fails half-way says how far the move got, with the report so far', async () => {
  const { addr } = touched(8 * MiB);
  const sc = fakeSidecar((_, n) => (n === 3 ? sidecarError('move_pages: No such process (ESRCH)', 3) : undefined));
  let err: unknown;
  try {
    await movePages(process.pid, addr, 2000, 0, { sidecar: sc, chunk: 512, topology: topology(ONE) });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof NumaError, String(err));
  const e = err as NumaError;
  assert.is(e.code, 'ERR_MEMSYS_NUMA');
  assert.match(e.message, `moving 2000 pages of pid ${process.pid} at 0x${hex(addr)} to node 0 failed after 1024 of them (1022 moved, 2 there already): pid ${process.pid} does not exist`);
  assert.equal([e.report!.pages, e.report!.moved, e.errno], [1024, 1022, 'ESRCH']);
  const perm = fakeSidecar(() => sidecarError('move_pages: Operation not permitted (EPERM)', 1));
  await rejectsCode(movePages(process.pid, addr, 10, 0, { sidecar: perm }), 'ERR_MEMSYS_NUMA', 'before any page moved', 'may not be touched', 'CAP_SYS_NICE');
  const gone = fakeSidecar(() => sidecarError('move_pages: No such device', 19));
  await rejectsCode(movePages(process.pid, addr, 10, 0, { sidecar: gone }), 'ERR_MEMSYS_NUMA', 'node 0 is not online (ENODEV)');
  const missing = fakeSidecar(() => new MemsysError('ERR_MEMSYS_UNSUPPORTED', 'the sidecar is not built: run npm run build'));
  await rejectsCode(movePages(process.pid, addr, 10, 0, { sidecar: missing }), 'ERR_MEMSYS_UNSUPPORTED', 'npm run build');
});

test('movePages and whereAre without a sidecar registered: ERR_MEMSYS_UNSUPPORTED; with one: it is asked', async () => {
  const { addr } = touched(MiB);
  const prev = setSidecar(undefined);
  try {
    await rejectsCode(movePages(process.pid, addr, 1, 0), 'ERR_MEMSYS_UNSUPPORTED', 'sidecar');
    await rejectsCode(whereAre(process.pid, addr, 1), 'ERR_MEMSYS_UNSUPPORTED', 'sidecar');
    const sc = fakeSidecar();
    setSidecar(() => sc);
    assert.is((await movePages(process.pid, addr, 256, 0)).pages, 256);
    assert.is(sc.reqs.length, 1);
  } finally {
    setSidecar(prev);
  }
});

test('whereAre: queries of 65536 pages at most, the nodes in page order', async () => {
  const sc = fakeSidecar();
  const nodes = await whereAre(process.pid, 0x7f0000000000, 70000, { sidecar: sc });
  assert.equal(sc.reqs.map((q) => [q.op, q.start, q.pages]), [['query', 0x7f0000000000, 65536], ['query', 0x7f0000000000 + 65536 * PAGE, 4464]]);
  assert.is(nodes.length, 70000);
  assert.equal(nodes.slice(0, 6), [0, 0, -14, 0, 0, -14]);
  const q = fakeSidecar(() => sidecarError('move_pages: Operation not permitted (EPERM)', 1));
  await rejectsCode(whereAre(1, 0x7f0000000000, 1, { sidecar: q }), 'ERR_MEMSYS_NUMA', 'querying 1 page of pid 1', 'may not be touched');
});

// ---- mm.place() -------------------------------------------------------------------------------

function pool(name: string): MMSA {
  const mm = new MMSA({ name, arenaSize: MiB, memStats: () => ({ total: 16 * 1024 * MiB, free: 8 * 1024 * MiB }), env: {}, housekeeping: false });
  assert.is(mm.init(), null);
  return mm;
}
// Every arena's memory is covered by the requests' ranges, to `node`.
function covered(mm: MMSA, reqs: Req[], node: number): void {
  for (const a of mm.pool.arenas.list) {
    const addr = numa!.address(a.u8);
    const pages = reqs.filter((q) => q.node === node && q.start >= addr && q.start < addr + a.bytes).reduce((s, q) => s + q.pages, 0);
    assert.is(pages, a.bytes / PAGE, `arena ${a.id} at ${hex(addr)}`);
  }
}
const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), 'in time');
};

test('mm.place(): every arena moved, a new arena after place() moved too, until place() is called again', async () => {
  const prev = placement();
  const sc = fakeSidecar();
  setPlacement(nodePlacement({ sidecar: sc, topology: () => topology(TWO) }));
  const mm = pool('placed');
  try {
    const bufs = Array.from({ length: 70 }, () => mm.alloc());
    const arenas = mm.pool.arenas.list.length;
    assert.ok(arenas >= 2, `${arenas} arenas`);
    const r = await mm.place(1);
    covered(mm, sc.reqs, 1);
    assert.equal([r.pages, r.moved, r.balancing, r.bound], [arenas * MiB / PAGE, arenas * MiB / PAGE - sc.reqs.length, true, false]);
    const seen = sc.reqs.length;
    while (mm.pool.arenas.list.length === arenas) bufs.push(mm.alloc());
    await until(() => sc.reqs.length === seen + 1); // 256 pages: one request an arena
    covered(mm, sc.reqs, 1);
    const before = sc.reqs.length;
    await mm.place(0);
    const n = mm.pool.arenas.list.length;
    while (mm.pool.arenas.list.length === n) bufs.push(mm.alloc());
    await until(() => sc.reqs.length >= before + n + 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.is(sc.reqs.length, before + n + 1, 'the new arena once, to node 0 only');
    covered(mm, sc.reqs, 0);
    for (const b of bufs) mm.free(b);
  } finally {
    mm.terminate();
    setPlacement(prev);
  }
});

test('mm.place(): a move that fails at a later arena says what the whole place() did, the arenas before it included', async () => {
  const prev = placement();
  // One request an arena (256 pages): the second arena's fails.
  const sc = fakeSidecar((_, n) => (n === 2 ? sidecarError('move_pages: Cannot allocate memory (ENOMEM)', 12) : undefined));
  setPlacement(nodePlacement({ sidecar: sc, topology: () => topology(TWO) }));
  const mm = pool('half-placed');
  try {
    const bufs = Array.from({ length: 70 }, () => mm.alloc());
    assert.ok(mm.pool.arenas.list.length >= 2);
    let err: unknown;
    try { await mm.place(1); } catch (e) { err = e; }
    assert.ok(err instanceof NumaError, String(err));
    const r = (err as NumaError).report!;
    assert.equal([r.pages, r.moved, r.already], [256, 255, 1], 'the first arena is in the report');
    assert.match((err as NumaError).message, 'place(1) had handled 256 pages of its arenas: 255 moved, 1 there already');
    for (const b of bufs) mm.free(b);
  } finally {
    mm.terminate();
    setPlacement(prev);
  }
});

test('mm.place(): an arena added later that cannot be placed is a warning, not an unhandled rejection', async () => {
  const prev = placement();
  let failing = false;
  const sc = fakeSidecar(() => (failing ? sidecarError('move_pages: Cannot allocate memory (ENOMEM)', 12) : undefined));
  const warnings: Error[] = [];
  setPlacement(nodePlacement({ sidecar: sc, warn: (e) => warnings.push(e) }));
  const mm = pool('warned');
  try {
    const bufs = [mm.alloc()];
    await mm.place(0);
    failing = true;
    const n = mm.pool.arenas.list.length;
    while (mm.pool.arenas.list.length === n) bufs.push(mm.alloc());
    await until(() => warnings.length === 1);
    assert.ok(warnings[0] instanceof NumaError && /moving 256 pages of pid \d+ at 0x[0-9a-f]+ to node 0 failed before any page moved/.test(warnings[0].message), String(warnings[0]));
    for (const b of bufs) mm.free(b);
  } finally {
    mm.terminate();
    setPlacement(prev);
  }
});

test('mm.place({ bind }): the arenas are bound to the node by mbind, and the report says so', async () => {
  const prev = placement();
  const sc = fakeSidecar();
  setPlacement(nodePlacement({ sidecar: sc }));
  const mm = pool('bound');
  try {
    const b = mm.alloc();
    const r = await mm.place(0, { bind: true, bandwidth: 1000 });
    assert.is(r.bound, true);
    const addr = numa!.address(mm.pool.arenas.list[0]!.u8);
    assert.is(numaMaps('self').find((m) => m.start === addr)?.policy, 'bind:0');
    mm.free(b);
  } finally {
    mm.terminate();
    setPlacement(prev);
  }
});

test('mm.place(): a node that does not exist, no addon, no memsys/node, a terminated MMSA: each refused by name', async () => {
  const prev = placement();
  const sc = fakeSidecar();
  const mm = pool('refused');
  try {
    mm.alloc();
    setPlacement(nodePlacement({ sidecar: sc }));
    await rejectsCode(mm.place(7), 'ERR_MEMSYS_NUMA', 'node 7 does not exist');
    await rejectsCode(mm.place(0, { bandwidth: 0 }), 'ERR_MEMSYS_INVALID_ARG', 'bandwidth 0');
    await rejectsCode(mm.place(-1), 'ERR_MEMSYS_INVALID_ARG', 'node -1');
    setPlacement(nodePlacement({ sidecar: sc, native: { missing: 'the native page helper is not built (no cc): install a C compiler (apt-get install gcc) and run `npm run build`' } }));
    await rejectsCode(mm.place(0, { bind: true }), 'ERR_MEMSYS_UNSUPPORTED', 'mbind', 'npm run build');
    const failing = fakeSidecar(() => sidecarError('move_pages: Operation not permitted (EPERM)', 1));
    setPlacement(nodePlacement({ sidecar: failing }));
    await rejectsCode(mm.place(0), 'ERR_MEMSYS_NUMA', 'may not be touched');
    setPlacement(undefined);
    await rejectsCode(mm.place(0), 'ERR_MEMSYS_UNSUPPORTED', 'memsys/node');
    assert.is(sc.reqs.length, 0);
    setPlacement(nodePlacement({ sidecar: sc }));
    mm.terminate();
    await rejectsCode(mm.place(0), 'ERR_MEMSYS_STATE', 'terminated');
  } finally {
    mm.terminate();
    setPlacement(prev);
  }
});

test('memsys/node registers the placement (mm.place works with it loaded)', () => {
  assert.ok(placement(), 'registered by src/node/index.ts');
});

test.run();
