// The Node statistics provider against fixture trees (real /proc and cgroup file formats under an
// injected root): cgroup v1, v2, hybrid, nested limits, no limit, strict overcommit, swap growing,
// PSI, missing and odd files; and against the live machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MMSA, Pressure, createHostStats, readHostStats } from '../src/node/index.js';
import { MEMINFO, fixtureTree as tree, meminfo } from './helpers.js';

const FIX = new URL('./fixtures/host/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIX), 'utf8');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const V2_MOUNT = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
const PSI_QUIET = 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';
const V2_STAT = 'anon 734003200\nfile 1073741824\nkernel 20971520\nshmem 0\nactive_anon 700000000\ninactive_anon 34003200\nactive_file 536870912\ninactive_file 536870912\nunevictable 0\n';

test('cgroup v1 (hybrid host, as on the development VM): limit, usage less inactive file, hierarchical limit', () => {
  const leaf = '/sys/fs/cgroup/memory/process_api/f71538035d170cc48b7bbac959ab5795';
  const stat = fixture('memory.stat-v1')
    .replace(/^total_inactive_file \d+/m, `total_inactive_file ${512 * MiB}`)
    .replace(/^hierarchical_memory_limit \d+/m, `hierarchical_memory_limit ${3 * GiB}`);
  const root = tree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': fixture('cgroup-hybrid'),
    '/proc/self/mountinfo': fixture('mountinfo-hybrid'),
    '/proc/pressure/memory': PSI_QUIET,
    '/proc/sys/vm/overcommit_memory': '0\n',
    [`${leaf}/memory.limit_in_bytes`]: `${2 * GiB}\n`,
    [`${leaf}/memory.usage_in_bytes`]: `${1536 * MiB}\n`,
    [`${leaf}/memory.soft_limit_in_bytes`]: '9223372036854771712\n',
    [`${leaf}/memory.stat`]: stat,
    '/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes': '9223372036854771712\n',
    '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
  });
  const s = readHostStats(root)!;
  assert.is(s.cgroup?.version, 1);
  assert.is(s.cgroup?.path, '/process_api/f71538035d170cc48b7bbac959ab5795');
  assert.is(s.cgroup?.limit, 2 * GiB);
  assert.is(s.cgroup?.limitFrom, leaf);
  assert.is(s.cgroup?.high, undefined, 'an unlimited soft limit (2^63 − 4096) is no limit');
  assert.is(s.total, 2 * GiB);
  assert.is(s.available, 2 * GiB - (1536 - 512) * MiB, 'limit − (usage − inactive_file)');
  assert.is(s.free, 1 * GiB);
  assert.ok(s.sources!.includes(`${leaf}/memory.limit_in_bytes`));
  assert.ok(s.sources!.includes('/proc/pressure/memory'));
});

test('cgroup v2: memory.max, memory.high as the soft limit, the cgroup\'s own PSI', () => {
  const leaf = '/sys/fs/cgroup/user.slice/app.scope';
  const root = tree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '0::/user.slice/app.scope\n',
    '/proc/self/mountinfo': V2_MOUNT,
    '/proc/pressure/memory': PSI_QUIET,
    '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n',
    [`${leaf}/memory.max`]: `${4 * GiB}\n`,
    [`${leaf}/memory.high`]: `${3 * GiB}\n`,
    [`${leaf}/memory.current`]: `${2 * GiB}\n`,
    [`${leaf}/memory.stat`]: V2_STAT,
    [`${leaf}/memory.pressure`]: 'some avg10=12.50 avg60=3.00 avg300=1.00 total=987654\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=12345\n',
    '/sys/fs/cgroup/user.slice/memory.max': 'max\n',
  });
  const s = readHostStats(root)!;
  assert.is(s.cgroup?.version, 2);
  assert.is(s.cgroup?.limit, 4 * GiB);
  assert.is(s.cgroup?.high, 3 * GiB);
  assert.is(s.cgroup?.inactiveFile, 536870912);
  assert.is(s.available, 4 * GiB - (2 * GiB - 536870912));
  assert.equal(s.psi?.some, { avg10: 12.5, avg60: 3, avg300: 1, total: 987654 });
  assert.is(s.psi?.full?.avg10, 0.5);
  assert.ok(s.sources!.includes(`${leaf}/memory.pressure`) && !s.sources!.includes('/proc/pressure/memory'), 'the cgroup\'s PSI, not the host\'s');
});

test('nested limits: a parent\'s tighter limit wins, and says where it is', () => {
  const root = tree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '0::/a/b/c\n',
    '/proc/self/mountinfo': V2_MOUNT,
    '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
    '/sys/fs/cgroup/a/b/c/memory.max': `${8 * GiB}\n`,
    '/sys/fs/cgroup/a/b/c/memory.current': `${100 * MiB}\n`,
    '/sys/fs/cgroup/a/b/memory.max': 'max\n',
    '/sys/fs/cgroup/a/memory.max': `${1 * GiB}\n`,
    '/sys/fs/cgroup/a/memory.high': `${768 * MiB}\n`,
  });
  const s = readHostStats(root)!;
  assert.is(s.cgroup?.limit, 1 * GiB);
  assert.is(s.cgroup?.limitFrom, '/sys/fs/cgroup/a');
  assert.is(s.cgroup?.high, 768 * MiB);
  assert.is(s.total, 1 * GiB);
  assert.is(s.available, 1 * GiB - 100 * MiB, 'no memory.stat: usage counts in full');
});

test('hybrid: v2 mounted with no controllers and no v1 memory line means no cgroup figures; v2 with memory is used', () => {
  const none = readHostStats(tree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '1:cpu:/\n0::/x\n',
    '/proc/self/mountinfo': fixture('mountinfo-hybrid'),
    '/sys/fs/cgroup/unified/cgroup.controllers': '\n',
  }))!;
  assert.is(none.cgroup, undefined);
  assert.is(none.total, 24684084 * KiB, 'the host\'s figures');
  const v2 = readHostStats(tree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '1:cpu:/\n0::/x\n',
    '/proc/self/mountinfo': fixture('mountinfo-hybrid'),
    '/sys/fs/cgroup/unified/cgroup.controllers': 'memory pids\n',
    '/sys/fs/cgroup/unified/x/memory.max': `${GiB}\n`,
  }))!;
  assert.is(v2.cgroup?.version, 2);
  assert.is(v2.cgroup?.limit, GiB);
});

test('no limit anywhere: the host\'s figures, AIStore\'s free = min(free + cache, available)', () => {
  const s = readHostStats(tree({
    '/proc/meminfo': meminfo({ MemTotal: 16 * MiB / KiB * 1024, MemFree: 1 * GiB / KiB, MemAvailable: 6 * GiB / KiB, Cached: 4 * GiB / KiB, Buffers: 0 }),
    '/proc/self/cgroup': '0::/svc\n',
    '/proc/self/mountinfo': V2_MOUNT,
    '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
    '/sys/fs/cgroup/svc/memory.max': 'max\n',
    '/sys/fs/cgroup/svc/memory.high': 'max\n',
  }))!;
  assert.is(s.cgroup?.limit, undefined);
  assert.is(s.total, 16 * GiB);
  assert.is(s.free, 5 * GiB, 'free + cache (5 GiB) below available (6 GiB)');
  assert.is(s.available, 6 * GiB);
});

test('strict overcommit: the commit headroom bounds free and available, and pressure counts it', () => {
  const root = tree({
    '/proc/meminfo': meminfo({ CommitLimit: 12 * GiB / KiB, Committed_AS: (12 * GiB - 120 * MiB) / KiB }),
    '/proc/sys/vm/overcommit_memory': '2\n',
    '/proc/sys/vm/overcommit_ratio': '50\n',
    '/proc/sys/vm/overcommit_kbytes': '0\n',
  });
  const s = readHostStats(root)!;
  assert.equal(s.commit, { mode: 2, ratio: 50, kbytes: 0, limit: 12 * GiB, committed: 12 * GiB - 120 * MiB, headroom: 120 * MiB });
  assert.is(s.available, 120 * MiB);
  assert.is(s.free, 120 * MiB);
  const mm = new MMSA({ name: 'strict', memStats: createHostStats({ root }), minFree: 256 * MiB, env: {} });
  assert.ok(mm.init(), 'init warns: less free than the minimum');
  assert.is(mm.pressure(), Pressure.Extreme, '23 GiB of RAM free, but only 120 MiB can be committed');
  mm.terminate();
  const lax = readHostStats(tree({ '/proc/meminfo': MEMINFO, '/proc/sys/vm/overcommit_memory': '0\n' }))!;
  assert.is(lax.commit?.headroom, undefined, 'no headroom outside strict mode');
});

test('swap growing raises the pressure pass by pass (watching does not move it); PSI stall time since the last reading', () => {
  const root = tree({ '/proc/meminfo': MEMINFO, '/proc/pressure/memory': PSI_QUIET });
  let t = 0;
  const provider = createHostStats({ root, now: () => t });
  const mm = new MMSA({ name: 'swap', memStats: provider, minFree: 256 * MiB, housekeeping: false, env: {} });
  mm.init();
  const setSwap = (usedMiB: number, psiTotal: number) => {
    writeFileSync(join(root, '/proc/meminfo'), meminfo({ SwapTotal: 4 * GiB / KiB, SwapFree: (4 * GiB - usedMiB * MiB) / KiB }));
    writeFileSync(join(root, '/proc/pressure/memory'), PSI_QUIET.replace('total=0', `total=${psiTotal}`));
    t += 2000;
  };
  const seen: number[] = [];
  for (const used of [0, 100, 200, 300, 400, 400, 400, 400, 400, 400]) {
    setSwap(used, 150_000);
    seen.push(mm.housekeep().pressure); // the swap trend moves at housekeeping passes only
  }
  // criticality 0 1 2 3 4 3 2 1 0 0: above 2 OOM, above 1 Extreme, above 0 High
  assert.equal(seen, [Pressure.Low, Pressure.High, Pressure.Extreme, Pressure.OOM, Pressure.OOM, Pressure.OOM, Pressure.Extreme, Pressure.High, Pressure.Low, Pressure.Low],
    'swap criticality +1 per growing reading, −1 per flat one');
  const s = provider()!;
  assert.is(s.swap?.used, 400 * MiB);
  assert.is(s.psi?.stallUs, 0);
  setSwap(400, 250_000);
  const s2 = provider()!;
  assert.is(s2.psi?.stallUs, 100_000, 'µs stalled since the previous reading');
  assert.is(s2.psi?.sinceMs, 2000);
  for (let i = 0; i < 20; i++) { setSwap(500 + i * 10, 250_000); mm.pressure(); } // polled by a watcher
  assert.is(mm.pressure(), Pressure.Low, 'reading the level does not move the swap trend');
  mm.terminate();
});

test('missing and odd files lower what is known and never throw', () => {
  assert.is(readHostStats(tree({})), undefined, 'no /proc/meminfo: nothing known');
  assert.is(readHostStats(tree({ '/proc/meminfo': 'garbage\n' })), undefined);
  const s = readHostStats(tree({
    '/proc/meminfo': 'MemTotal: 1000 kB\nMemFree: 500 kB\n',
    '/proc/sys/vm/overcommit_memory': 'two\n',
    '/proc/self/cgroup': 'not a cgroup line\n',
    '/proc/self/mountinfo': 'broken\n',
    '/proc/pressure/memory': 'some avg10=x\n',
  }))!;
  assert.is(s.total, 1000 * KiB);
  assert.is(s.free, 500 * KiB, 'no cache, no MemAvailable: free alone');
  assert.is(s.commit, undefined);
  assert.is(s.cgroup, undefined);
  assert.is(s.psi, undefined);
  assert.equal(s.sources, ['/proc/meminfo', '/proc/sys/vm/overcommit_memory', '/proc/self/cgroup', '/proc/self/mountinfo', '/proc/pressure/memory']);
  // A cgroup whose files are unreadable or odd: the cgroup is named, its figures are not.
  const c = readHostStats(tree({
    '/proc/meminfo': MEMINFO,
    '/proc/self/cgroup': '0::/odd\n',
    '/proc/self/mountinfo': V2_MOUNT,
    '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
    '/sys/fs/cgroup/odd/memory.max': '-5\n',
    '/sys/fs/cgroup/odd/memory.current': 'lots\n',
  }))!;
  assert.is(c.cgroup?.path, '/odd');
  assert.is(c.cgroup?.limit, undefined);
  assert.is(c.total, 24684084 * KiB);
  // A provider that throws does not escape pressure() or hostStats().
  const mm = new MMSA({ name: 'throws', memStats: () => { throw new Error('boom'); }, env: {} });
  mm.init();
  assert.is(mm.hostStats(), undefined);
  assert.is(mm.pressure(), Pressure.Low);
  mm.terminate();
});

test('the live machine: figures that agree with /proc/meminfo and name their sources', () => {
  const s = readHostStats()!;
  const m = readFileSync('/proc/meminfo', 'utf8');
  const total = Number(/^MemTotal:\s+(\d+)/m.exec(m)![1]) * KiB;
  assert.ok(s.total > 0 && s.total <= total);
  assert.ok(s.free > 0 && s.free <= s.total + (s.buffCache ?? 0));
  assert.ok(s.sources!.includes('/proc/meminfo'));
  assert.ok(s.commit && [0, 1, 2].includes(s.commit.mode));
  if (s.cgroup) assert.ok(s.sources!.some((p) => p.startsWith('/sys/fs/cgroup')), 'read the cgroup it names');
});

test.run();
