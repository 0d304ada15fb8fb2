// NUMA for real: one boot of the two-node qemu guest (test/guest/guest.ts) runs the topology
// check, the bare move_pages loop (test/guest/moveloop.c: the limit a mover is compared with) and,
// where memsys/node has the NUMA API, memsys's own scenario (test/guest/numa-scenario.mjs). The
// host has one node, so nothing here can be checked on it. Two short boots check the harness
// itself: a script's exit code and output come back, a guest that overruns is killed.
//
// The figures of the last run are written to build/guest/results.json (bench/RESULTS.md's NUMA
// part quotes them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from './helpers.js';
import { type GuestOptions, type GuestRun, ROOT, bootGuest, cacheDir, guestKernel, guestMissing, isDynamic, lddLibraries } from './guest/guest.js';

// Moved by moveloop and by the sidecar's mover alike: 65 536 pages, ~1.5–3 s each under emulation.
const MIB = 256;

test('ldd output: libraries, the loader, no vDSO; a missing library is an error', () => {
  const text = [
    '\tlinux-vdso.so.1 (0x00007ffd5a3f2000)',
    '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f0f45fac000)',
    '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0f45c00000)',
    '\t/lib64/ld-linux-x86-64.so.2 (0x00007f0f45fc5000)',
    '',
  ].join('\n');
  assert.equal(lddLibraries('node', text), ['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib64/ld-linux-x86-64.so.2']);
  assert.equal(lddLibraries('x', '\tstatically linked\n'), []);
  assert.throws(() => lddLibraries('x', '\tlibfoo.so.1 => not found\n'), /libfoo\.so\.1 not found/);
  assert.throws(() => lddLibraries('x', '\tsomething else\n'), /not understood/);
  assert.ok(isDynamic(process.execPath), 'node is a dynamic executable');
});

let missing = guestMissing();
let kernel = '';
if (!missing) {
  try {
    kernel = guestKernel().version;
  } catch (e) {
    missing = `the guest kernel: ${(e as Error).message}`;
  }
}
// Asked in a child: importing the Node entry here would set its process-wide defaults in the
// process that runs every other suite.
const probe = spawnSync(process.execPath, ['--input-type=module', '-e',
  "const m = await import('memsys/node'); process.exit(typeof m.movePages === 'function' ? 0 : 3)"], { cwd: ROOT, encoding: 'utf8' });
const hasApi = probe.status === 0;
const apiMissing = probe.status === 3
  ? 'memsys/node has no movePages: the NUMA API is not merged yet, so test/guest/numa-scenario.mjs did not run (only the topology check and moveloop did)'
  : `import('memsys/node') failed (${probe.error?.message ?? probe.stderr.trim().split('\n').slice(0, 5).join(' ')}), so test/guest/numa-scenario.mjs did not run`;
const scenarioFile = new URL('./guest/numa-scenario.mjs', import.meta.url).pathname;

// Lines "@@x key=value …" of the guest's output.
const kv = (line: string) => Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
const linesOf = (out: string, tag: string) => out.split('\n').filter((l) => l.startsWith(tag));

const script = `
for n in /sys/devices/system/node/node[0-9]*; do
  echo "@@node id=\${n##*node} cpus=$(cat $n/cpulist) distance=$(cat $n/distance | tr ' ' ,) memtotal_kb=$(awk '/MemTotal/ {print $4}' $n/meminfo)"
done
rc=0
taskset 1 moveloop ${MIB} || rc=1
${hasApi ? `taskset 1 node --expose-gc /memsys/test/guest/numa-scenario.mjs ${MIB} || rc=1` : 'echo "@@scenario skipped: the NUMA API is missing"'}
exit $rc
`;

needs('the two-node qemu guest', missing === '', `${missing} (.ci/run installs them)`, () => {
  let run: GuestRun | undefined;
  const results: Record<string, unknown> = {};
  const guest = () => {
    assert.ok(run && run.code !== null, 'the guest did not run the script (see the first test)');
    return run.output;
  };

  test(`the guest boots (kernel ${kernel}, 2 nodes under TCG) and runs the script to its end`, async () => {
    const opts: GuestOptions = {
      script,
      files: hasApi ? { '/memsys/test/guest/numa-scenario.mjs': { from: scenarioFile } } : {},
      // Two 1.5 GiB nodes: the scenario and moveloop each hold MIB on node 0 at once, beside the
      // initramfs (~110 MB) that lives there too.
      nodeMiB: 1536,
      timeoutMs: 480_000,
    };
    run = await bootGuest(opts);
    // Once in ~20 boots under emulation the guest died in the middle of a script that passes
    // every other time; a second boot tells such a crash from a failure of what is tested.
    if (run.code === null && !run.timedOut) {
      console.warn(`\n!!! the guest died before the script ended (${run.failure}); the end of its console:\n${run.console.slice(-3000)}\n!!! booting it once more\n`);
      run = await bootGuest(opts);
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    console.log(`  guest: prepare ${s(run.ms.prepare)}, boot ${s(run.ms.boot)} (guest uptime at init ${s(run.ms.guestBoot)}), script ${s(run.ms.script)}, qemu in all ${s(run.ms.qemu)}`);
    results.kernel = run.kernel;
    results.ms = run.ms;
    assert.ok(run.code !== null, `${run.failure}\n${run.console.slice(-4000)}`);
  });

  test('topology: two nodes, one CPU each, distances 10 20 / 20 10', () => {
    const nodes = linesOf(guest(), '@@node ').map(kv);
    assert.equal(nodes.map((n) => n.id), ['0', '1'], guest());
    assert.equal(nodes.map((n) => n.distance), ['10,20', '20,10']);
    assert.equal(nodes.map((n) => n.cpus), ['0', '1']);
    for (const n of nodes) assert.ok(Number(n.memtotal_kb) > 1024 * 1024, `node ${n.id} has ${n.memtotal_kb} kB`);
  });

  test(`moveloop: ${MIB} MiB moved to node 1 with move_pages, every page there and intact`, () => {
    const line = linesOf(guest(), 'moveloop:')[0];
    assert.ok(line, `no moveloop line in:\n${guest()}`);
    const m = kv(line);
    assert.ok(!m.error, line);
    assert.is(Number(m.pages), (MIB << 20) / 4096);
    assert.is(m.on_from_before, m.pages, 'every page started on node 0');
    assert.is(m.on_to, m.pages, 'every page is on node 1');
    assert.is(m.failed, '0');
    assert.is(m.bad_pages, '0');
    console.log(`  moveloop: ${m.pages} pages in ${m.move_ms} ms: ${m.pages_per_s} pages/s (${m.mib_per_s} MiB/s); EBUSY ${m.ebusy} (THP); query ${m.query_pages_per_s} pages/s`);
    results.moveloop = m;
  });

  needs('the memsys NUMA scenario in the guest', hasApi, apiMissing, () => {
    const steps = () => linesOf(guest(), '@@scenario ').map((l) => JSON.parse(l.slice('@@scenario '.length)) as { step: string; ok: boolean; error?: string; [k: string]: unknown });
    const stepOf = (prefix: string) => {
      const s = steps().find((x) => x.step.startsWith(prefix));
      assert.ok(s, `the scenario printed no step "${prefix}…":\n${guest()}`);
      assert.ok(s.ok, `${s.step}: ${s.error}\n${JSON.stringify(s, null, 1).slice(0, 4000)}`);
      return s;
    };
    test('scenario: topology() sees the two nodes and balancing off', () => { stepOf('topology'); });
    test('scenario: mm.place(1) moves the arenas to node 1 (whereAre, numa_maps), data intact', () => { stepOf('place(1)'); });
    test('scenario: mm.place(0) moves them back', () => { stepOf('place(0)'); });
    test('scenario: mm.place(1, { bind: true }) binds, and a new arena lands on node 1', () => { stepOf('place(1, { bind: true })'); });
    test("scenario: movePages moves a range of another process's memory, the rest stays, data intact", () => { stepOf('movePages on another process'); });
    test('scenario: a move capped at 20 MiB/s stays within 10 % over the cap, and reports how close it came', () => {
      const s = stepOf('a bandwidth-limited move');
      console.log(`  bandwidth cap ${s.cap} MiB/s: achieved ${s.rateMiBs} MiB/s, ${((s.deviation as number) * 100).toFixed(1)} %`);
      results.bandwidth = s;
    });
    test(`scenario: the sidecar's mover against moveloop, ${MIB} MiB each (target >= 0.8)`, () => {
      const s = stepOf('the mover against the bare move_pages loop');
      const ratio = s.ratio as number;
      const rounds = (s.rounds as { moveloop: number; sidecar: number; ratio: number }[]).map((r) => `${r.sidecar}/${r.moveloop} = ${r.ratio}`).join(', ');
      console.log(`  mover against moveloop, pages/s, 3 rounds: ${rounds}; median ratio ${ratio} (target >= 0.8: ${ratio >= 0.8 ? 'met' : 'NOT MET'})`);
      results.mover = s;
      // The target is reported, as bench/RESULTS.md reports its targets; what fails here is a
      // mover far off the limit (a call per page, a JSON line per page).
      assert.ok(ratio >= 0.25, `the mover reaches ${ratio} of the bare loop`);
    });
    test('scenario: every step ran and the script exited 0', () => {
      assert.ok(steps().find((s) => s.step === 'done'), `the scenario did not finish:\n${guest()}`);
      assert.is(run!.code, 0, guest());
    });
  });

  test('the script exits 0 and the figures are saved', () => {
    if (!hasApi) assert.is(run?.code, 0, guest());
    writeFileSync(join(cacheDir(), 'results.json'), `${JSON.stringify({ ...results, scenario: hasApi, at: new Date().toISOString() }, null, 1)}\n`);
  });

  test("the harness: a script's exit code and output (UTF-8) come back; one that overruns is killed at the timeout", async () => {
    const r = await bootGuest({ script: 'echo "out ü"; echo err >&2; [ "$(cat /proc/sys/kernel/numa_balancing)" = 0 ] && exit 7', timeoutMs: 120_000 });
    assert.is(r.code, 7, `${r.failure}\n${r.console.slice(-2000)}`);
    assert.is(r.output, 'out ü\nerr\n');
    const hung = await bootGuest({ script: 'sleep 600', timeoutMs: 3000 });
    assert.is(hung.code, null);
    assert.ok(hung.timedOut && /timed out after 3000 ms/.test(hung.failure), hung.failure);
    assert.ok(hung.ms.qemu < 8000, `qemu ended ${hung.ms.qemu} ms after its start`);
  });
});

test.run();
