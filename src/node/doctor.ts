// `memsys doctor`: what limits this process's memory, in plain sentences with the numbers. Each
// finding is info (worth knowing) or danger (allocations can fail, or the process be killed or
// stalled); the CLI exits non-zero when there is a danger.

import { cgroupRoom } from './cgroup.js';
import { type MemStats, type PageOps, formatBytes } from './index.js';

export interface Finding {
  level: 'info' | 'danger';
  topic: 'overcommit' | 'cgroup' | 'psi' | 'swap' | 'address-space' | 'memory' | 'give-back' | 'sidecar';
  text: string;
}

// V8 reserves about 10 GiB of address space per WebAssembly memory (platform-facts).
const WASM_RESERVATION = 10 * 2 ** 30;
const MIN_HEADROOM = 256 * 2 ** 20;

// `pages`: how this process can give memory back (memsys/node's page helper, or none);
// `sidecar.missing`: why the NUMA sidecar cannot run here, if it cannot.
export function diagnose(s: MemStats | undefined, minFree: number, pages: PageOps, sidecar: { missing?: string } = {}): Finding[] {
  const out: Finding[] = [];
  const f = (b: number | undefined) => (b === undefined ? '?' : formatBytes(b));
  if (!s) {
    out.push({ level: 'danger', topic: 'memory', text: 'cannot read /proc/meminfo: memsys has no host figures, so it cannot see memory pressure' });
    return out;
  }
  const c = s.commit;
  if (c?.mode === 2 && c.headroom !== undefined) {
    const ramFree = s.buffCache !== undefined ? Math.max(s.free, s.available ?? 0) : s.free;
    const danger = c.headroom < MIN_HEADROOM || c.headroom < ramFree / 4;
    out.push({
      level: danger ? 'danger' : 'info', topic: 'overcommit',
      text: `vm.overcommit_memory=2 (strict, ratio ${c.ratio ?? '?'}%) leaves ${f(c.headroom)} of commit headroom ` +
        `(CommitLimit ${f(c.limit)} − Committed_AS ${f(c.committed)})` +
        (danger ? `, so allocations can fail with ENOMEM although more RAM is free` : ''),
    });
  }
  const cg = s.cgroup;
  if (cg?.limit !== undefined) {
    const room = cgroupRoom(cg)!;
    const low = room < cg.limit / 10;
    out.push({
      level: low ? 'danger' : 'info', topic: 'cgroup',
      text: `cgroup v${cg.version} ${cg.limitFrom ?? cg.path} caps this process at ${f(cg.limit)}; ` +
        `${f(room)} of it is usable (usage ${f(cg.usage)} less inactive file pages ${f(cg.inactiveFile)})` +
        (low ? ': beyond it the kernel reclaims, then kills the process (a cgroup never returns ENOMEM)' : ''),
    });
  }
  if (cg?.high !== undefined) {
    out.push({ level: 'info', topic: 'cgroup', text: `memory.high ${f(cg.high)}: above it the kernel throttles the process and reclaims its memory` });
  }
  const p = s.psi;
  if (p && (p.some.avg10 >= 1 || (p.full?.avg10 ?? 0) > 0)) {
    out.push({
      level: 'danger', topic: 'psi',
      text: `PSI shows memory stalls: some task waited ${p.some.avg10}% of the last 10 s (${p.some.avg60}% of 60 s)` +
        (p.full ? `, all tasks ${p.full.avg10}%` : ''),
    });
  }
  if (s.swap && s.swap.used > 0) {
    out.push({ level: 'info', topic: 'swap', text: `${f(s.swap.used)} of ${f(s.swap.total)} swap in use: memsys raises pressure while it grows` });
  }
  if (s.addressSpace !== undefined) {
    const arenas = Math.max(0, Math.floor(s.addressSpace / WASM_RESERVATION) - 1);
    out.push({
      level: arenas < 2 ? 'danger' : 'info', topic: 'address-space',
      text: `address space is limited to ${f(s.addressSpace)} (ulimit -v); V8 reserves ~10 GiB per WebAssembly memory, ` +
        `so about ${arenas} arena(s) fit, and the pool never drops its last one`,
    });
  }
  if (!pages.discard) {
    out.push({
      level: cg?.limit !== undefined ? 'danger' : 'info', topic: 'give-back',
      text: `free pages cannot be given back in place: ${pages.missing ?? 'no page helper'}; memsys drops whole empty arenas ` +
        'and asks V8 to collect them, so memory freed inside an arena stays charged' + (cg?.limit !== undefined ? ' to the cgroup' : ''),
    });
  }
  const avail = s.available ?? s.free;
  if (avail <= minFree) {
    out.push({ level: 'danger', topic: 'memory', text: `only ${f(avail)} available, at or below the minimum free ${f(minFree)}` });
  }
  if (out.length === 0) {
    out.push({ level: 'info', topic: 'memory', text: `nothing limits this process below the host: ${f(avail)} of ${f(s.total)} available` });
  }
  if (sidecar.missing !== undefined) {
    out.push({ level: 'info', topic: 'sidecar', text: `${sidecar.missing}; without it there is no mm.place(), no \`memsys move\` or \`memsys pages\`, and no PSI pressure events (the housekeeping timer alone runs)` });
  }
  // The overcommit policy in force, whatever else was found: it decides how a shortage shows.
  if (c?.mode === 0) {
    out.push({ level: 'info', topic: 'overcommit', text: 'vm.overcommit_memory=0 (heuristic): only a single mapping larger than RAM plus swap fails with ENOMEM; ' +
      'past that, memory runs out at the page fault and the OOM killer decides' });
  } else if (c?.mode === 1) {
    out.push({ level: 'info', topic: 'overcommit', text: 'vm.overcommit_memory=1 (always): no allocation fails with ENOMEM; ' +
      'when memory runs out the OOM killer ends a process, so watch pressure rather than errors' });
  }
  return out;
}
