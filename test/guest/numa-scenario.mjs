// memsys's NUMA placement on a real two-node machine: run inside the qemu guest by
// test/numa-guest.test.ts (under `taskset 1`, so that first touches land on node 0 and every move
// is a real one), never on the host, which has one node.
//
//   node --expose-gc test/guest/numa-scenario.mjs [MIB]     (MIB: the amount the mover is timed on, as moveloop)
//
// Each step prints one line "@@scenario {json}" with `step`, `ok` and its figures (`error` when it
// failed); the test reads them. Steps that do not depend on each other go on after a failure, so
// that one run shows everything; the exit code is 1 if any failed.
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { MMSA, movePages, numaMaps, topology, whereAre } from 'memsys/node';

const require = createRequire(import.meta.url);
// The in-process addon's address(view): where an arena or a buffer sits in this process.
const addon = require('#pages');
const PAGE = 4096, MiB = 1 << 20;
const MIB = Number(process.argv[2] ?? 256);
const results = [];

function report(step, fields) {
  const line = { step, ...fields };
  results.push(line);
  console.log(`@@scenario ${JSON.stringify(line)}`);
}

async function step(name, fn) {
  const t0 = performance.now();
  try {
    const fields = (await fn()) ?? {};
    report(name, { ok: true, ms: Math.round(performance.now() - t0), ...fields });
    return true;
  } catch (e) {
    report(name, { ok: false, ms: Math.round(performance.now() - t0), error: `${e?.code ? `${e.code}: ` : ''}${e?.stack ?? e}`, ...(e?.fields ?? {}) });
    return false;
  }
}

function check(cond, msg, fields) {
  if (!cond) throw Object.assign(new Error(msg), { fields });
}

const address = (view) => addon.address(view);
const count = (nodes) => {
  const c = {};
  for (const n of nodes) c[n] = (c[n] ?? 0) + 1;
  return c;
};

// Where the pages of [start, start + pages) are: { node: count }. Pages never touched read -ENOENT
// (-2), pages only ever read (the shared zero page) -EFAULT (-14), each counted under its key.
const where = async (pid, start, pages) => count(await whereAre(pid, start, pages));

// The numa_maps line of the mapping that holds `start` (the one that starts at or below it).
function mappingOf(pid, start) {
  let best;
  for (const m of numaMaps(pid)) if (m.start <= start && (!best || m.start > best.start)) best = m;
  return best;
}

// Deterministic bytes for the buffers, so that a move that corrupted one shows.
const BLOCK = new Uint8Array(1 * MiB + 64 * 1024);
{
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; BLOCK[i] = x; }
}
const fill = (buf, i) => buf.set(BLOCK.subarray((i * 4099) % MiB, (i * 4099) % MiB + buf.length));
const intact = (buf, i) => Buffer.compare(buf, BLOCK.subarray((i * 4099) % MiB, (i * 4099) % MiB + buf.length)) === 0;

// Writes each page's index into its first and last words (touching every page), and checks them.
function stamp(mem, pages) {
  const w = new Uint32Array(mem.buffer);
  for (let i = 0; i < pages; i++) { w[i * 1024] = i; w[i * 1024 + 1023] = ~i >>> 0; }
}
function stamped(mem, pages) {
  const w = new Uint32Array(mem.buffer);
  let bad = 0;
  for (let i = 0; i < pages; i++) if (w[i * 1024] !== i || w[i * 1024 + 1023] !== (~i >>> 0)) bad++;
  return bad;
}

const ENOENT = -2, EFAULT = -14;
const onlyOn = (c, node) => Object.keys(c).every((k) => [node, ENOENT, EFAULT].includes(Number(k)));
// An arena's pages that were never written cannot move: move_pages says ENOENT or EFAULT for
// them, and the report counts them as failed. Nothing else may fail.
const onlyUnbacked = (failed) => Object.keys(failed).every((k) => k === 'ENOENT' || k === 'EFAULT');

await step('topology', () => {
  const t = topology();
  check(t.nodes.length === 2, `${t.nodes.length} nodes`, { topology: t });
  check(JSON.stringify(t.nodes.map((n) => n.distances)) === '[[10,20],[20,10]]', 'distances are not 10 20 / 20 10', { topology: t });
  check(t.balancing === false, `balancing ${t.balancing}: the guest's init turns it off`);
  return { nodes: t.nodes.map((n) => ({ id: n.id, cpus: n.cpus, memTotal: n.memTotal, memFree: n.memFree, distances: n.distances })) };
});

// One MMSA through every placement step; a failure ends this group (each step needs the one before).
const mm = new MMSA({ name: 'guest', arenaSize: 64 * MiB, housekeeping: false, minFree: 0 });
mm.init();
const bufs = [];
for (let i = 0; i < 256; i++) { const b = mm.alloc(); fill(b, i); bufs.push(b); }
const arenas = () => {
  const seen = new Map();
  for (const b of bufs) if (!seen.has(b.buffer)) seen.set(b.buffer, { start: address(new Uint8Array(b.buffer)), pages: b.buffer.byteLength / PAGE });
  return [...seen.values()];
};
// Every resident page of every arena on `node`, each buffer's pages there too, and every byte intact.
async function placedOn(node) {
  const per = [];
  for (const a of arenas()) {
    const c = await where(process.pid, a.start, a.pages);
    const m = mappingOf('self', a.start);
    per.push({ start: a.start, pages: a.pages, where: c, numaMaps: m && { start: m.start, policy: m.policy, perNode: m.perNode } });
    check(onlyOn(c, node) && (c[node] ?? 0) > 0, `an arena's pages are not all on node ${node}`, { arenas: per });
    // numa_maps counts the whole mapping; an arena's mapping holds nothing but the arena.
    check(m && (m.perNode[node] ?? 0) >= c[node] && Object.keys(m.perNode).every((k) => Number(k) === node),
      `numa_maps disagrees: the arena's mapping has pages off node ${node}`, { arenas: per });
  }
  // The buffers of the first fill, one by one (the arenas' check above already covers the rest).
  const off = [];
  for (const b of bufs.slice(0, 256)) {
    const c = await where(process.pid, address(b), b.length / PAGE);
    if (!onlyOn(c, node) || !(c[node] > 0)) off.push(c);
  }
  check(off.length === 0, `${off.length} of the first buffers are not on node ${node}`, { off: off.slice(0, 8) });
  const broken = bufs.filter((b, i) => !intact(b, i)).length;
  check(broken === 0, `${broken} buffers changed in the move`);
  return per;
}
const report_ = (r) => ({ pages: r.pages, moved: r.moved, already: r.already, failed: r.failed, ms: Math.round(r.ms), bound: r.bound, balancing: r.balancing });

let group = await step('place(1): the arenas move to node 1, data intact', async () => {
  const before = [];
  for (const a of arenas()) before.push(await where(process.pid, a.start, a.pages));
  const r = await mm.place(1);
  check(onlyUnbacked(r.failed), `failed: ${JSON.stringify(r.failed)}`, { report: report_(r) });
  check(r.moved > 0 && r.moved + r.already <= r.pages, 'nothing moved', { report: report_(r) });
  check(r.balancing === false && r.bound === false, 'the report misstates balancing or binding', { report: report_(r) });
  return { before, report: report_(r), arenas: await placedOn(1) };
});
group = group && await step('place(0): back to node 0, data intact', async () => {
  const r = await mm.place(0);
  check(onlyUnbacked(r.failed), `failed: ${JSON.stringify(r.failed)}`, { report: report_(r) });
  return { report: report_(r), arenas: await placedOn(0) };
});
group = group && await step('place(1, { bind: true }): bound, and a new arena lands on node 1', async () => {
  const r = await mm.place(1, { bind: true });
  check(r.bound === true && onlyUnbacked(r.failed), 'not bound, or pages failed', { report: report_(r) });
  const old = await placedOn(1);
  check(old.every((a) => /^bind/.test(a.numaMaps?.policy ?? '')), 'an arena placed with bind has another policy', { arenas: old });
  const first = arenas().length;
  let added = 0;
  mm.addEventListener('arena-added', () => { added++; });
  // Fill the first arena and go on into a second, touching every buffer taken.
  let i = bufs.length;
  while (arenas().length === first) { const b = mm.alloc(); fill(b, i++); bufs.push(b); }
  for (let k = 0; k < 64; k++) { const b = mm.alloc(); fill(b, i++); bufs.push(b); }
  check(added >= 1, 'no arena-added event');
  const fresh = arenas().slice(first);
  // The new arena is placed as it is added; a mover that does it in the background gets 10 s.
  const t0 = performance.now();
  let c;
  for (;;) {
    c = await where(process.pid, fresh[0].start, fresh[0].pages);
    if ((onlyOn(c, 1) && c[1] > 0) || performance.now() - t0 > 10_000) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  const m = mappingOf('self', fresh[0].start);
  check(onlyOn(c, 1) && c[1] > 0, 'the new arena is not on node 1', { where: c, numaMaps: m });
  check(/^bind/.test(m?.policy ?? ''), `the new arena's policy is ${m?.policy}, not bind`, { numaMaps: m });
  await placedOn(1);
  return { report: report_(r), newArena: { where: c, policy: m.policy, placedAfterMs: Math.round(performance.now() - t0) }, buffers: bufs.length };
});
mm.terminate();
bufs.length = 0;
// Dropped arenas stay resident until collected; node 0 needs the room for what follows.
globalThis.gc?.();

// Another process's memory: a child holding a 32 MiB wasm memory of stamped pages; a range in its
// middle moves to node 1 while the rest stays, and the child finds every page intact. The range
// starts and ends on 2 MiB boundaries: a transparent huge page moves whole, so a range that cuts
// one moves the pages of it outside the range too (seen in this guest: 448 and 64 pages).
await step('movePages on another process: a range of a child moves, data intact', async () => {
  const pages = 8192;
  const code = `
    const addon = require(${JSON.stringify(require.resolve('#pages'))});
    const mem = new WebAssembly.Memory({ initial: ${pages / 16}, maximum: ${pages / 16} });
    const w = new Uint32Array(mem.buffer);
    for (let i = 0; i < ${pages}; i++) { w[i * 1024] = i ^ 0x5a5a5a5a; w[i * 1024 + 1023] = i; }
    console.log(JSON.stringify({ start: addon.address(new Uint8Array(mem.buffer)) }));
    process.stdin.once('data', () => {
      let bad = 0;
      for (let i = 0; i < ${pages}; i++) if (w[i * 1024] !== (i ^ 0x5a5a5a5a) || w[i * 1024 + 1023] !== i) bad++;
      console.log(JSON.stringify({ bad }));
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let acc = '';
  child.stdout.on('data', (d) => {
    acc += d;
    for (let k; (k = acc.indexOf('\n')) >= 0; acc = acc.slice(k + 1)) {
      const l = JSON.parse(acc.slice(0, k));
      (waiters.shift() ?? ((x) => lines.push(x)))(l);
    }
  });
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((res) => waiters.push(res)));
  try {
    const { start } = await next();
    const before = await where(child.pid, start, pages);
    const HUGE = 2 * MiB;
    const from = Math.ceil((start + 8 * MiB) / HUGE) * HUGE, n = (16 * MiB) / PAGE;
    const r = await movePages(child.pid, from, n, 1);
    const head = await where(child.pid, start, (from - start) / PAGE);
    const mid = await where(child.pid, from, n);
    const tail = await where(child.pid, from + n * PAGE, pages - (from - start) / PAGE - n);
    child.stdin.write('check\n');
    const { bad } = await next();
    const fields = { pid: child.pid, before, range: [from - start, n], report: report_(r), head, mid, tail, bad };
    check(r.moved + r.already === n && Object.keys(r.failed).length === 0, 'not every page of the range moved', fields);
    check(mid[1] === n, 'the range is not on node 1', fields);
    check(head[0] === (from - start) / PAGE && tail[0] === pages - (from - start) / PAGE - n, 'pages outside the range moved', fields);
    check(bad === 0, `${bad} pages of the child changed`, fields);
    return fields;
  } finally {
    child.kill('SIGKILL');
  }
});

// One memory for the last two steps (MIB, at least 64 MiB), stamped page by page, on node 0.
const mem = new WebAssembly.Memory({ initial: (Math.max(MIB, 64) * MiB) / 65536 });
const memPages = mem.buffer.byteLength / PAGE;
const memStart = address(new Uint8Array(mem.buffer));
stamp(mem, memPages);
const toZero = () => movePages(process.pid, memStart, memPages, 0);

// A move capped at 20 MiB/s of 64 MiB: ~3.2 s at the cap. The cap is a ceiling: the rate may not
// pass it by more than 10 % (the pacing's granularity). How close it comes is reported, not checked:
// the emulated guest's own speed moves with the host's load (moveloop alone: 16-100 MiB/s).
await step('a bandwidth-limited move keeps to its cap', async () => {
  await toZero();
  const cap = 20, pages = (64 * MiB) / PAGE;
  let progress = 0;
  const r = await movePages(process.pid, memStart, pages, 1, { bandwidth: cap, onProgress: () => { progress++; } });
  const rate = (pages * PAGE) / MiB / (r.ms / 1000);
  const fields = { cap, rateMiBs: Number(rate.toFixed(2)), deviation: Number((rate / cap - 1).toFixed(4)), progress, report: report_(r) };
  check(r.moved === pages && Object.keys(r.failed).length === 0, 'not every page moved', fields);
  check(rate <= cap * 1.1, `moved at ${rate.toFixed(2)} MiB/s, past its cap of ${cap}`, fields);
  check(progress >= 1, 'onProgress was never called', fields);
  check(stamped(mem, memPages) === 0, 'pages changed in the move', fields);
  return fields;
});

// The sidecar's mover against moveloop on the same memory (this process's wasm memory, moved back
// to node 0 before each), one after the other three times: the host's load moves both (5–70 k
// pages/s between runs of moveloop alone), so the figure is the median of the rounds' ratios.
await step('the mover against the bare move_pages loop', async () => {
  const rounds = [];
  const pages = (MIB * MiB) / PAGE;
  for (let k = 0; k < 3; k++) {
    await toZero();
    const out = execFileSync('/bin/moveloop', ['--pid', String(process.pid), `0x${memStart.toString(16)}`, String(pages)], { encoding: 'utf8' });
    const c = Number(/pages_per_s=(\d+)/.exec(out)?.[1]);
    check(c > 0, `moveloop printed no rate: ${out}`);
    check(/ failed=0 /.test(out) && new RegExp(` on_to=${pages}\\b`).test(out), `moveloop did not move every page: ${out}`);
    await toZero();
    const r = await movePages(process.pid, memStart, (MIB * MiB) / PAGE, 1);
    check(r.moved === (MIB * MiB) / PAGE && Object.keys(r.failed).length === 0, 'not every page moved', { report: report_(r) });
    const s = Math.round(r.pages / (r.ms / 1000));
    rounds.push({ moveloop: c, sidecar: s, ratio: Number((s / c).toFixed(3)), report: report_(r) });
  }
  check(stamped(mem, memPages) === 0, 'pages changed in the moves');
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    mib: MIB, moveloopPagesPerS: median(rounds.map((x) => x.moveloop)), sidecarPagesPerS: median(rounds.map((x) => x.sidecar)),
    ratio: median(rounds.map((x) => x.ratio)), target: 0.8, rounds,
  };
});

const failed = results.filter((r) => !r.ok).length;
report('done', { ok: failed === 0, failed, steps: results.length });
process.exit(failed ? 1 : 0);
