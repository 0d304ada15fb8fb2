// The `memsys` command (build/cli.js) on fixture trees and on the live machine: stats as a table
// and as JSON, and doctor's findings and exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { diagnose } from '../src/node/doctor.js';
import { MEMINFO, fixtureTree, meminfo } from './helpers.js';

const CLI = new URL('../build/cli.js', import.meta.url).pathname;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const V2_MOUNT = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n';
const QUIET = 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';

test('stats: a table and --json with the host, cgroup, PSI and pool figures', () => {
  const root = fixtureTree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '0::/app\n',
    '/proc/self/mountinfo': V2_MOUNT,
    '/proc/sys/vm/overcommit_memory': '0\n',
    '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
    '/sys/fs/cgroup/app/memory.max': `${4 * GiB}\n`,
    '/sys/fs/cgroup/app/memory.current': `${1 * GiB}\n`,
    '/sys/fs/cgroup/app/memory.pressure': QUIET,
  });
  const t = run('stats', '--root', root);
  assert.is(t.status, 0, t.stderr);
  for (const row of [/^host total\s+4.00 GiB$/m, /^cgroup v2\s+\/app$/m, /^cgroup limit\s+4.00 GiB \(\/sys\/fs\/cgroup\/app\)$/m, /^PSI some avg10\/60\/300\s+0 \/ 0 \/ 0 %$/m, /^pressure\s+low$/m, /^pool\s+0 arena/m]) {
    assert.match(t.stdout, row);
  }
  const j = run('stats', '--json', '--root', root);
  const out = JSON.parse(j.stdout);
  assert.is(out.host.cgroup.limit, 4 * GiB);
  assert.is(out.host.available, 3 * GiB);
  assert.is(out.pressure, 'low');
  assert.ok(out.host.sources.includes('/sys/fs/cgroup/app/memory.pressure'));
  assert.is(out.pool.arenas, 0);
});

test('doctor: strict overcommit with little headroom is a danger, in a sentence with the numbers', () => {
  const root = fixtureTree({
    '/proc/meminfo': meminfo({ MemAvailable: 10 * GiB / 1024, MemFree: 10 * GiB / 1024, CommitLimit: 12 * GiB / 1024, Committed_AS: (12 * GiB - 120 * MiB) / 1024 }),
    '/proc/sys/vm/overcommit_memory': '2\n',
    '/proc/sys/vm/overcommit_ratio': '50\n',
  });
  const r = run('doctor', '--root', root);
  assert.is(r.status, 1, 'a danger: exit 1');
  assert.match(r.stdout, /^DANGER  vm\.overcommit_memory=2 \(strict, ratio 50%\) leaves 120\.0 MiB of commit headroom \(CommitLimit 12\.0 GiB − Committed_AS 11\.9 GiB\), so allocations can fail with ENOMEM although more RAM is free$/m);
});

test('doctor: a cgroup ancestor that caps the process, stalls in PSI, a small address space', () => {
  const root = fixtureTree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '0::/a/b\n',
    '/proc/self/mountinfo': V2_MOUNT,
    '/proc/self/limits': 'Limit                     Soft Limit           Hard Limit           Units\nMax address space         12000000000          unlimited            bytes\n',
    '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
    '/sys/fs/cgroup/a/memory.max': `${2 * GiB}\n`,
    '/sys/fs/cgroup/a/memory.high': `${1536 * MiB}\n`,
    '/sys/fs/cgroup/a/b/memory.max': 'max\n',
    '/sys/fs/cgroup/a/b/memory.current': `${1900 * MiB}\n`,
    '/sys/fs/cgroup/a/b/memory.pressure': 'some avg10=4.20 avg60=2.00 avg300=0.50 total=123456\nfull avg10=1.10 avg60=0.20 avg300=0.00 total=2345\n',
  });
  const r = run('doctor', '--root', root);
  assert.is(r.status, 1);
  assert.match(r.stdout, /^DANGER  cgroup v2 \/sys\/fs\/cgroup\/a caps this process at 2\.00 GiB; 148\.0 MiB of it is usable/m);
  assert.match(r.stdout, /^info    memory\.high 1\.50 GiB: above it the kernel throttles/m);
  assert.match(r.stdout, /^DANGER  PSI shows memory stalls: some task waited 4\.2% of the last 10 s \(2% of 60 s\), all tasks 1\.1%$/m);
  assert.match(r.stdout, /^DANGER  address space is limited to 11\.2 GiB \(ulimit -v\); V8 reserves ~10 GiB per WebAssembly memory, so about 0 arena\(s\) fit, and the pool never drops its last one$/m);
  const j = JSON.parse(run('doctor', '--json', '--root', root).stdout);
  assert.equal(j.findings.map((f: { topic: string }) => f.topic), ['cgroup', 'cgroup', 'psi', 'address-space', 'memory']);
  assert.match(r.stdout, /^DANGER  only 148.0 MiB available, at or below the minimum free 1.50 GiB$/m);
});

test('doctor: a healthy host is exit 0; bad arguments are exit 2 with the usage', () => {
  const ok = run('doctor', '--root', fixtureTree({ '/proc/meminfo': MEMINFO, '/proc/pressure/memory': QUIET }));
  assert.is(ok.status, 0, ok.stdout);
  assert.match(ok.stdout, /^info    nothing limits this process below the host: 23\.1 GiB of 23\.5 GiB available$/m);
  const none = run('doctor', '--root', fixtureTree({}));
  assert.is(none.status, 1);
  assert.match(none.stdout, /cannot read \/proc\/meminfo/);
  for (const [args, msg] of [[['frobnicate'], 'unknown command "frobnicate"'], [[], 'a command is needed'], [['stats', '--root'], '--root needs a value'],
    [['watch', '--interval', '1'], '--interval 1: expected milliseconds'], [['watch', '--duration', '-2'], '--duration -2: expected seconds'],
    [['watch', '--interval', '3000000000'], '--interval 3000000000'], [['watch', '--duration', '2600000'], '--duration 2600000']] as const) {
    const r = run(...args);
    assert.is(r.status, 2);
    assert.ok(r.stderr.includes(msg) && r.stderr.includes('usage: memsys stats'), r.stderr);
  }
});

test('doctor always states the overcommit policy and what it means for this process', () => {
  const host = { total: 2 * GiB, free: GiB, available: GiB };
  const policy = (mode: number) => diagnose({ ...host, commit: { mode } }, 0, { discard: () => 0 }).find((f) => f.topic === 'overcommit')?.text;
  assert.match(policy(0)!, /^vm\.overcommit_memory=0 \(heuristic\): only a single mapping larger than RAM plus swap fails with ENOMEM/);
  assert.match(policy(1)!, /^vm\.overcommit_memory=1 \(always\): no allocation fails with ENOMEM/);
  const strict = diagnose({ ...host, commit: { mode: 2, ratio: 50, limit: 4 * GiB, committed: GiB, headroom: 3 * GiB } }, 0, { discard: () => 0 });
  assert.match(strict.find((f) => f.topic === 'overcommit')!.text, /^vm\.overcommit_memory=2 \(strict, ratio 50%\) leaves 3\.00 GiB of commit headroom/);
  assert.ok(diagnose({ ...host, commit: { mode: 0 } }, 0, { discard: () => 0 }).some((f) => f.text.startsWith('nothing limits')), 'and a healthy host still says so');
});

test('doctor without the native page helper: says memory freed inside an arena stays charged, a danger under a cgroup limit', () => {
  const host = { total: 2 * GiB, free: GiB, available: GiB };
  const missing = 'the native page helper is not built (no cc)';
  const bare = diagnose(host, 0, { missing });
  assert.equal(bare.map((f) => [f.level, f.topic]), [['info', 'give-back']]);
  assert.match(bare[0].text, /^free pages cannot be given back in place: the native page helper is not built \(no cc\); memsys drops whole empty arenas/);
  const capped = diagnose({ ...host, cgroup: { version: 2, path: '/a', limit: 2 * GiB, usage: 100 * MiB } }, 0, { missing });
  assert.equal(capped.map((f) => [f.level, f.topic]), [['info', 'cgroup'], ['danger', 'give-back']]);
  assert.match(capped[1].text, /stays charged to the cgroup$/);
  assert.equal(diagnose(host, 0, { discard: () => 0 }).map((f) => f.topic), ['memory'], 'with the helper: nothing to say');
});

test('watch: a line per sample for the given time, and a chart of them', () => {
  const chart = fixtureTree({}) + '/watch.svg';
  const r = run('watch', '--interval', '100', '--duration', '0.55', '--chart', chart);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length >= 5, `${lines.length} lines`);
  for (const l of lines.slice(0, -1)) assert.match(l, /^\s*\d+\.\d s  pool .+  in use .+  host available .+  pressure (low|moderate|high|extreme|OOM)$/, JSON.stringify(l));
  assert.is(lines.at(-1), `chart: ${chart}`);
  assert.match(readFileSync(chart, 'utf8'), /^<svg [^>]*>[\s\S]*<polyline[\s\S]*<\/svg>$/);
});

test('the live machine: stats and doctor run and agree with each other', () => {
  const s = run('stats', '--json');
  assert.is(s.status, 0, s.stderr);
  const out = JSON.parse(s.stdout);
  assert.ok(out.host.total > 0);
  const d = run('doctor', '--json');
  assert.ok(d.status === 0 || d.status === 1);
  const j = JSON.parse(d.stdout);
  assert.is(j.pressure, out.pressure);
  assert.is(d.status, j.findings.some((f: { level: string }) => f.level === 'danger') ? 1 : 0);
});

test.run();
