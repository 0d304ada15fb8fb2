// The `memsys` command: `memsys stats [--json]` prints the host, cgroup, PSI and pool figures;
// `memsys doctor [--json]` says what limits this process's memory and exits 1 on a danger;
// `memsys watch [--interval ms] [--duration s] [--chart file.svg]` shows them live for this
// process's global pool (a server shows its own with `watch()` from memsys/node).
// `--root DIR` reads /proc and /sys under DIR (fixture trees).

import { writeFileSync } from 'node:fs';
import { MMSA, type MemStats, createHostStats, formatBytes, pageOps, pressureName, renderChart, watch } from './index.js';
import { diagnose } from './doctor.js';

const USAGE = 'usage: memsys stats [--json] | memsys doctor [--json] | memsys watch [--interval ms] [--duration s] [--chart file.svg]' +
  '   (--root DIR: read /proc and /sys under DIR)';
const VALUED = ['--root', '--interval', '--duration', '--chart'];

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const opt = (k: string) => { const i = argv.indexOf(k); return i < 0 ? undefined : argv[i + 1] ?? ''; };
  for (const k of VALUED) if (opt(k) === '') return fail(`${k} needs a value`);
  const root = opt('--root') ?? '';
  const cmd = argv.find((a, i) => !a.startsWith('--') && !VALUED.includes(argv[i - 1]));
  const mm = new MMSA({ name: 'memsys-cli', memStats: createHostStats({ root }) });
  mm.init();
  const s = mm.hostStats();
  const level = pressureName(mm.pressureOf(s));
  const wm = mm.watermarks;
  if (cmd === 'stats') {
    if (json) print(JSON.stringify({ host: s, pressure: level, watermarks: wm, pool: mm.stats() }, null, 2));
    else print(statsTable(s, level, wm, mm));
    return 0;
  }
  if (cmd === 'doctor') {
    const found = diagnose(s, wm.minFree, pageOps());
    const danger = found.some((x) => x.level === 'danger');
    if (json) print(JSON.stringify({ pressure: level, findings: found }, null, 2));
    else for (const x of found) print(`${x.level === 'danger' ? 'DANGER' : 'info  '}  ${x.text}`);
    return danger ? 1 : 0;
  }
  if (cmd === 'watch') {
    const interval = Number(opt('--interval') ?? 1000);
    const duration = Number(opt('--duration') ?? Infinity);
    const MAX_MS = 2 ** 31 - 1; // what a timer can wait
    if (!(interval >= 10 && interval <= MAX_MS)) return fail(`--interval ${opt('--interval')}: expected milliseconds, 10 … ${MAX_MS}`);
    if (!(duration > 0 && (duration === Infinity || duration * 1000 <= MAX_MS))) {
      return fail(`--duration ${opt('--duration')}: expected seconds, more than 0 and at most ${Math.floor(MAX_MS / 1000)}`);
    }
    const w = watch(mm, { intervalMs: interval });
    await new Promise<void>((res) => {
      const stop = () => res();
      process.once('SIGINT', stop);
      if (duration !== Infinity) setTimeout(stop, duration * 1000);
      else setInterval(() => {}, 1 << 30); // until Ctrl-C
    });
    const samples = w.stop();
    const chart = opt('--chart');
    if (chart) {
      writeFileSync(chart, renderChart(samples, 'memsys watch'));
      print(`chart: ${chart}`);
    }
    process.exit(0);
  }
  return fail(cmd ? `unknown command "${cmd}"` : 'a command is needed');
}

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

function fail(why: string): number {
  process.stderr.write(`memsys: ${why}\n${USAGE}\n`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
