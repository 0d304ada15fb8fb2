// NUMA from Node: the machine's nodes (sysfs), where a process's pages are (numa_maps, or the
// sidecar's move_pages query) and moving them to a node (the sidecar's move_pages), paced as
// memtierd's mover paces its moves so that migration does not starve the workload of memory
// bandwidth.
//
// Pages are moved by the sidecar (build/memsys-sidecar, driven through src/node/sidecar.ts), not
// in this process: move_pages(2) with thousands of pages blocks its caller for as long as the
// copy takes, and a helper process can move any process's pages, not just its own. Binding
// (mbind) is the exception: it acts on the calling process only, so it is the native page
// helper's (mover.ts).

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemsysError, MemsysTypeError, type MoveReport, show } from '../index.js';
import { reader } from './cgroup.js';
import { parseMeminfo } from './proc.js';

export type { MoveReport } from '../index.js';

const PAGE = 4096;
const MiB = 2 ** 20;
const NODE_ROOT = '/sys/devices/system/node';
// The sidecar's limits on one request (docs/sidecar.md).
const MAX_REQUEST_PAGES = 1048576;
const MAX_ADDRESS = 2 ** 53;
// A paced move asks for 2 MiB at a time: one huge page, and short enough a request that pacing
// stays smooth. An unpaced one asks for 64 MiB: each request costs a round trip to the sidecar
// and its query first, which at 2 MiB a request halved the rate of a bare move_pages loop in the
// two-node guest (0.41–0.75x).
const PACED_CHUNK = 512;
const UNPACED_CHUNK = 16384;
const QUERY_CHUNK = 65536;
// A first move of transparent huge pages to a node has taken 13–22 s under emulation.
const MOVE_TIMEOUT_MS = 60_000;

/** One NUMA node: its memory (bytes), CPUs and distances to every node (sysfs order). */
export interface NumaNode {
  id: number;
  memTotal: number;
  memFree: number;
  cpus: number[];
  distances: number[];
}

/** The machine's NUMA nodes and whether automatic NUMA balancing is on. */
export interface Topology {
  nodes: NumaNode[];
  /** kernel.numa_balancing ≠ 0; undefined where it cannot be read. */
  balancing: boolean | undefined;
}

/** One mapping's line of /proc/PID/numa_maps. */
export interface NumaMapping {
  /** The mapping's first address. */
  start: number;
  /** Its memory policy: `default`, `bind:1`, `interleave:0-1`, `prefer:0`, … */
  policy: string;
  /** Pages resident (in units of kernelPageKB): the sum of perNode. */
  pages: number;
  /** Resident pages per node. */
  perNode: Record<number, number>;
  kernelPageKB: number;
  /** `heap`, `stack`, `huge` (hugetlbfs), `file`, `anon` or `other` (nothing resident, nothing named). */
  kind: string;
  /** The mapped file, for kind `file` (and `huge` mappings of a file). */
  file?: string;
}

/** One line of /proc/PID/maps: [start, end) with its permissions and what is mapped there. */
export interface MemoryMapping {
  start: number;
  end: number;
  /** `rw-p` and the like. */
  perms: string;
  /** A file, `[heap]`, `[stack]`, `[vdso]`…, or '' for anonymous memory. */
  path: string;
}

/** An ERR_MEMSYS_NUMA error; `report` says how far a move got before it failed, `errno` names the
 * system call's error where there was one. */
export class NumaError extends MemsysError {
  /** What the move did before it failed (moves only). */
  readonly report?: MoveReport;
  /** The errno name (`EPERM`, `ESRCH`, `ENODEV`, …), where a system call failed. */
  readonly errno?: string;
  /** An ERR_MEMSYS_NUMA error; the message is prefixed "memsys: ". */
  constructor(message: string, extra: { report?: MoveReport; errno?: string } = {}) {
    super('ERR_MEMSYS_NUMA', message);
    this.name = 'NumaError';
    if (extra.report) this.report = extra.report;
    if (extra.errno) this.errno = extra.errno;
  }
}

// ---- topology ----------------------------------------------------------------------------------

/** The NUMA nodes under `root` (sysfs's node directory; a fixture tree's in tests) and automatic
 * NUMA balancing's setting: /proc/sys/kernel/numa_balancing, read beside the root's `sys/` when
 * the root is a tree's `…/sys/devices/system/node`. A kernel without NUMA has no such directory:
 * no nodes. */
export function topology(root: string = NODE_ROOT): Topology {
  let names: string[] = [];
  try {
    names = readdirSync(root).filter((n) => /^node\d+$/.test(n));
  } catch {
    // no NUMA support in this kernel
  }
  const read = reader('', []);
  const readText = (path: string) => read(path) ?? '';
  const nodes = names.map((n) => Number(n.slice(4))).sort((a, b) => a - b).map((id): NumaNode => {
    const dir = join(root, `node${id}`);
    // /proc/meminfo's lines, each after "Node N ".
    const mem = parseMeminfo(readText(join(dir, 'meminfo')).replace(/^Node\s+\d+\s+/gm, ''));
    return {
      id, memTotal: mem.get('MemTotal') ?? 0, memFree: mem.get('MemFree') ?? 0,
      cpus: parseCpuList(readText(join(dir, 'cpulist'))),
      distances: readText(join(dir, 'distance')).trim().split(/\s+/).filter(Boolean).map(Number),
    };
  });
  const suffix = NODE_ROOT.slice(1);
  const trimmed = root.replace(/\/+$/, '');
  let balancing: boolean | undefined;
  if (trimmed.endsWith(suffix)) {
    const text = readText(join(trimmed.slice(0, -suffix.length) || '/', 'proc/sys/kernel/numa_balancing')).trim();
    // 1 balances by access, 2 promotes to faster memory tiers, 3 both: all of them move pages.
    if (/^\d+$/.test(text)) balancing = Number(text) !== 0;
  }
  return { nodes, balancing };
}

/** "0-3,8,10-11" → [0, 1, 2, 3, 8, 10, 11]; '' → []. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}


// ---- a process's memory ------------------------------------------------------------------------

/** The lines of /proc/PID/numa_maps (`text`: the file's text, read from /proc when omitted), e.g.
 * `7fb23dfc0000 default anon=65536 dirty=65536 active=0 N0=1600 N1=63936 kernelpagesize_kB=4`.
 * Throws ERR_MEMSYS_NUMA when the process does not exist or may not be read. */
export function numaMaps(pid: number | 'self', text?: string): NumaMapping[] {
  const t = text ?? readProc(checkPid(pid), 'numa_maps');
  const out: NumaMapping[] = [];
  for (const line of t.split('\n')) {
    const tok = line.trim().split(/\s+/);
    if (tok.length < 2 || !/^[0-9a-f]+$/i.test(tok[0]!)) continue;
    const perNode: Record<number, number> = {};
    let sum = 0;
    let kernelPageKB = 4;
    let flag: string | undefined;
    let file: string | undefined;
    let anon: number | undefined;
    let mapped: number | undefined;
    for (const x of tok.slice(2)) {
      const eq = x.indexOf('=');
      if (eq < 0) {
        // "stack:1234" names a thread's stack on older kernels
        const f = x.split(':')[0]!;
        if (f === 'heap' || f === 'stack' || f === 'huge') flag = flag === 'huge' ? flag : f;
        continue;
      }
      const k = x.slice(0, eq);
      const v = x.slice(eq + 1);
      const n = /^N(\d+)$/.exec(k);
      if (n) {
        perNode[Number(n[1])] = Number(v);
        sum += Number(v);
      } else if (k === 'file') {
        file = v.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      } else if (k === 'anon') {
        anon = Number(v);
      } else if (k === 'mapped') {
        mapped = Number(v);
      } else if (k === 'kernelpagesize_kB') {
        kernelPageKB = Number(v);
      }
    }
    const m: NumaMapping = {
      start: parseInt(tok[0]!, 16), policy: tok[1]!,
      pages: sum || anon || mapped || 0, perNode, kernelPageKB,
      kind: flag ?? (file !== undefined ? 'file' : anon !== undefined ? 'anon' : 'other'),
    };
    if (file !== undefined) m.file = file;
    out.push(m);
  }
  return out;
}

/** The lines of /proc/PID/maps (`text`: the file's text, read from /proc when omitted). Throws
 * ERR_MEMSYS_NUMA when the process does not exist or may not be read. */
export function memoryMaps(pid: number | 'self', text?: string): MemoryMapping[] {
  const t = text ?? readProc(checkPid(pid), 'maps');
  const out: MemoryMapping[] = [];
  for (const line of t.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+\S+\s+\S+\s+\d+\s*(.*)$/i.exec(line);
    if (m) out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, path: m[4]!.trim() });
  }
  return out;
}

function checkPid(pid: unknown): number | 'self' {
  if (pid === 'self' || isPid(pid)) return pid;
  throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `pid ${show(pid)} must be an integer of at least 1 (or 'self')`);
}

const isPid = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

function readProc(pid: number | 'self', file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT' || code === 'ESRCH') throw new NumaError(`pid ${pid} does not exist (no /proc/${pid})`, { errno: 'ESRCH' });
    if (code === 'EACCES' || code === 'EPERM') {
      throw new NumaError(`pid ${pid} may not be touched: reading /proc/${pid}/${file} failed with ${code} ` +
        '(another user\'s process needs ptrace access to it: the same user, or CAP_SYS_PTRACE)', { errno: code });
    }
    throw new NumaError(`pid ${pid}: reading /proc/${pid}/${file} failed with ${code}`, { errno: code });
  }
}

// ---- the sidecar ------------------------------------------------------------------------------

/** What movePages and whereAre ask of the sidecar: its client's request() (src/node/sidecar.ts). */
export interface SidecarClient {
  request<T extends object>(req: { op: string; [k: string]: unknown }, timeoutMs?: number): Promise<T>;
}

type SidecarSource = SidecarClient | (() => SidecarClient) | undefined;
let source: SidecarSource;

/** @internal Sets the sidecar movePages and whereAre use when not given one (memsys/node's entry
 * registers `sidecar`; tests a fake); returns the one it replaces. */
export function setSidecar(s: SidecarSource): SidecarSource {
  const prev = source;
  source = s;
  return prev;
}

function sidecarOf(given: SidecarClient | undefined): SidecarClient {
  if (given) return given;
  if (typeof source === 'function') return source();
  if (source) return source;
  throw new MemsysError('ERR_MEMSYS_UNSUPPORTED', 'moving pages needs the memsys sidecar (build/memsys-sidecar, from native/sidecar.c), ' +
    'and no sidecar client is registered in this build');
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** The name of errno `n` (`EINVAL`), or `errno n`. */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

// The errno of a failed sidecar request: its errno field where the client carries it, else the
// errno name the message quotes.
function errnoOf(e: unknown): string | undefined {
  const n = (e as { errno?: unknown }).errno;
  if (typeof n === 'number' && n > 0) return errnoName(n);
  if (typeof n === 'string' && n in constants.errno) return n;
  const names = String((e as Error)?.message ?? '').match(/\bE[A-Z0-9]{2,}\b/g) ?? [];
  return names.find((x) => x in constants.errno);
}

// ---- where pages are, and moving them ----------------------------------------------------------

/** The node of each 4 KiB page of [start, start + pages × 4096) in process `pid`, or −errno for a
 * page on none (−ENOENT: never touched; −EFAULT: not mapped, or the shared zero page). Asks the
 * sidecar (move_pages without nodes). */
export async function whereAre(pid: number, start: number, pages: number, opts: { sidecar?: SidecarClient } = {}): Promise<number[]> {
  checkRange(pid, start, pages);
  const sc = sidecarOf(opts.sidecar);
  const out: number[] = [];
  for (let done = 0; done < pages; done += QUERY_CHUNK) {
    const n = Math.min(QUERY_CHUNK, pages - done);
    let r: { nodes: number[] };
    try {
      r = await sc.request<{ nodes: number[] }>({ op: 'query', pid, start: start + done * PAGE, pages: n });
    } catch (e) {
      throw sidecarFailure(e, `querying ${count(pages)} of pid ${pid} at ${hex(start)}`, pid, undefined);
    }
    for (const x of r.nodes) out.push(x);
  }
  return out;
}

/** What movePages takes besides the pages and the node. */
export interface MoveOptions {
  /** At most this many MiB (2^20 bytes) a second, over the pages requested. */
  bandwidth?: number;
  /** At least this many ms between one request's answer and the next request (memtierd's
   * IntervalMs); with `bandwidth` and no `chunk`, each request carries one interval's worth. */
  interval?: number;
  /** Pages per sidecar request (default 512, 2 MiB, when paced by `bandwidth` or `interval`;
   * otherwise 16384, 64 MiB). */
  chunk?: number;
  /** Called after each request with the report so far. */
  onProgress?: (r: MoveReport) => void;
  /** The sidecar to ask (default: memsys/node's). */
  sidecar?: SidecarClient;
  /** The machine's nodes (default: topology()), to check the node against. */
  topology?: Topology;
}

/** @internal How a move is paced: pages per request, ms per page for the bandwidth, ms between
 * requests. */
export function pacing(o: Pick<MoveOptions, 'bandwidth' | 'interval' | 'chunk'>): { chunk: number; msPerPage: number; interval: number } {
  const { bandwidth, interval, chunk } = o;
  if (bandwidth !== undefined && !(typeof bandwidth === 'number' && bandwidth > 0 && bandwidth < Infinity)) {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `bandwidth ${show(bandwidth)} must be a number of MiB/s above 0`);
  }
  if (interval !== undefined && !(typeof interval === 'number' && interval >= 0 && interval <= 2 ** 31 - 1)) {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `interval ${show(interval)} must be milliseconds, 0 … ${2 ** 31 - 1}`);
  }
  if (chunk !== undefined && !(Number.isSafeInteger(chunk) && chunk >= 1 && chunk <= MAX_REQUEST_PAGES)) {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `chunk ${show(chunk)} must be an integer of pages, 1 … ${MAX_REQUEST_PAGES}`);
  }
  const perInterval = bandwidth && interval ? Math.floor((bandwidth * MiB / PAGE) * interval / 1000) : 0;
  return {
    chunk: chunk ?? (perInterval > 0 ? Math.min(perInterval, MAX_REQUEST_PAGES) : bandwidth || interval ? PACED_CHUNK : UNPACED_CHUNK),
    msPerPage: bandwidth ? (1000 * PAGE) / (bandwidth * MiB) : 0,
    interval: interval ?? 0,
  };
}

/** @internal When each request of a move of `pages` starts, ms after the first, if the sidecar
 * answered at once: the plan movePages keeps to. */
export function moveSchedule(pages: number, o: Pick<MoveOptions, 'bandwidth' | 'interval' | 'chunk'>): { chunk: number; starts: number[] } {
  const p = pacing(o);
  const starts: number[] = [];
  for (let done = 0, prev = -Infinity; done < pages; done += p.chunk) {
    const at = Math.max(done * p.msPerPage, prev + p.interval, 0);
    starts.push(at);
    prev = at;
  }
  return { chunk: p.chunk, starts };
}

/** Moves the 4 KiB pages [start, start + pages × 4096) of process `pid` to NUMA node `node`
 * through the sidecar, `chunk` pages a request, no faster than `bandwidth`; resolves what it did.
 * Rejects ERR_MEMSYS_NUMA (a NumaError) naming the node, pid or range and why: a node the
 * machine does not have, a process that does not exist or may not be touched, a range that is not
 * mapped, or a request that failed (its `report` says how far the move got). */
export async function movePages(pid: number, start: number, pages: number, node: number, opts: MoveOptions = {}): Promise<MoveReport> {
  checkRange(pid, start, pages);
  if (!(Number.isSafeInteger(node) && node >= 0)) throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `node ${show(node)} must be an integer of at least 0`);
  const pace = pacing(opts);
  const topo = opts.topology ?? topology();
  checkNode(node, topo);
  checkMapped(pid, start, pages);
  const sc = sidecarOf(opts.sidecar);
  const t0 = performance.now();
  const report: MoveReport = { pages: 0, moved: 0, already: 0, failed: {}, ms: 0, balancing: topo.balancing, bound: false };
  let lastEnd = -Infinity;
  while (report.pages < pages) {
    const wait = Math.max(t0 + report.pages * pace.msPerPage, lastEnd + pace.interval) - performance.now();
    if (wait >= 1) await sleep(wait);
    const n = Math.min(pace.chunk, pages - report.pages);
    let r: { moved?: number; already?: number; failed?: Record<string, number> };
    try {
      r = await sc.request({ op: 'move', pid, start: start + report.pages * PAGE, pages: n, node }, MOVE_TIMEOUT_MS);
    } catch (e) {
      report.ms = performance.now() - t0;
      throw sidecarFailure(e, `moving ${count(pages)} of pid ${pid} at ${hex(start)} to node ${node}`, pid, node, report);
    }
    lastEnd = performance.now();
    report.pages += n;
    report.moved += r.moved ?? 0;
    report.already += r.already ?? 0;
    for (const [k, v] of Object.entries(r.failed ?? {})) report.failed[k] = (report.failed[k] ?? 0) + v;
    report.ms = lastEnd - t0;
    opts.onProgress?.({ ...report, failed: { ...report.failed } });
  }
  return report;
}

function checkRange(pid: unknown, start: unknown, pages: unknown): void {
  if (!isPid(pid)) throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `pid ${show(pid)} must be an integer of at least 1`);
  if (!(Number.isSafeInteger(start) && (start as number) >= 0 && (start as number) % PAGE === 0)) {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `start ${typeof start === 'number' ? hex(start) : show(start)} must be an address that is a multiple of 4096`);
  }
  if (!(Number.isSafeInteger(pages) && (pages as number) >= 1 && (start as number) + (pages as number) * PAGE <= MAX_ADDRESS)) {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `pages ${show(pages)} must be an integer of at least 1 that keeps the range below 2^53`);
  }
}

/** @internal Throws ERR_MEMSYS_NUMA unless `node` is one of the topology's nodes. */
export function checkNode(node: number, topo: Topology): void {
  if (topo.nodes.some((n) => n.id === node)) return;
  const have = topo.nodes.length ? `this machine has node${topo.nodes.length > 1 ? 's' : ''} ${topo.nodes.map((n) => n.id).join(', ')}` : 'this kernel shows no NUMA nodes';
  throw new NumaError(`node ${node} does not exist: ${have}`);
}

// The whole range must lie in mappings of the process (adjacent ones may share it), or the move
// fails page by page with EFAULT, or moves pages of something else.
function checkMapped(pid: number, start: number, pages: number): void {
  if (!statOk(`/proc/${pid}`)) throw new NumaError(`pid ${pid} does not exist (no /proc/${pid})`, { errno: 'ESRCH' });
  const maps = memoryMaps(pid).sort((a, b) => a.start - b.start);
  const end = start + pages * PAGE;
  let at = start;
  for (const m of maps) {
    if (m.end <= at) continue;
    if (m.start > at) break;
    at = m.end;
    if (at >= end) return;
  }
  throw new NumaError(`the range ${hex(start)}-${hex(end)} (${count(pages)}) is not mapped in pid ${pid}: nothing is mapped at ${hex(at)}`, { errno: 'EFAULT' });
}

function statOk(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

// A failed sidecar request as an ERR_MEMSYS_NUMA error with the reason in words; a sidecar that is
// not built stays ERR_MEMSYS_UNSUPPORTED, which already says how to build it.
function sidecarFailure(e: unknown, what: string, pid: number, node: number | undefined, report?: MoveReport): Error {
  if (e instanceof MemsysError && e.code === 'ERR_MEMSYS_UNSUPPORTED') return e;
  const errno = errnoOf(e);
  const said = String((e as Error)?.message ?? e).replace(/^memsys: /, '');
  const why =
    errno === 'ESRCH' ? `pid ${pid} does not exist (it exited?)` :
    errno === 'EPERM' ? `pid ${pid} may not be touched: moving another process's pages needs ptrace access to it (the same user, or CAP_SYS_PTRACE) and CAP_SYS_NICE (EPERM)` :
    errno === 'ENODEV' && node !== undefined ? `node ${node} is not online (ENODEV)` :
    errno === 'EACCES' && node !== undefined ? `node ${node} is not in the cpuset of pid ${pid} (EACCES)` :
    said;
  const far = report ? (report.pages ? ` after ${report.pages} of them (${report.moved} moved, ${report.already} there already)` : ' before any page moved') : '';
  const extra: { report?: MoveReport; errno?: string } = {};
  if (report) extra.report = { ...report, failed: { ...report.failed } };
  if (errno) extra.errno = errno;
  const err = new NumaError(`${what} failed${far}: ${why}`, extra);
  (err as { cause?: unknown }).cause = e;
  return err;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const count = (pages: number): string => `${pages} page${pages === 1 ? '' : 's'}`;
