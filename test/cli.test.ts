// The `memsys` command (build/cli.js) on fixture trees and on the live machine: stats as a table
// and as JSON, doctor's findings and exit codes, the NUMA commands (numa, pages, move) and the
// strict reading of every command line (parseArgs) with its help.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { diagnose } from '../src/node/doctor.js';
import { sidecarMissing } from '../src/node/sidecar.js';
import { MEMINFO, fixtureTree, meminfo, needs } from './helpers.js';

const CLI = new URL('../build/cli.js', import.meta.url).pathname;
const SIDECAR = new URL('../build/memsys-sidecar', import.meta.url).pathname;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const V2_MOUNT = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n';
const TWO = new URL('./fixtures/numa/two-node', import.meta.url).pathname;
const ONE = new URL('./fixtures/numa/one-node', import.meta.url).pathname;
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
  for (const [args, msg, use] of [[['frobnicate'], 'unknown command "frobnicate"', 'COMMAND'], [[], 'a command is needed', 'COMMAND'],
    [['stats', '--root'], '--root needs a value', 'stats'], [['watch', '--interval', '1'], '--interval 1: expected milliseconds', 'watch'],
    [['watch', '--duration=-2'], '--duration -2: expected seconds', 'watch'], [['watch', '--interval', '3000000000'], '--interval 3000000000', 'watch'],
    [['watch', '--duration', '2600000'], '--duration 2600000', 'watch']] as const) {
    const r = run(...args);
    assert.is(r.status, 2);
    assert.ok(r.stderr.includes(msg) && r.stderr.includes(`usage: memsys ${use} `), r.stderr);
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

test('doctor says what is missing without the NUMA sidecar, and nothing when it is built', () => {
  const host = { total: 2 * GiB, free: GiB, available: GiB };
  const without = diagnose(host, 0, { discard: () => 0 }, { missing: 'the NUMA sidecar (build/memsys-sidecar) is not built (it is not in the package): install a C compiler' });
  assert.equal(without.map((f) => [f.level, f.topic]), [['info', 'memory'], ['info', 'sidecar']]);
  assert.match(without[1].text, /^the NUMA sidecar \(build\/memsys-sidecar\) is not built .*; without it there is no mm\.place\(\), no `memsys move` or `memsys pages`, and no PSI pressure events/);
  assert.equal(diagnose(host, 0, { discard: () => 0 }, {}).map((f) => f.topic), ['memory']);
});

needs('doctor with the sidecar built', existsSync(SIDECAR), `${SIDECAR} is not built (apt-get install gcc; npm run build)`, () => {
  test('doctor with the sidecar built says nothing of it', () => {
    assert.is(sidecarMissing(), undefined);
    const r = run('doctor', '--root', fixtureTree({ '/proc/meminfo': MEMINFO, '/proc/pressure/memory': QUIET }));
    assert.not.match(r.stdout, /sidecar/);
  });
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

test('every command line is read strictly: an unknown option, a missing value, a stray argument are exit 2 naming it', () => {
  for (const [args, msg, use] of [
    [['stats', '--bogus'], 'unknown option --bogus', 'stats'], [['doctor', '-q'], 'unknown option -q', 'doctor'],
    [['numa', '--pid'], '--pid needs a value', 'numa'], [['pages', '--pid='], '--pid needs a value', 'pages'],
    [['stats', '--json=yes'], '--json takes no value', 'stats'], [['stats', 'extra'], 'unexpected argument "extra"', 'stats'],
    [['watch', '--duration', '-2'], '--duration needs a value (one that starts with "-" is written --duration=-…)', 'watch'],
    [['move', '--pid', '1', '--to', '0', '--frob'], 'unknown option --frob', 'move'], [['--json', 'stats'], '--json: the command comes first', 'COMMAND'],
    [['pages'], '--pid is needed', 'pages'], [['move', '--to', '1'], '--pid is needed', 'move'], [['move', '--pid', '1'], '--to is needed', 'move'],
    [['numa', '--pid', 'x'], '--pid x: expected a process id', 'numa'], [['move', '--pid', '1', '--to', 'one'], '--to one: expected a node number', 'move'],
    [['move', '--pid', '1', '--to', '0', '--bandwidth', '0'], '--bandwidth 0: expected MiB/s', 'move'],
    [['move', '--pid', '1', '--to', '0', '--range', '3000-1000'], '--range 3000-1000: expected START-END', 'move'],
    [['move', '--pid', '1', '--to', '0', '--range', '0x1000-0x2001'], '--range 0x1000-0x2001: both ends must be multiples of 4096', 'move'],
    [['help', 'nope'], 'help: unknown command "nope"', 'COMMAND'],
  ] as const) {
    const r = run(...args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`memsys: ${msg}`) && r.stderr.includes(`usage: memsys ${use} `), r.stderr);
    assert.is(r.stdout, '');
  }
});

test('help: memsys help lists every command and the exit codes; COMMAND --help, -h and help COMMAND explain one', () => {
  const h = run('help');
  assert.is(h.status, 0);
  for (const c of ['stats', 'doctor', 'watch', 'numa', 'pages', 'move', 'help']) assert.match(h.stdout, new RegExp(`^  ${c} +\\S`, 'm'));
  assert.match(h.stdout, /exit codes: 0 done; 1 the command failed \(doctor: a danger found\); 2 a wrong command line/);
  assert.is(run('--help').stdout, h.stdout);
  const m = run('move', '--help');
  assert.is(m.status, 0);
  assert.match(m.stdout, /^memsys move --pid P --to N \[--range A-B\] \[--bandwidth MiB\/s\] \[--bind\]/);
  assert.match(m.stdout, /--bind +refused: binding pages to a node \(mbind\) acts only on the calling process/);
  assert.is(run('move', '-h').stdout, m.stdout);
  assert.is(run('help', 'move').stdout, m.stdout);
  assert.is(run('move', '--pid', '1', '--help').stdout, m.stdout, '--help wins over the rest');
  for (const c of ['stats', 'doctor', 'watch', 'numa', 'pages']) assert.match(run(c, '--help').stdout, new RegExp(`^memsys ${c} `));
});

test('numa: the two-node guest tree as a table with a process\'s memory per node, and balancing; --json', () => {
  const r = run('numa', '--root', TWO, '--pid', '4242');
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^node +cpus +distances +memory +free +pid 4242$/);
  assert.match(lines[1]!, /^0 +0 +10 20 +1006\.9 MiB +598\.0 MiB +21\.2 MiB$/);
  assert.match(lines[2]!, /^1 +1 +20 10 +1008\.0 MiB +896\.5 MiB +258\.0 MiB$/);
  assert.match(lines[3]!, /^automatic NUMA balancing: on \(kernel\.numa_balancing\): .*mm\.place\(node, \{ bind: true \}\)/);
  const j = JSON.parse(run('numa', '--root', TWO, '--pid', '4242', '--json').stdout);
  assert.equal(j.nodes.map((n: { id: number; distances: number[] }) => [n.id, n.distances]), [[0, [10, 20]], [1, [20, 10]]]);
  assert.is(j.balancing, true);
  assert.is(j.perNode[1], (63936 + 1096 + 512) * 4096 + 2048 * 1024);
  const one = run('numa', '--root', ONE);
  assert.match(one.stdout, /^0 +0-1 +10 +11\.5 GiB +10\.2 GiB$/m);
  assert.match(one.stdout, /^automatic NUMA balancing: off/m);
  assert.match(run('numa', '--root', fixtureTree({ '/proc/meminfo': MEMINFO })).stdout, /^no NUMA nodes under .*: this kernel has no NUMA support/);
  const gone = run('numa', '--root', TWO, '--pid', '99');
  assert.is(gone.status, 1);
  assert.match(gone.stderr, /^memsys: pid 99 does not exist/);
});

test('numa and pages on the live host: one node, this process\'s memory on it', () => {
  const r = run('numa', '--pid', String(process.pid));
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^node +cpus +distances +memory +free +pid ${process.pid}\\n0 +\\S+ +10 +`));
  const p = run('pages', '--pid', String(process.pid));
  assert.is(p.status, 0, p.stderr);
  assert.match(p.stdout, /^range +size +perms +kind +policy +resident +node 0 +mapped$/m);
  assert.match(p.stdout, /^[0-9a-f]+-[0-9a-f]+ .* heap .*\[heap\]$/m);
  assert.match(p.stdout, new RegExp(`^\\d+ mappings of pid ${process.pid}`, 'm'));
  const none = run('numa', '--pid', String(2 ** 22 + 1));
  assert.is(none.status, 1);
  assert.is(none.stderr, 'memsys: pid 4194305 does not exist (no /proc/4194305)\n');
});

test('pages: each mapping with pages resident, their nodes, kinds and policies; --all and --json', () => {
  const r = run('pages', '--root', TWO, '--pid', '4242');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^range +size +perms +kind +policy +resident +node 0 +node 1 +mapped$/m);
  assert.match(r.stdout, /^7fb23dfc0000-7fb24dfc0000 +256\.0 MiB +rw-p +anon +default +256\.0 MiB +6\.25 MiB +249\.8 MiB$/m);
  assert.match(r.stdout, /^7fb4a0000000-7fb4a0200000 +2\.00 MiB +rw-p +anon +bind:1 +2\.00 MiB +- +2\.00 MiB$/m);
  assert.match(r.stdout, /^5e1a000-60c4000 .* heap .*\[heap\]$/m);
  assert.match(r.stdout, /^7fb4a2a00000-7fb4a2a21000 .* file .* \/usr\/share\/my data\/table\.bin$/m);
  assert.match(r.stdout, /^12 mappings of pid 4242; 2 with no page resident not shown \(--all shows them\)$/m);
  assert.is(run('pages', '--root', TWO, '--pid', '4242', '--all').stdout.trim().split('\n').length, 14);
  const j = JSON.parse(run('pages', '--root', TWO, '--pid', '4242', '--json').stdout);
  assert.is(j.length, 10);
  assert.equal(j[5], { start: 0x7fb23dfc0000, end: 0x7fb24dfc0000, perms: 'rw-p', path: '',
    numa: { start: 0x7fb23dfc0000, policy: 'default', pages: 65536, perNode: { 0: 1600, 1: 63936 }, kernelPageKB: 4, kind: 'anon' } });
});

test('move: --bind for another process is refused (exit 2), a node, pid or range that is not there fails (exit 1)', async () => {
  const child = spawn(process.execPath, ['-e', 'const m = new WebAssembly.Memory({ initial: 64 }); new Uint8Array(m.buffer).fill(1); setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const pid = String(child.pid);
    const bind = run('move', '--pid', pid, '--to', '0', '--bind');
    assert.is(bind.status, 2);
    assert.match(bind.stderr, new RegExp(`^memsys: --bind: mbind\\(2\\) sets the memory policy of the calling process only, so memsys move cannot bind the pages of pid ${pid}; ` +
      'the process can bind its own \\(mm\\.place\\(0, \\{ bind: true \\}\\) from memsys/node\\), or start under numactl --membind=0'));
    const node = run('move', '--pid', pid, '--to', '7');
    assert.is(node.status, 1);
    assert.is(node.stderr, 'memsys: node 7 does not exist: this machine has node 0\n');
    const gone = run('move', '--pid', String(2 ** 22 + 1), '--to', '0');
    assert.is(gone.status, 1);
    assert.match(gone.stderr, /^memsys: pid 4194305 does not exist/);
    const unmapped = run('move', '--pid', pid, '--to', '0', '--range', '0x1000-0x3000');
    assert.is(unmapped.status, 1);
    assert.is(unmapped.stderr, `memsys: the range 0x1000-0x3000 (2 pages) is not mapped in pid ${pid}: nothing is mapped at 0x1000\n`);
    // Where the sidecar is built the child's memory moves to node 0 (it is there already);
    // without it the command says what it needs.
    const all = run('move', '--pid', pid, '--to', '0', '--json');
    if (all.status === 0) {
      const j = JSON.parse(all.stdout);
      assert.ok(j.pages >= 1024 && j.already + j.moved + Object.values(j.failed as Record<string, number>).reduce((a, b) => a + b, 0) === j.pages, all.stdout);
    } else {
      assert.is(all.status, 1);
      assert.match(all.stderr, /sidecar/);
    }
  } finally {
    child.kill();
  }
});

test.run();
