// The `memsys` command. `memsys help` lists the commands, `memsys COMMAND --help` explains one.
// Each command's options are read by node:util's parseArgs, strictly: an unknown option, a missing
// value or a stray argument is an error that names it (exit 2), never silently ignored.
// The NUMA commands name another process (--pid): moving its pages takes the sidecar, which any
// process may drive; binding them (mbind) only the process itself can do.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  MMSA, type MemStats, type MoveReport, type NumaMapping, type Topology, createHostStats, formatBytes, memoryMaps, movePages, numaMaps, pageOps,
  pressureName, renderChart, topology, watch,
} from './index.js';
import { diagnose } from './doctor.js';
import { sidecarMissing } from './sidecar.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

interface Command {
  args: string;
  what: string;
  help: string[];
  options: Options;
  run(v: Values): Promise<number>;
}

const PAGE = 4096;
const root = { type: 'string' } as const;
const json = { type: 'boolean' } as const;
const ROOT_HELP = '--root DIR      read /proc and /sys under DIR (a fixture tree) instead';

// A command line that is wrong: exit 2 with the command's usage.
class Usage extends Error {}

const COMMANDS: Record<string, Command> = {
  stats: {
    args: '[--json] [--root DIR]',
    what: 'the host, overcommit, cgroup, PSI and pool figures and the pressure level',
    help: ['--json          as JSON', ROOT_HELP],
    options: { json, root },
    async run(v) {
      const mm = pool(v);
      const s = mm.hostStats();
      const level = pressureName(mm.pressureOf(s));
      if (v.json) print(JSON.stringify({ host: s, pressure: level, watermarks: mm.watermarks, pool: mm.stats() }, null, 2));
      else print(statsTable(s, level, mm.watermarks, mm));
      return 0;
    },
  },
  doctor: {
    args: '[--json] [--root DIR]',
    what: 'what limits this process\'s memory, in sentences; exit 1 on a danger',
    help: ['--json          as JSON', ROOT_HELP],
    options: { json, root },
    async run(v) {
      const mm = pool(v);
      const s = mm.hostStats();
      const found = diagnose(s, mm.watermarks.minFree, pageOps(), { missing: sidecarMissing() });
      const danger = found.some((x) => x.level === 'danger');
      if (v.json) print(JSON.stringify({ pressure: pressureName(mm.pressureOf(s)), findings: found }, null, 2));
      else for (const x of found) print(`${x.level === 'danger' ? 'DANGER' : 'info  '}  ${x.text}`);
      return danger ? 1 : 0;
    },
  },
  watch: {
    args: '[--interval ms] [--duration s] [--chart file.svg] [--root DIR]',
    what: 'the figures of this process\'s global pool, live (a server shows its own with watch() from memsys/node)',
    help: ['--interval ms   between samples (default 1000)', '--duration s    stop after this long (default: at Ctrl-C)',
      '--chart FILE    then draw the samples as SVG into FILE', ROOT_HELP],
    options: { interval: { type: 'string' }, duration: { type: 'string' }, chart: { type: 'string' }, root },
    async run(v) {
      const MAX_MS = 2 ** 31 - 1; // what a timer can wait
      const interval = Number(v.interval ?? 1000);
      const duration = Number(v.duration ?? Infinity);
      if (!(interval >= 10 && interval <= MAX_MS)) throw new Usage(`--interval ${v.interval}: expected milliseconds, 10 … ${MAX_MS}`);
      if (!(duration > 0 && (duration === Infinity || duration * 1000 <= MAX_MS))) {
        throw new Usage(`--duration ${v.duration}: expected seconds, more than 0 and at most ${Math.floor(MAX_MS / 1000)}`);
      }
      const w = watch(pool(v), { intervalMs: interval });
      await new Promise<void>((res) => {
        const stop = () => res();
        process.once('SIGINT', stop);
        if (duration !== Infinity) setTimeout(stop, duration * 1000);
        else setInterval(() => {}, 1 << 30); // until Ctrl-C
      });
      const samples = w.stop();
      if (typeof v.chart === 'string') {
        writeFileSync(v.chart, renderChart(samples, 'memsys watch'));
        print(`chart: ${v.chart}`);
      }
      process.exit(0);
    },
  },
  numa: {
    args: '[--pid P] [--json] [--root DIR]',
    what: 'the NUMA nodes (memory, CPUs, distances), a process\'s memory on each, and automatic NUMA balancing',
    help: ['--pid P         also how much of process P\'s memory is on each node (from /proc/P/numa_maps)', '--json          as JSON', ROOT_HELP],
    options: { pid: { type: 'string' }, json, root },
    async run(v) {
      const topo = topologyOf(v);
      const pid = typeof v.pid === 'string' ? pidOf(v.pid) : undefined;
      const use = pid === undefined ? undefined : perNodeBytes(numaMaps(pid, procText(v, pid, 'numa_maps')));
      if (v.json) {
        print(JSON.stringify({ ...topo, ...(use ? { pid, perNode: use } : {}) }, null, 2));
        return 0;
      }
      if (topo.nodes.length === 0) {
        print(`no NUMA nodes under ${nodeRoot(v)}: this kernel has no NUMA support, all memory is one node`);
        return 0;
      }
      const head = ['node', 'cpus', 'distances', 'memory', 'free', ...(use ? [`pid ${pid}`] : [])];
      const rows = topo.nodes.map((n) => [String(n.id), cpuRanges(n.cpus) || '-', n.distances.join(' '), formatBytes(n.memTotal), formatBytes(n.memFree),
        ...(use ? [formatBytes(use[n.id] ?? 0)] : [])]);
      print(table(head, rows));
      print(balancingLine(topo));
      return 0;
    },
  },
  pages: {
    args: '--pid P [--all] [--json] [--root DIR]',
    what: 'a process\'s mappings and the nodes their pages are on (from /proc/P/maps and numa_maps)',
    help: ['--pid P         the process', '--all           also the mappings with no page resident', '--json          as JSON', ROOT_HELP],
    options: { pid: { type: 'string' }, all: { type: 'boolean' }, json, root },
    async run(v) {
      const pid = pidOf(need(v, 'pid'));
      const maps = memoryMaps(pid, procText(v, pid, 'maps'));
      const numa = numaMaps(pid, procText(v, pid, 'numa_maps'));
      const byStart = new Map(numa.map((m) => [m.start, m]));
      const all = maps.map((m) => ({ ...m, numa: byStart.get(m.start) }));
      const shown = v.all ? all : all.filter((m) => (m.numa?.pages ?? 0) > 0);
      if (v.json) {
        print(JSON.stringify(shown, null, 2));
        return 0;
      }
      const nodes = [...new Set([...topologyOf(v).nodes.map((n) => n.id), ...numa.flatMap((m) => Object.keys(m.perNode).map(Number))])].sort((a, b) => a - b);
      const head = ['range', 'size', 'perms', 'kind', 'policy', 'resident', ...nodes.map((n) => `node ${n}`), 'mapped'];
      const rows = shown.map((m) => {
        const kb = (m.numa?.kernelPageKB ?? 4) * 1024;
        return [`${hex(m.start)}-${hex(m.end)}`, formatBytes(m.end - m.start), m.perms, m.numa?.kind ?? '-', m.numa?.policy ?? '-',
          formatBytes((m.numa?.pages ?? 0) * kb), ...nodes.map((n) => { const p = m.numa?.perNode[n]; return p ? formatBytes(p * kb) : '-'; }), m.path];
      });
      print(table(head, rows));
      const hidden = all.length - shown.length;
      print(`${all.length} mappings of pid ${pid}${hidden ? `; ${hidden} with no page resident not shown (--all shows them)` : ''}`);
      return 0;
    },
  },
  move: {
    args: '--pid P --to N [--range A-B] [--bandwidth MiB/s] [--bind] [--json]',
    what: 'moves a process\'s pages to NUMA node N through the memsys sidecar',
    help: [
      '--pid P         the process',
      '--to N          the node',
      '--range A-B     only the pages of [A, B), hexadecimal addresses as /proc/P/maps shows them;',
      '                default: every anonymous mapping with pages resident (heap, stacks, wasm memories)',
      '--bandwidth R   at most R MiB/s (default: as fast as the kernel moves them)',
      '--bind          refused: binding pages to a node (mbind) acts only on the calling process, and',
      '                memsys move is never the process it moves. The process binds its own memory',
      '                with mm.place(N, { bind: true }) from memsys/node, or starts under numactl --membind=N.',
      '--json          the report as JSON',
      'Automatic NUMA balancing (kernel.numa_balancing) may move pages back within seconds;',
      'memsys numa says whether it is on.',
    ],
    options: { pid: { type: 'string' }, to: { type: 'string' }, range: { type: 'string' }, bandwidth: { type: 'string' }, bind: { type: 'boolean' }, json },
    async run(v) {
      const pid = pidOf(need(v, 'pid'));
      const to = intOf('--to', need(v, 'to'), 'a node number');
      const bandwidth = v.bandwidth === undefined ? undefined : Number(v.bandwidth);
      if (bandwidth !== undefined && !(bandwidth > 0 && bandwidth < Infinity)) throw new Usage(`--bandwidth ${v.bandwidth}: expected MiB/s, more than 0`);
      if (v.bind) {
        throw new Usage(`--bind: mbind(2) sets the memory policy of the calling process only, so memsys move cannot bind the pages of pid ${pid}; ` +
          `the process can bind its own (mm.place(${to}, { bind: true }) from memsys/node), or start under numactl --membind=${to}`);
      }
      const ranges = typeof v.range === 'string' ? [rangeOf(v.range)] : undefined;
      const topo = topology();
      if (!topo.nodes.some((n) => n.id === to)) {
        const have = topo.nodes.length ? `this machine has node${topo.nodes.length > 1 ? 's' : ''} ${topo.nodes.map((n) => n.id).join(', ')}` : 'this kernel shows no NUMA nodes';
        return failed(`node ${to} does not exist: ${have}`);
      }
      const todo = ranges ?? anonymousRanges(pid);
      const pages = todo.reduce((s, r) => s + (r.end - r.start) / PAGE, 0);
      const total: MoveReport = { pages: 0, moved: 0, already: 0, failed: {}, ms: 0, balancing: topo.balancing, bound: false };
      const progress = progressLine(pages);
      const t0 = performance.now();
      for (const r of todo) {
        const base = { ...total, failed: { ...total.failed } };
        const add = (x: MoveReport) => ({
          ...base, pages: base.pages + x.pages, moved: base.moved + x.moved, already: base.already + x.already,
          failed: Object.fromEntries([...new Set([...Object.keys(base.failed), ...Object.keys(x.failed)])].map((k) => [k, (base.failed[k] ?? 0) + (x.failed[k] ?? 0)])),
        });
        const opts: Parameters<typeof movePages>[4] = { topology: topo, onProgress: (x) => progress(add(x), t0) };
        if (bandwidth !== undefined) opts.bandwidth = bandwidth;
        try {
          Object.assign(total, add(await movePages(pid, r.start, (r.end - r.start) / PAGE, to, opts)));
        } catch (e) {
          progress(undefined, t0);
          throw e;
        }
      }
      total.ms = performance.now() - t0;
      progress(undefined, t0);
      if (v.json) {
        print(JSON.stringify({ pid, node: to, ...total }, null, 2));
        return 0;
      }
      const fails = Object.entries(total.failed).map(([k, n]) => `${k} ${n}`).join(', ');
      print(`moved ${total.moved} pages (${formatBytes(total.moved * PAGE)}) of pid ${pid} to node ${to} in ${(total.ms / 1000).toFixed(2)} s; ` +
        `${total.already} there already${fails ? `; not moved: ${fails}` : ''}` + (todo.length > 1 ? ` (${todo.length} ranges)` : ''));
      if (total.balancing) print(balancingLine(topo));
      return 0;
    },
  },
};

const HELP_HELP = { args: '[COMMAND]', what: 'this list, or one command\'s options' };
const EXIT_CODES = 'exit codes: 0 done; 1 the command failed (doctor: a danger found); 2 a wrong command line';

function usage(name?: string): string {
  if (name && COMMANDS[name]) return `usage: memsys ${name} ${COMMANDS[name]!.args}   (memsys ${name} --help)`;
  return `usage: memsys COMMAND [options]: ${[...Object.keys(COMMANDS), 'help'].join(', ')}   (memsys help)`;
}

function helpText(name?: string): string {
  if (name && COMMANDS[name]) {
    const c = COMMANDS[name]!;
    return [`memsys ${name} ${c.args}`, '', `${c.what[0]!.toUpperCase()}${c.what.slice(1)}.`, '', ...c.help.map((h) => `  ${h}`), '', EXIT_CODES].join('\n');
  }
  const all: [string, { args: string; what: string }][] = [...Object.entries(COMMANDS), ['help', HELP_HELP]];
  const w = Math.max(...all.map(([n]) => n.length));
  return ['memsys COMMAND [options]', '', ...all.flatMap(([n, c]) => [`  ${n.padEnd(w)}  ${c.args}`, `  ${' '.repeat(w)}  ${c.what}`]), '',
    'memsys COMMAND --help (or memsys help COMMAND) explains one command.', EXIT_CODES].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) return fail('a command is needed');
  if (name === 'help' || name === '--help' || name === '-h') {
    if (rest.length > 1 || (rest[0] !== undefined && !COMMANDS[rest[0]])) return fail(`help: unknown command "${rest.join(' ')}"`);
    print(helpText(rest[0]));
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) return fail(name.startsWith('-') ? `${name}: the command comes first` : `unknown command "${name}"`);
  let v: Values;
  try {
    v = parseArgs({ args: rest, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    return fail(argError(e as Error & { code?: string }), name);
  }
  if (v.help) {
    print(helpText(name));
    return 0;
  }
  for (const [k, o] of Object.entries(cmd.options)) if (o.type === 'string' && v[k] === '') return fail(`--${k} needs a value`, name);
  try {
    return await cmd.run(v);
  } catch (e) {
    if (e instanceof Usage) return fail(e.message, name);
    if ((e as { code?: string }).code?.startsWith('ERR_MEMSYS_')) return failed((e as Error).message.replace(/^memsys: /, ''));
    throw e;
  }
}

// parseArgs's messages name the option in quotes; ours say what is wrong with it.
function argError(e: Error & { code?: string }): string {
  const opt = /'(-[^' ]+)/.exec(e.message)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown option ${opt}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': return `unexpected argument ${JSON.stringify(/'([^']*)'/.exec(e.message)?.[1] ?? '')}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(e.message)) return `${opt} takes no value`;
      if (/ambiguous/.test(e.message)) return `${opt} needs a value (one that starts with "-" is written ${opt}=-…)`;
      return `${opt} needs a value`;
    default: return e.message;
  }
}

// ---- reading the options ------------------------------------------------------------------------

function need(v: Values, k: string): string {
  const x = v[k];
  if (typeof x !== 'string') throw new Usage(`--${k} is needed`);
  return x;
}

function intOf(flag: string, s: string, what: string, min = 0): number {
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min)) throw new Usage(`${flag} ${s}: expected ${what} (an integer of at least ${min})`);
  return n;
}

const pidOf = (s: string) => intOf('--pid', s, 'a process id', 1);

function rangeOf(s: string): { start: number; end: number } {
  const m = /^(?:0x)?([0-9a-f]+)-(?:0x)?([0-9a-f]+)$/i.exec(s);
  const start = m ? parseInt(m[1]!, 16) : NaN;
  const end = m ? parseInt(m[2]!, 16) : NaN;
  if (!(start < end && end <= 2 ** 53)) throw new Usage(`--range ${s}: expected START-END, hexadecimal addresses with START below END`);
  if (start % PAGE || end % PAGE) throw new Usage(`--range ${s}: both ends must be multiples of 4096 (whole pages)`);
  return { start, end };
}

// ---- what the commands read --------------------------------------------------------------------

const nodeRoot = (v: Values) => join(typeof v.root === 'string' ? v.root : '/', 'sys/devices/system/node');
const topologyOf = (v: Values): Topology => topology(nodeRoot(v));

function pool(v: Values): MMSA {
  const mm = new MMSA({ name: 'memsys-cli', memStats: createHostStats({ root: typeof v.root === 'string' ? v.root : '' }) });
  mm.init();
  return mm;
}

// A process's /proc file under --root; undefined without one: the parsers read /proc themselves.
function procText(v: Values, pid: number, file: string): string | undefined {
  if (typeof v.root !== 'string') return undefined;
  const dir = join(v.root, 'proc', String(pid));
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch {
    throw Object.assign(new Error(`pid ${pid} does not exist (no ${join(dir, file)})`), { code: 'ERR_MEMSYS_NUMA' });
  }
}

function perNodeBytes(maps: NumaMapping[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const m of maps) for (const [n, p] of Object.entries(m.perNode)) out[Number(n)] = (out[Number(n)] ?? 0) + p * m.kernelPageKB * 1024;
  return out;
}

// What `move` moves without --range: as memtierd tracks, the process's anonymous memory (heap,
// stacks, anonymous mappings such as wasm memories) with pages resident.
function anonymousRanges(pid: number): { start: number; end: number }[] {
  const numa = new Map(numaMaps(pid).map((m) => [m.start, m]));
  return memoryMaps(pid).filter((m) => {
    const n = numa.get(m.start);
    return n !== undefined && n.pages > 0 && (n.kind === 'anon' || n.kind === 'heap' || n.kind === 'stack');
  }).map((m) => ({ start: m.start, end: m.end }));
}

// ---- output ------------------------------------------------------------------------------------

function balancingLine(topo: Topology): string {
  if (topo.balancing === undefined) return 'automatic NUMA balancing: unknown (cannot read kernel.numa_balancing)';
  return topo.balancing
    ? 'automatic NUMA balancing: on (kernel.numa_balancing): the kernel moves pages towards the CPUs that touch them, so moved pages may go back within seconds unless the process binds them (mm.place(node, { bind: true }))'
    : 'automatic NUMA balancing: off (kernel.numa_balancing = 0): pages stay where they are moved';
}

// On a terminal one line rewritten in place; otherwise a line at most every second.
function progressLine(pages: number): (r: MoveReport | undefined, t0: number) => void {
  const tty = process.stderr.isTTY;
  let last = 0;
  let shown = false;
  return (r, t0) => {
    if (!r) {
      if (shown && tty) process.stderr.write('\n');
      return;
    }
    const now = performance.now();
    if (!tty && now - last < 1000 && r.pages < pages) return;
    last = now;
    shown = true;
    const s = (now - t0) / 1000;
    const line = `moving: ${r.pages} / ${pages} pages (${Math.floor(100 * r.pages / pages)}%), ${r.moved} moved, ${r.already} there already, ` +
      `${s > 0 ? (r.pages * PAGE / 2 ** 20 / s).toFixed(1) : '-'} MiB/s`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  };
}

function cpuRanges(cpus: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    out.push(j > i ? `${cpus[i]}-${cpus[j]}` : String(cpus[i]));
    i = j;
  }
  return out.join(',');
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

const hex = (n: number) => n.toString(16);

function statsTable(s: MemStats | undefined, level: string, wm: { minFree: number; lowWM: number }, mm: MMSA): string {
  const f = (b: number | undefined) => (b === undefined ? '-' : formatBytes(b));
  const rows: [string, string][] = [];
  if (s) {
    rows.push(['host total', f(s.total)], ['free', f(s.free)], ['available', f(s.available)], ['page cache', f(s.buffCache)]);
    if (s.swap) rows.push(['swap used / total', `${f(s.swap.used)} / ${f(s.swap.total)}`]);
    if (s.commit) {
      rows.push(['overcommit mode', String(s.commit.mode)], ['commit limit / committed', `${f(s.commit.limit)} / ${f(s.commit.committed)}`]);
      if (s.commit.headroom !== undefined) rows.push(['commit headroom', f(s.commit.headroom)]);
    }
    if (s.cgroup) {
      const c = s.cgroup;
      rows.push([`cgroup v${c.version}`, c.path], ['cgroup limit', c.limit === undefined ? 'none' : `${f(c.limit)} (${c.limitFrom})`],
        ['cgroup memory.high', c.high === undefined ? 'none' : f(c.high)], ['cgroup usage / inactive file', `${f(c.usage)} / ${f(c.inactiveFile)}`]);
    }
    if (s.psi) {
      const p = s.psi;
      rows.push(['PSI some avg10/60/300', `${p.some.avg10} / ${p.some.avg60} / ${p.some.avg300} %`]);
      if (p.full) rows.push(['PSI full avg10/60/300', `${p.full.avg10} / ${p.full.avg60} / ${p.full.avg300} %`]);
    }
  } else {
    rows.push(['host', 'no figures (cannot read /proc/meminfo)']);
  }
  const st = mm.stats();
  rows.push(['pressure', level], ['min free / low watermark', `${f(wm.minFree)} / ${f(wm.lowWM)}`],
    ['pool', `${st.arenas} arena(s), ${f(st.bytes)}`]);
  const w = Math.max(...rows.map((x) => x[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

function print(s: string): void {
  process.stdout.write(s + '\n');
}

// A wrong command line: exit 2.
function fail(why: string, name?: string): number {
  process.stderr.write(`memsys: ${why}\n${usage(name)}\n`);
  return 2;
}

// A command that ran and could not do its work: exit 1.
function failed(why: string): number {
  process.stderr.write(`memsys: ${why}\n`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
