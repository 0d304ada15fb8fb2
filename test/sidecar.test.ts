// The NUMA sidecar (native/sidecar.c) and its client (src/node/sidecar.ts), against the real
// kernel: page placement of this process's own WebAssembly memory, process_madvise on a child,
// the kernel's permission checks, a fuzz of hostile lines, deaths and timeouts at any moment, a
// script that must exit by itself, and PSI trigger events under real memory pressure made in a
// small memory cgroup of the test's own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, openSync, readdirSync, rmSync, rmdirSync, statfsSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MMSA, setPressureEvents } from '../src/node/index.js';
import { nodePressureEvents } from '../src/node/psi.js';
import { Sidecar, SidecarError, type SidecarRequest, sidecar } from '../src/node/sidecar.js';
import { needs, ownCgroup, rejectsCode, sweepGroups } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'build', 'memsys-sidecar');
const PAGE = 4096;
const EPERM = 1, ENOENT = 2, EACCES = 13, EFAULT = 14, ENODEV = 19;
const PID_MAX = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
const GONE_PID = PID_MAX + 1; // above pid_max: no process has it, ever
const NODES = existsSync('/sys/devices/system/node') ? readdirSync('/sys/devices/system/node').filter((n) => /^node\d+$/.test(n)) : [];
const PSI = '/proc/pressure/memory';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.unreachable(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}
// Whether a process is gone (or a zombie nobody reaped yet, which runs nothing).
function gone(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

// The sidecar spoken to directly, line by line: what the client never sends.
function raw(opts: { uid?: number; gid?: number; binary?: string } = {}) {
  const proc = spawn(opts.binary ?? BIN, [], { stdio: ['pipe', 'pipe', 'inherit'], uid: opts.uid, gid: opts.gid });
  const lines: string[] = [];
  let part = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (c: string) => {
    const cut = (part + c).split('\n');
    part = cut.pop()!;
    lines.push(...cut);
  });
  const answers = () => lines.filter((l) => !l.startsWith('{"event"'));
  return {
    proc,
    lines,
    // Sends the lines (each without a newline of its own) and resolves the answers to them.
    async send(sent: (string | Buffer)[], ms = 20_000): Promise<Record<string, unknown>[]> {
      const before = answers().length;
      proc.stdin!.write(Buffer.concat(sent.map((l) => Buffer.concat([Buffer.from(l), Buffer.from('\n')]))));
      await until(`${sent.length} answers`, () => answers().length >= before + sent.length || proc.exitCode !== null || proc.signalCode !== null, ms);
      return answers().slice(before, before + sent.length).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    end(): Promise<void> {
      proc.stdin!.end();
      return new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('close', () => r())));
    },
  };
}

// A rw mapping that appeared with `make()` and has exactly `size` bytes: a WebAssembly memory's.
function newMapping(size: number, make: () => void): number {
  const maps = () => new Set(readFileSync('/proc/self/maps', 'utf8').trim().split('\n'));
  const before = maps();
  make();
  for (const l of maps()) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p /.exec(l);
    if (m && !before.has(l) && parseInt(m[2], 16) - parseInt(m[1], 16) === size) return parseInt(m[1], 16);
  }
  return assert.unreachable('no new mapping of the memory\'s size in /proc/self/maps') as never;
}

test('no sidecar binary: ERR_MEMSYS_UNSUPPORTED saying how to build it', async () => {
  const sc = new Sidecar({ binary: join(tmpdir(), `no-memsys-sidecar-${process.pid}`) });
  await rejectsCode(sc.request({ op: 'ping' }), 'ERR_MEMSYS_UNSUPPORTED', 'not built', 'apt-get install gcc', 'npm run build');
  assert.is(sc.pid, undefined);
});

test('the client refuses what the sidecar would not understand, before sending it', async () => {
  const sc = new Sidecar({ binary: '/nonexistent' });
  for (const bad of [null, [], {}, { op: 1 }, { op: 'ping', id: 3 }, { op: 'query', pid: [1] }, { op: 'query', pid: NaN }, { op: 'query', pid: undefined }]) {
    await rejectsCode(sc.request(bad as never), 'ERR_MEMSYS_INVALID_ARG');
  }
  await rejectsCode(sc.request({ op: 'ping' }, 0), 'ERR_MEMSYS_INVALID_ARG', 'timeoutMs 0');
  assert.throws(() => new Sidecar({ timeoutMs: 1.5 }), /timeoutMs 1.5 must be an integer/);
  assert.throws(() => sidecar().onPsi(1 as never), /must be a function/);
});

needs('the sidecar suite', existsSync(BIN), `${BIN} is not built (apt-get install gcc; npm run build)`, () => {
  // Were the client to keep the process alive, this suite would fail, not hang: the script test
  // below is what shows that it does not.
  test.after(() => sidecar().close());

  test('ping: a child process of its own, protocol version 1; sidecar() is one instance', async () => {
    assert.is(sidecar(), sidecar());
    const r = await sidecar().request<{ pid: number; version: number }>({ op: 'ping' });
    assert.equal(Object.keys(r).sort(), ['pid', 'version']);
    assert.is(r.version, 1);
    assert.ok(r.pid !== process.pid && r.pid === sidecar().pid);
  });

  test('query: this process\'s WebAssembly memory, touched pages on node 0, untouched -ENOENT, unmapped -EFAULT', async () => {
    const size = 17 * 65536; // a size no other mapping is likely to have
    let mem: WebAssembly.Memory | undefined;
    const start = newMapping(size, () => { mem = new WebAssembly.Memory({ initial: 17, maximum: 17 }); });
    const view = new Uint8Array(mem!.buffer);
    for (let i = 0; i < 8; i++) view[i * PAGE] = 1;
    const { nodes } = await sidecar().request<{ nodes: number[] }>({ op: 'query', pid: process.pid, start, pages: 16 });
    assert.equal(nodes, [...Array(8).fill(0), ...Array(8).fill(-ENOENT)]);
    const unmapped = await sidecar().request<{ nodes: number[] }>({ op: 'query', pid: process.pid, start: PAGE, pages: 4 });
    assert.equal(unmapped.nodes, Array(4).fill(-EFAULT), 'the first pages of the address space are never mapped');

    // A move to node 0 finds them there; the untouched ones are counted by their errno.
    const r = await sidecar().request({ op: 'move', pid: process.pid, start, pages: 16, node: 0 });
    assert.equal(r, { moved: 0, already: 8, failed: { ENOENT: 8 } });
    if (NODES.length <= 1) {
      // One node: the kernel refuses the whole call, since node 1 has no memory.
      let err: unknown;
      try { await sidecar().request({ op: 'move', pid: process.pid, start, pages: 16, node: 1 }); } catch (e) { err = e; }
      assert.instance(err, SidecarError);
      assert.is((err as SidecarError).code, 'ERR_MEMSYS_SIDECAR');
      assert.is((err as SidecarError).errno, ENODEV);
      assert.match((err as Error).message, /^memsys: sidecar move: move_pages: No such device \(after 0 of 8 pages moved\) \(ENODEV\)$/);
    } else {
      const moved = await sidecar().request({ op: 'move', pid: process.pid, start, pages: 16, node: 1 });
      assert.equal(moved, { moved: 8, already: 0, failed: { ENOENT: 8 } });
    }
    assert.is(view[0], 1, 'the memory is intact');
    // Untouched pages are not faulted in by the move: still nothing there.
    const after = await sidecar().request<{ nodes: number[] }>({ op: 'query', pid: process.pid, start: start + 8 * PAGE, pages: 8 });
    assert.equal(after.nodes, Array(8).fill(-ENOENT));
  });

  test('madvise cold and pageout on a child process: the whole length; a pid that is gone: ESRCH', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const stack = readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('[stack]'))!;
      const [a, b] = stack.split(' ')[0].split('-').map((h) => parseInt(h, 16));
      for (const advice of ['cold', 'pageout']) {
        const r = await sidecar().request({ op: 'madvise', pid: child.pid, start: a, len: b - a, advice });
        assert.equal(r, { bytes: b - a }, advice);
      }
      await rejectsCode(sidecar().request({ op: 'madvise', pid: GONE_PID, start: a, len: PAGE, advice: 'cold' }), 'ERR_MEMSYS_SIDECAR', 'pidfd_open: No such process (ESRCH)');
      await rejectsCode(sidecar().request({ op: 'query', pid: GONE_PID, start: a, pages: 1 }), 'ERR_MEMSYS_SIDECAR', 'move_pages: No such process (ESRCH)');
      await rejectsCode(sidecar().request({ op: 'madvise', pid: child.pid, start: a, len: 100, advice: 'cold' }), 'ERR_MEMSYS_SIDECAR', 'len must be an integer 4096..');
      await rejectsCode(sidecar().request({ op: 'madvise', pid: child.pid, start: a, len: PAGE, advice: 'dontneed' }), 'ERR_MEMSYS_SIDECAR', 'advice must be one of "cold", "pageout" (got "dontneed")');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('the kernel decides what it may touch: a sidecar of another user gets EPERM (move_pages) and EACCES (process_madvise) for this process', async () => {
    // As root the sidecar runs as nobody (copied where nobody can run it); otherwise it is this
    // user's and pid 1 is root's.
    const root = process.getuid?.() === 0;
    let binary = BIN;
    let dir: string | undefined;
    if (root) {
      dir = mkdtempSync(join(tmpdir(), 'memsys-sidecar-'));
      chmodSync(dir, 0o755);
      binary = join(dir, 'memsys-sidecar');
      copyFileSync(BIN, binary);
      chmodSync(binary, 0o755);
    }
    const target = root ? process.pid : 1;
    const s = raw(root ? { uid: 65534, gid: 65534, binary } : {});
    try {
      const [q, mv, ma] = await s.send([
        JSON.stringify({ id: 1, op: 'query', pid: target, start: PAGE, pages: 1 }),
        JSON.stringify({ id: 2, op: 'move', pid: target, start: PAGE, pages: 1, node: 0 }),
        JSON.stringify({ id: 3, op: 'madvise', pid: target, start: PAGE, len: PAGE, advice: 'pageout' }),
      ]);
      assert.equal([q.id, q.ok, q.errno], [1, false, EPERM], JSON.stringify(q));
      assert.equal([mv.id, mv.ok, mv.errno], [2, false, EPERM], JSON.stringify(mv));
      assert.equal([ma.id, ma.ok, ma.errno], [3, false, EACCES], JSON.stringify(ma)); // mm_access's answer
      assert.is(q.error, 'move_pages: Operation not permitted');
      assert.is(mv.error, 'move_pages (query): Operation not permitted');
      assert.is(ma.error, 'process_madvise: Permission denied (after 0 of 4096 bytes)');
    } finally {
      await s.end();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('psi_watch: only PSI files, never opened for writing as anything else; stall and window in range; 32 at most', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsys-sidecar-'));
    const decoy = join(dir, 'memory.pressure');
    writeFileSync(decoy, 'untouched\n');
    const s = raw();
    const req = (id: number, f: Record<string, unknown>) => JSON.stringify({ id, op: 'psi_watch', path: PSI, kind: 'some', stall_us: 100_000, window_us: 2_000_000, ...f });
    try {
      const a = await s.send([
        req(1, { path: decoy }), req(2, { path: '/etc/passwd' }), req(3, { path: 'memory.pressure' }), req(4, { path: `${dir}/nothing/memory.pressure` }),
        req(5, { kind: 'partial' }), req(6, { window_us: 499_999 }), req(7, { window_us: 10_000_001 }), req(8, { stall_us: 2_000_001 }), req(9, { stall_us: 0 }),
        JSON.stringify({ id: 10, op: 'psi_unwatch', trigger: 1 }),
      ]);
      const show = (x: Record<string, unknown>) => `${x.id} ${x.errno} ${x.error}`;
      assert.equal(a.map(show), [
        `1 0 path ${decoy} is not a PSI file (not a file of a cgroup2 file system)`,
        '2 0 path must be /proc/pressure/memory or the absolute path of a cgroup\'s memory.pressure (got "/etc/passwd")',
        '3 0 path must be /proc/pressure/memory or the absolute path of a cgroup\'s memory.pressure (got "memory.pressure")',
        `4 2 open ${dir}/nothing/memory.pressure: No such file or directory`,
        '5 0 kind must be one of "some", "full" (got "partial")',
        '6 0 window_us must be an integer 500000..10000000 (got 499999)',
        '7 0 window_us must be an integer 500000..10000000 (got 10000001)',
        '8 0 stall_us must be an integer 1..2000000 (got 2000001)',
        '9 0 stall_us must be an integer 1..2000000 (got 0)',
        '10 0 trigger 1 is not watched',
      ]);
      assert.is(readFileSync(decoy, 'utf8'), 'untouched\n');
      if (existsSync(PSI)) {
        const ok = await s.send(Array.from({ length: 33 }, (_, i) => req(100 + i, {})));
        assert.equal(ok.slice(0, 32).map((x) => [x.ok, x.trigger]), Array.from({ length: 32 }, (_, i) => [true, i + 1]));
        assert.equal([ok[32].ok, ok[32].error], [false, 'at most 32 triggers can be watched at once']);
        const off = await s.send([JSON.stringify({ id: 200, op: 'psi_unwatch', trigger: 5 }), req(201, {})]);
        assert.equal(off.map((x) => [x.ok, x.trigger]), [[true, undefined], [true, 33]], 'an unwatched trigger frees its place');
      }
    } finally {
      await s.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fuzz: thousands of random and mutated lines, one answer each in order, never a crash', async () => {
    let seed = Number(process.env.MEMSYS_FUZZ_SEED ?? Date.now() % 1e9);
    const seed0 = seed;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const int = (n: number) => Math.floor(rnd() * n);
    const pick = <T>(a: readonly T[]): T => a[int(a.length)];
    const dir = mkdtempSync(join(tmpdir(), 'memsys-sidecar-'));
    const decoy = join(dir, 'memory.pressure');
    writeFileSync(decoy, 'untouched\n');
    const s = raw();
    try {
      const [first] = await s.send([JSON.stringify({ id: 1, op: 'ping' })]);
      const pid = first.pid as number;
      // Only the sidecar itself and pids no process has: a fuzz must not touch the machine's processes.
      const pids = [pid, GONE_PID];
      const addr = () => pick([0, PAGE, int(2 ** 35) * PAGE, 2 ** 53 - PAGE, 0x7ff000000000]);
      const templates: (() => Record<string, unknown>)[] = [
        () => ({ op: 'ping' }),
        () => ({ op: 'query', pid: pick(pids), start: addr(), pages: pick([1, 2, 64, 1000]) }),
        () => ({ op: 'move', pid: pick(pids), start: addr(), pages: pick([1, 16, 300]), node: pick([0, 0, 1, 1023]) }),
        () => ({ op: 'madvise', pid: pick(pids), start: addr(), len: pick([1, 4, 1000]) * PAGE, advice: pick(['cold', 'pageout']) }),
        () => ({ op: 'psi_watch', path: PSI, kind: pick(['some', 'full']), stall_us: 150_000, window_us: 2_000_000 }),
        () => ({ op: 'psi_unwatch', trigger: 1 + int(40) }),
      ];
      // Values that break each field's rule.
      const hostile: Record<string, unknown[]> = {
        id: [0, -1, 2 ** 31, 1.5, '7', null, true, 1e300],
        op: ['', 'PING', 'query ', 'quit', 1, null, false, 'x'.repeat(3000)],
        pid: [0, -1, -(2 ** 31), 2 ** 31, 1.5, '1', null, true, 2 ** 64, -0.0001],
        start: [-PAGE, 1, PAGE + 1, 2 ** 53, 2 ** 53 + PAGE, 1.5, '4096', null, 1e21],
        pages: [0, -1, 1048577, 2 ** 40, 0.5, '1', false, 2 ** 63],
        len: [0, -PAGE, 100, PAGE + 1, 2 ** 53 + PAGE, '4096', true],
        node: [-1, 1024, 2 ** 31, 0.5, '0', null],
        advice: ['', 'dontneed', 'free', 'COLD', 0, null],
        path: ['', 'memory.pressure', '/etc/passwd', '/proc/pressure/cpu', decoy, '/proc/pressure/memory/', 7, null],
        kind: ['', 'Some', 'avg10', 0, true],
        stall_us: [0, -1, 2_000_001, 1.5, '1000', null],
        window_us: [0, 499_999, 10_000_001, 2e6 + 0.5, '2000000', false],
        trigger: [0, -1, 2 ** 31, 1.5, '1', null],
      };
      // Each line with what its answer's id must be: the request's, 0, or either (a mutation
      // that may or may not still parse). `refused`: the answer must be an error.
      type Case = { line: Buffer; id: number; either?: boolean; refused?: boolean };
      const cases: Case[] = [];
      for (let n = 0; n < 3000; n++) {
        const id = 2 + n;
        const req = { id, ...pick(templates)() };
        const json = JSON.stringify(req);
        const kind = int(12);
        if (kind === 0) {
          cases.push({ line: Buffer.from(Array.from({ length: 1 + int(200) }, () => { const b = int(256); return b === 10 ? 32 : b; })), id: 0, refused: true });
        } else if (kind === 1) {
          cases.push({ line: Buffer.from(json.slice(0, int(json.length))), id: 0, refused: true });
        } else if (kind === 2 || kind === 3) {
          const keys = Object.keys(req);
          const k = pick(keys);
          const v = pick(hostile[k]);
          cases.push({ line: Buffer.from(JSON.stringify({ ...req, [k]: v })), id: k === 'id' ? 0 : id, refused: true });
        } else if (kind === 4) {
          const keys = Object.keys(req).filter((k) => k !== 'id');
          const drop = pick(keys);
          const rest: Record<string, unknown> = { ...req };
          delete rest[drop];
          cases.push({ line: Buffer.from(JSON.stringify(rest)), id, refused: true }); // every field is required
        } else if (kind === 5) {
          cases.push({ line: Buffer.from(JSON.stringify({ ...req, [pick(['extra', 'Pid', 'nodes', 'ID'])]: 1 })), id, refused: true });
        } else if (kind === 6) {
          cases.push({ line: Buffer.from(`${json.slice(0, -1)},"op":"ping"}`), id: 0, refused: true }); // a duplicate key
        } else if (kind === 7) {
          const v = pick(['[1]', '{"a":1}', '[]', '{}']);
          cases.push({ line: Buffer.from(`${json.slice(0, -1)},"x":${v}}`), id: 0, refused: true });
        } else if (kind === 8) {
          // Bytes after the id: a mutated id could name another request's, and its answer then
          // could not be told from that one's.
          const b = Buffer.from(json);
          const after = json.indexOf(',"op"');
          for (let i = 0; i < 1 + int(3); i++) b[after + int(b.length - after)] = pick([0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3a, 0x30, 0x2d, 0x00, 0x80, 0xff, 0x20]);
          cases.push({ line: b, id, either: true });
        } else if (kind === 9) {
          const pad = pick([8193, 8192 + int(50_000), 200_000]);
          cases.push({ line: Buffer.from(json.slice(0, -1) + ' '.repeat(Math.max(0, pad - json.length)) + '}'), id: 0, refused: true });
        } else {
          cases.push({ line: Buffer.from(json), id });
        }
      }
      // The edges: a line of exactly 8192 bytes is read; a million pages are queried (on the
      // sidecar's own, unmapped, addresses); numbers as JSON allows them but integers do not.
      const exact = JSON.stringify({ id: 9001, op: 'ping' });
      cases.push({ line: Buffer.from(exact.slice(0, -1) + ' '.repeat(8192 - exact.length) + '}'), id: 9001 });
      cases.push({ line: Buffer.from(JSON.stringify({ id: 9002, op: 'query', pid, start: 2 ** 52, pages: 1048576 })), id: 9002 });
      for (const [i, t] of ['1e3', '1.0', '-0', '1E+2', '9'.repeat(400), '-9223372036854775809'].entries()) {
        cases.push({ line: Buffer.from(`{"id":${9100 + i},"op":"query","pid":${t},"start":4096,"pages":1}`), id: 9100 + i, refused: true });
      }
      for (const [i, t] of ['00', '+1', '0x10', 'Infinity', '1.', '.5', '1e', '-'].entries()) {
        cases.push({ line: Buffer.from(`{"id":${9150 + i},"op":"query","pid":${t},"start":4096,"pages":1}`), id: 0, refused: true }); // not JSON
      }
      cases.push({ line: Buffer.from(''), id: 0, refused: true });
      cases.push({ line: Buffer.from('{"id":9200,"op":"ping","s":"\\ud83d\\ude00 \\u00e9 \\n"}'), id: 9200, refused: true });
      cases.push({ line: Buffer.from('{"id":9201,"op":"ping","s":"\\ud83d"}'), id: 0, refused: true });
      cases.push({ line: Buffer.from(`{${Array.from({ length: 17 }, (_, i) => `"k${i}":1`).join(',')}}`), id: 0, refused: true });

      const t0 = Date.now();
      const answers = await s.send(cases.map((c) => c.line), 25_000);
      const ms = Date.now() - t0;
      assert.is(answers.length, cases.length, `seed ${seed0}: one answer per line`);
      for (const [i, a] of answers.entries()) {
        const c = cases[i];
        const what = `seed ${seed0}, line ${i} ${JSON.stringify(c.line.toString('latin1').slice(0, 160))} -> ${JSON.stringify(a).slice(0, 300)}`;
        if (c.either) assert.ok(a.id === 0 || a.id === c.id, what);
        else assert.is(a.id, c.id, what);
        if (a.ok === true) {
          assert.not.ok(c.refused, what);
          const req = JSON.parse(c.line.toString()) as { op: string; pages: number };
          if (req.op === 'query') assert.is((a.nodes as number[]).length, req.pages, what);
          if (req.op === 'move') {
            const failed = Object.values(a.failed as Record<string, number>).reduce((n, x) => n + x, 0);
            assert.is((a.moved as number) + (a.already as number) + failed, req.pages, `${what}: every page counted once`);
          }
        } else {
          assert.is(a.ok, false, what);
          assert.ok(Number.isInteger(a.errno) && (a.errno as number) >= 0, what);
          assert.ok(typeof a.error === 'string' && a.error !== '', what);
        }
      }
      const big = answers[cases.findIndex((c) => c.id === 9002)];
      assert.is((big.nodes as number[]).length, 1048576);
      assert.ok((big.nodes as number[]).every((n) => n === -EFAULT));
      const [last] = await s.send([JSON.stringify({ id: 2 ** 31 - 1, op: 'ping' })]);
      assert.equal([last.id, last.ok, last.pid], [2 ** 31 - 1, true, pid], 'the same sidecar, alive after it all');
      assert.is(s.proc.exitCode, null);
      assert.is(readFileSync(decoy, 'utf8'), 'untouched\n', 'a file posing as memory.pressure was never written');
      console.log(`  fuzz: ${cases.length} lines in ${ms} ms (seed ${seed0})`);
    } finally {
      await s.end();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.is(s.proc.exitCode, 0, 'it exits when its stdin closes');
  });

  test('killed between requests: the next request starts a new sidecar', async () => {
    const sc = new Sidecar();
    try {
      const { pid } = await sc.request<{ pid: number }>({ op: 'ping' });
      process.kill(pid, 'SIGKILL');
      await until('the death noticed', () => sc.pid === undefined);
      const again = await sc.request<{ pid: number }>({ op: 'ping' });
      assert.ok(again.pid !== pid && again.pid === sc.pid);
    } finally {
      sc.close();
    }
  });

  test('killed during requests: each rejects at once saying it died and how; the next succeeds', async () => {
    const sc = new Sidecar();
    try {
      const { pid } = await sc.request<{ pid: number }>({ op: 'ping' });
      process.kill(pid, 'SIGSTOP'); // so that the requests are surely in flight when it dies
      const t0 = Date.now();
      const a = sc.request({ op: 'ping' });
      const b = sc.request({ op: 'query', pid: process.pid, start: PAGE, pages: 1 });
      process.kill(pid, 'SIGKILL');
      await rejectsCode(a, 'ERR_MEMSYS_SIDECAR', `sidecar ping: the sidecar (pid ${pid}) died (killed by SIGKILL) during the request`);
      await rejectsCode(b, 'ERR_MEMSYS_SIDECAR', 'sidecar query:', 'died (killed by SIGKILL)');
      assert.ok(Date.now() - t0 < 1000, 'at once, not at the timeout');
      const again = await sc.request<{ pid: number }>({ op: 'ping' });
      assert.ok(again.pid !== pid);

      // Another signal: held while it is stopped, it ends the sidecar as soon as it runs again.
      process.kill(again.pid, 'SIGSTOP');
      const c = sc.request({ op: 'ping' });
      process.kill(again.pid, 'SIGTERM');
      process.kill(again.pid, 'SIGCONT');
      await rejectsCode(c, 'ERR_MEMSYS_SIDECAR', `the sidecar (pid ${again.pid}) died (killed by SIGTERM)`);
    } finally {
      sc.close();
    }
  });

  test('a request that times out is rejected, the sidecar killed, and the next request starts another', async () => {
    const sc = new Sidecar({ timeoutMs: 10_000 });
    try {
      const { pid } = await sc.request<{ pid: number }>({ op: 'ping' });
      process.kill(pid, 'SIGSTOP');
      const t0 = Date.now();
      const slow = sc.request({ op: 'ping' }, 300);
      const other = sc.request({ op: 'ping' }); // its own timeout is 10 s: it goes with the sidecar
      await rejectsCode(slow, 'ERR_MEMSYS_SIDECAR', 'sidecar ping timed out after 300 ms', `the sidecar (pid ${pid}) was killed`);
      const waited = Date.now() - t0;
      assert.ok(waited >= 290 && waited < 2000, `${waited} ms`);
      await rejectsCode(other, 'ERR_MEMSYS_SIDECAR', 'was killed because ping timed out after 300 ms');
      await until('the stopped sidecar killed', () => gone(pid));
      const again = await sc.request<{ pid: number }>({ op: 'ping' });
      assert.ok(again.pid !== pid);
      const closing = sc.request({ op: 'ping' });
      sc.close();
      await rejectsCode(closing, 'ERR_MEMSYS_SIDECAR', 'was closed');
      assert.is(sc.pid, undefined);
      await until('the closed sidecar gone', () => gone(again.pid));
      assert.is((await sc.request<{ version: number }>({ op: 'ping' })).version, 1, 'a request after close starts a new one');
    } finally {
      sc.close();
    }
  });

  needs('PSI triggers set again after a sidecar dies', existsSync(PSI), `${PSI} does not exist (a kernel without CONFIG_PSI)`, () => {
    test('pressure events on the real sidecar: killed while watched, a new sidecar sets the trigger again', async () => {
      const sc = new Sidecar();
      const watches: number[] = [];
      const asks = { request: (req: SidecarRequest, ms?: number) => { if (req.op === 'psi_watch') watches.push(Date.now()); return sc.request(req, ms); }, onPsi: sc.onPsi.bind(sc), onExit: sc.onExit.bind(sc) } as unknown as Sidecar;
      const off = nodePressureEvents({ path: PSI, sidecar: () => asks, retryMs: 50 })(() => {});
      try {
        await until('the first watch set', () => sc.pid !== undefined && watches.length === 1);
        const first = sc.pid!;
        const { trigger } = await sc.request<{ trigger: number }>({ op: 'psi_watch', path: PSI, kind: 'some', stall_us: 150_000, window_us: 2_000_000 });
        assert.ok(trigger >= 1);
        process.kill(first, 'SIGKILL');
        await until('a new sidecar with the trigger set again', () => watches.length === 2 && sc.pid !== undefined && sc.pid !== first);
        const again = await sc.request<{ pid: number }>({ op: 'ping' });
        assert.is(again.pid, sc.pid);
      } finally {
        off();
        sc.close();
      }
    });
  });

  test('a script that uses the sidecar exits by itself, idle sidecar, trigger and listener and all; its sidecar goes too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsys-sidecar-'));
    try {
      const script = join(dir, 'uses-sidecar.mts');
      writeFileSync(script, `
        import { sidecar } from ${JSON.stringify(join(ROOT, 'src/node/sidecar.ts'))};
        const sc = sidecar();
        const { pid } = await sc.request({ op: 'ping' });
        sc.onPsi(() => {});
        if (${existsSync(PSI)}) await sc.request({ op: 'psi_watch', path: '/proc/pressure/memory', kind: 'some', stall_us: 150000, window_us: 2000000 });
        console.log(JSON.stringify({ pid }));
      `);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
      assert.is(r.signal, null, `killed by the test's timeout: the sidecar kept it alive\n${r.stderr}`);
      assert.is(r.status, 0, r.stderr);
      const { pid } = JSON.parse(r.stdout) as { pid: number };
      assert.ok(Date.now() - t0 < 10_000);
      const t1 = Date.now();
      while (!gone(pid) && Date.now() - t1 < 3000) spawnSync('sleep', ['0.02']);
      assert.ok(gone(pid), `the sidecar ${pid} outlived its parent`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- pressure events for MMSAs -------------------------------------------------------------------

test('pressure events: one trigger for every subscriber, its events only, unwatched when the last leaves (also before the watch answered)', async () => {
  const reqs: Record<string, unknown>[] = [];
  const psi = new Set<(t: number) => void>();
  let answer: (() => void) | undefined;
  const fake = {
    request: (req: Record<string, unknown>) => {
      reqs.push(req);
      if (req.op !== 'psi_watch') return Promise.resolve({});
      return new Promise((res) => { answer = () => res({ trigger: 7 }); });
    },
    onPsi: (fn: (t: number) => void) => { psi.add(fn); return () => psi.delete(fn); },
    onExit: () => () => {},
  } as unknown as Sidecar;
  const events = nodePressureEvents({ path: '/proc/pressure/memory', stallUs: 5000, sidecar: () => fake });
  let a = 0, b = 0;
  const offA = events(() => a++);
  const offB = events(() => b++);
  assert.equal(reqs, [{ op: 'psi_watch', path: '/proc/pressure/memory', kind: 'some', stall_us: 5000, window_us: 2_000_000 }], 'one watch');
  answer!();
  await sleep(0);
  for (const fn of psi) { fn(3); fn(7); }
  assert.equal([a, b], [1, 1], 'its own trigger only, to every subscriber');
  offA();
  assert.is(reqs.length, 1, 'still watched for the other');
  offB();
  assert.equal(reqs[1], { op: 'psi_unwatch', trigger: 7 });
  assert.is(psi.size, 0, 'no listener left');
  // A subscriber that leaves before the watch is answered: unwatched once it is.
  const off = events(() => a++);
  off();
  answer!();
  await sleep(0);
  assert.equal(reqs.at(-1), { op: 'psi_unwatch', trigger: 7 });
  // An MMSA without the option never subscribes; with it, terminate() unsubscribes.
  let subscribed = 0, left = 0;
  setPressureEvents(() => { subscribed++; return () => { left++; }; });
  try {
    const plain = new MMSA({ name: 'plain', env: {} });
    plain.init();
    const eager = new MMSA({ name: 'eager', env: {}, pressureEvents: true });
    eager.init();
    assert.equal([subscribed, left], [1, 0]);
    eager.terminate();
    plain.terminate();
    assert.equal([subscribed, left], [1, 1]);
  } finally {
    setPressureEvents(nodePressureEvents());
  }
});

test('pressure events: a sidecar that goes while somebody listens gets its trigger set again in a new one, after pauses that double while each dies young', async () => {
  const reqs: Record<string, unknown>[] = [];
  const psi = new Set<(t: number) => void>();
  const exits = new Set<(pid: number) => void>();
  let next = 10;
  let refuse = false;
  const fake = {
    request: (req: Record<string, unknown>) => {
      reqs.push(req);
      if (req.op !== 'psi_watch') return Promise.resolve({});
      return refuse ? Promise.reject(new SidecarError('sidecar psi_watch: the sidecar died')) : Promise.resolve({ trigger: next++ });
    },
    onPsi: (fn: (t: number) => void) => { psi.add(fn); return () => psi.delete(fn); },
    onExit: (fn: (pid: number) => void) => { exits.add(fn); return () => exits.delete(fn); },
  } as unknown as Sidecar;
  const die = () => { for (const fn of [...exits]) fn(1); };
  const watches = () => reqs.filter((r) => r.op === 'psi_watch').length;
  const events = nodePressureEvents({ path: '/proc/pressure/memory', sidecar: () => fake, retryMs: 40 });
  let n = 0;
  const off = events(() => n++);
  await sleep(0);
  assert.is(watches(), 1);
  die();
  await sleep(20);
  assert.is(watches(), 1, 'not at once: after the pause');
  await until('the trigger is set again after the first pause', () => watches() === 2, 2000);
  for (const fn of psi) { fn(10); fn(11); }
  assert.is(n, 1, 'the new trigger\'s events only (the old one went with its sidecar)');
  assert.is(psi.size, 1, 'one listener, the old one removed');
  // Dying young again: the second pause is twice the first.
  const t0 = performance.now();
  die();
  await until('set again a second time', () => watches() === 3, 2000);
  assert.ok(performance.now() - t0 >= 70, `the second pause doubled (${(performance.now() - t0).toFixed(0)} ms)`);
  // A sidecar that cannot start: the watch fails, and nothing is retried in a loop.
  refuse = true;
  die();
  await until('tried once more', () => watches() === 4, 2000);
  await sleep(400);
  assert.is(watches(), 4, 'a failed watch is not retried');
  assert.is(exits.size, 0, 'and listens for nothing');
  // After the last subscriber leaves, a death changes nothing.
  refuse = false;
  off();
  const off2 = events(() => n++);
  await sleep(0);
  assert.is(watches(), 5);
  off2();
  die();
  await sleep(200);
  assert.is(watches(), 5, 'unsubscribed: no new watch');
  assert.is(psi.size + exits.size, 0);
});

// ---- PSI trigger events under real memory pressure ---------------------------------------------

// A child memory cgroup of this process's own with a small limit (v1 memory.limit_in_bytes or v2
// memory.max), and where a cgroup2 hierarchy can take one, a v2 cgroup whose memory.pressure is
// watched too (on a hybrid host the v2 tree has no memory controller but has PSI files).
const LIMIT = 32 << 20;
const NAME = `memsys-sidecar-test-${process.pid}`;


function unifiedDir(): string | undefined {
  const mount = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  const path = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
  return mount && path !== undefined ? `${mount}${path}`.replace(/\/$/, '') : undefined;
}


function pressureSetup(): { mem: string; v2: boolean; psi?: string; file: string } | string {
  if (!existsSync(PSI)) return `${PSI} does not exist (a kernel without CONFIG_PSI, or booted with psi=0)`;
  try { closeSync(openSync(PSI, 'r+')); } catch (e) { return `${PSI} cannot be opened for writing (${(e as Error).message})`; }
  const own = ownCgroup();
  if (!own) return 'no memory cgroup found for this process';
  const tmp = join(ROOT, '.tmp');
  mkdirSync(tmp, { recursive: true });
  // Page cache is what the small group reclaims over and over; on tmpfs it could not.
  if (statfsSync(tmp).type === 0x01021994) return `${tmp} is on tmpfs: no page cache to reclaim`;
  sweepGroups(own.dir, 'memsys-sidecar-test-');
  const mem = `${own.dir}/${NAME}`;
  try {
    mkdirSync(mem);
    writeFileSync(`${mem}/${own.v2 ? 'memory.max' : 'memory.limit_in_bytes'}`, String(LIMIT));
  } catch (e) {
    try { rmdirSync(mem); } catch { /* it was not made */ }
    return `cannot make a memory cgroup under ${own.dir} (${(e as Error).message}; run as root)`;
  }
  let psi: string | undefined = own.v2 ? `${mem}/memory.pressure` : undefined;
  const unified = own.v2 ? undefined : unifiedDir();
  if (unified) {
    sweepGroups(unified, 'memsys-sidecar-test-');
    try {
      mkdirSync(`${unified}/${NAME}`);
      psi = `${unified}/${NAME}/memory.pressure`;
    } catch { /* no v2 group: only the system-wide trigger is watched */ }
  }
  return { mem, v2: own.v2, psi, file: join(tmp, `${NAME}.bin`) };
}

const setup = existsSync(BIN) ? pressureSetup() : 'the sidecar is not built';

needs('PSI trigger events under memory pressure', typeof setup === 'object', typeof setup === 'string' ? setup : '', () => {
  const s = setup as Exclude<typeof setup, string>;
  const groups = [s.mem, ...(s.psi && !s.v2 ? [s.psi.replace(/\/memory\.pressure$/, '')] : [])];
  // A shell that moves itself into the groups, writes a file four times the limit, then reads it
  // again and again (for 30 s at most, whatever becomes of the test): every read evicts the pages
  // the next one needs. Its own process group, so that one kill ends the reader too.
  const pressureMaker = (): ChildProcess => {
    const into = groups.map((g) => `echo $$ > ${g}/cgroup.procs`).join(' && ');
    const loop = 'end=$(($(date +%s) + 30)); while [ "$(date +%s)" -lt "$end" ]; do cat "$0" > /dev/null; done';
    return spawn('/bin/sh', ['-c', `${into} && dd if=/dev/zero of="$0" bs=1M count=${4 * (LIMIT >> 20)} status=none && ${loop}`, s.file],
      { stdio: 'ignore', detached: true });
  };
  test.after(() => {
    rmSync(s.file, { force: true });
    for (const g of groups) try { rmdirSync(g); } catch { /* a test that failed left a task in it */ }
  });

  test(`PSI triggers fire while a child in a ${LIMIT >> 20} MiB memory cgroup reclaims its page cache over and over`, async () => {
    const sc = new Sidecar();
    const seen: number[] = [];
    const off = sc.onPsi((t) => seen.push(t));
    let child: ChildProcess | undefined;
    const empty = (g: string) => readFileSync(`${g}/cgroup.procs`, 'utf8').trim() === '';
    try {
      const watch = (path: string) => sc.request<{ trigger: number }>({ op: 'psi_watch', path, kind: 'some', stall_us: 5000, window_us: 2_000_000 });
      const system = (await watch(PSI)).trigger;
      const cgroup = s.psi ? (await watch(s.psi)).trigger : undefined;
      const before = readFileSync(PSI, 'utf8').split('\n')[0];
      child = pressureMaker();
      const t0 = Date.now();
      await until('a PSI event for each trigger', () => (seen.includes(system) && (cgroup === undefined || seen.includes(cgroup))) || child!.exitCode !== null, 20_000);
      assert.is(child.exitCode, null, 'the pressure maker ran throughout');
      console.log(`  PSI: events ${JSON.stringify(seen)} within ${Date.now() - t0} ms (${PSI}${cgroup ? ` and ${s.psi}` : ''}); ${before} -> ${readFileSync(PSI, 'utf8').split('\n')[0]}`);
      process.kill(-child.pid!, 'SIGKILL');
      await until('the pressure maker gone from its groups', () => groups.every(empty));
      assert.equal(await sc.request({ op: 'psi_unwatch', trigger: system }), {});
    } finally {
      off();
      if (child?.pid && child.exitCode === null) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      sc.close();
    }
  });

  test('an MMSA made with pressureEvents runs a housekeeping pass when the stall happens, hours before its tick', async () => {
    setPressureEvents(nodePressureEvents({ path: PSI, stallUs: 5000 }));
    const mm = new MMSA({ name: 'psi-events', env: {}, timeIval: 3_600_000, pressureEvents: true });
    const t0 = Date.now();
    mm.init();
    // Only a pressure event can bring a pass within the hour: any tick here came from one (the
    // pressure maker below makes sure there is a stall; another process's may come first).
    const ticks: number[] = [];
    mm.addEventListener('tick', () => ticks.push(Date.now()));
    let child: ChildProcess | undefined;
    const empty = (g: string) => readFileSync(`${g}/cgroup.procs`, 'utf8').trim() === '';
    try {
      await sleep(200); // the watch is registered through the sidecar
      child = pressureMaker();
      await until('a housekeeping pass on a PSI event', () => ticks.length > 0 || child!.exitCode !== null, 20_000);
      assert.ok(ticks.length > 0, 'a pass came');
      console.log(`  pressure events: a housekeeping pass ${ticks[0] - t0} ms after the MMSA was made (its timer: in an hour)`);
      process.kill(-child.pid!, 'SIGKILL');
      await until('the pressure maker gone from its groups', () => groups.every(empty));
    } finally {
      if (child?.pid && child.exitCode === null) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      mm.terminate();
      setPressureEvents(nodePressureEvents());
    }
  });

  if (s.psi && !s.v2) {
    test('a watched cgroup that is removed: the sidecar says psi_closed, drops the trigger and does not spin', async () => {
      const r = raw();
      try {
        const [w] = await r.send([JSON.stringify({ id: 1, op: 'psi_watch', path: s.psi, kind: 'some', stall_us: 5000, window_us: 2_000_000 })]);
        assert.is(w.trigger, 1, JSON.stringify(w));
        rmdirSync(groups[1]);
        await until('psi_closed', () => r.lines.includes('{"event":"psi_closed","trigger":1}'));
        const cpu = () => readFileSync(`/proc/${r.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((n, x) => n + Number(x), 0);
        const c0 = cpu();
        await sleep(300);
        assert.ok(cpu() - c0 <= 2, 'no CPU spent while idle');
        const [u] = await r.send([JSON.stringify({ id: 2, op: 'psi_unwatch', trigger: 1 })]);
        assert.is(u.error, 'trigger 1 is not watched');
      } finally {
        await r.end();
      }
    });
  }
});

test.run();
