// A throwaway two-node NUMA machine for the tests: qemu's software emulation (this VM's KVM cannot
// boot ordinary guests: the platform facts, §6.1), Debian's cloud kernel and
// an initramfs of busybox, this host's `node` and the memsys package. The host has one node, so
// this is the only place where pages really move between nodes.
//
//   const { code, output } = await bootGuest({ script: 'moveloop 64', timeoutMs: 120_000 });
//
// The kernel comes from Debian's archive, fetched here (apt-get download + dpkg -x) rather than
// installed: installing a linux-image package on the host would run its hooks (an initramfs for
// the host, /boot, the boot loader) on a machine that never boots it, and the harness needs one
// file of it, keyed by its version, under build/guest/. So a developer's `npm test` gets it as CI
// does, and .ci/run only installs qemu and busybox. MEMSYS_GUEST_KERNEL=/path/to/vmlinuz uses
// another kernel.
//
// The initramfs is two cpio archives one after the other (the kernel unpacks both): a base of
// busybox, node and its libraries, cached under build/guest/ by the versions of what is in it,
// and a small layer made at each boot: /init, the script, the package's build/ and package.json
// under /memsys (so `import('memsys/node')` resolves there by the package's self-reference), the
// moveloop program and the files asked for. Uncompressed, which boots fastest (§6.1).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync, chmodSync, closeSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync,
  readSync, readdirSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const GUEST_DIR = join(ROOT, 'build', 'guest');
const BUSYBOX = '/bin/busybox';
const QEMU = 'qemu-system-x86_64';
// The meta-package names the current kernel of the series; its image package, "-unsigned",
// carries the same vmlinuz without the Secure Boot signature that a direct -kernel boot ignores.
const KERNEL_META = 'linux-image-6.12-cloud-amd64';
// Bumped when the base archive's layout changes, so that older caches are not reused.
const BASE_LAYOUT = 1;

export interface GuestFile { from: string }
export interface GuestOptions {
  /** A shell script, run by busybox sh in /memsys, in a subshell of /init. */
  script: string;
  /** Extra files by guest path: text or bytes (mode 0644), or { from: host path } (its mode kept). */
  files?: Record<string, string | Uint8Array | GuestFile>;
  /** The package shipped as /memsys: its package.json and build/. Default this checkout. */
  pkg?: string;
  /** Exported to the script. */
  env?: Record<string, string>;
  /** Host wall time from the start of qemu to its end; then qemu is killed. Default 300 s. */
  timeoutMs?: number;
  /** Memory of each of the two nodes, MiB. Default 1024. */
  nodeMiB?: number;
  /** kernel.numa_balancing in the guest. Default false: balancing undoes moves within seconds (§6.1). */
  numaBalancing?: boolean;
  /** /sys/kernel/mm/transparent_hugepage/enabled. Default: the kernel's ("always" in Debian's). */
  thp?: 'always' | 'madvise' | 'never';
  /** Called with each line of the console as it arrives (progress for long runs). */
  onLine?: (line: string) => void;
}

export interface GuestRun {
  /** The script's exit code; null when it did not finish (timeout, panic, qemu failed). */
  code: number | null;
  /** What the script printed (stdout and stderr), between init's start and end markers. */
  output: string;
  /** The whole serial console, kernel messages included. */
  console: string;
  timedOut: boolean;
  /** Why code is null, or ''. */
  failure: string;
  kernel: string;
  ms: {
    /** Kernel and base archive ready (downloads and builds only the first time), run layer made. */
    prepare: number;
    /** Host wall time from qemu's start to init's start marker. */
    boot: number;
    /** The guest's own uptime when init started. */
    guestBoot: number;
    /** Host wall time of the script. */
    script: number;
    /** Host wall time from qemu's start to its exit. */
    qemu: number;
  };
}

const run = (cmd: string, args: string[], opts: { cwd?: string } = {}) =>
  spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
const ok = (r: ReturnType<typeof run>) => !r.error && r.status === 0;
// build/guest/, with an .npmignore: `files` in package.json ships build/, and this cache (~120 MB)
// must never go with it.
export function cacheDir(): string {
  mkdirSync(GUEST_DIR, { recursive: true });
  const ignore = join(GUEST_DIR, '.npmignore');
  if (!existsSync(ignore)) writeFileSync(ignore, "# The NUMA guest's cache (kernel, initramfs): never part of the package.\n*\n");
  return GUEST_DIR;
}
const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
const stamp = (p: string) => { const s = statSync(p); return `${p}:${s.size}:${s.mtimeMs}`; };

// Whether an ELF file asks for a dynamic loader (a PT_INTERP program header): busybox must be
// busybox-static's, and a dynamic binary in build/ needs its libraries in the guest.
export function isDynamic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) throw new Error(`${path} is not a 64-bit ELF file`);
    const phoff = Number(h.readBigUInt64LE(0x20)), size = h.readUInt16LE(0x36), count = h.readUInt16LE(0x38);
    const ph = Buffer.alloc(size * count);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < count; i++) if (ph.readUInt32LE(i * size) === 3) return true;
    return false;
  } finally {
    closeSync(fd);
  }
}

const isElf = (path: string) => {
  const fd = openSync(path, 'r');
  try { const b = Buffer.alloc(4); return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32BE(0) === 0x7f454c46; } finally { closeSync(fd); }
};

// The libraries `ldd` lists for a binary, the dynamic loader included, as absolute paths. Lines are
// "name => /path (0x…)", "/path (0x…)" (the loader) or "name (0x…)" (the vDSO, no file); a
// "not found" is an error, not a library to leave out.
export function lddLibraries(binary: string, text?: string): string[] {
  if (text === undefined) {
    const r = run('ldd', [binary]);
    if (!ok(r)) throw new Error(`ldd ${binary} failed: ${r.error?.message ?? r.stderr.trim()}`);
    text = r.stdout;
  }
  const libs: string[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (l === '' || /^statically linked$|not a dynamic executable/.test(l)) continue;
    let m = /^(\S+)\s+=>\s+not found$/.exec(l);
    if (m) throw new Error(`ldd ${binary}: ${m[1]} not found`);
    m = /^\S+\s+=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(l) ?? /^(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(l);
    if (m) libs.push(m[1]);
    else if (!/^\S+\s+\(0x[0-9a-f]+\)$/.test(l)) throw new Error(`ldd ${binary}: a line not understood: ${JSON.stringify(l)}`);
  }
  return libs;
}

/** What the guest needs that this machine lacks, or '' (the kernel is checked by guestKernel()). */
export function guestMissing(): string {
  const missing: string[] = [];
  const qemu = run(QEMU, ['--version']);
  if (!ok(qemu)) missing.push(`${QEMU} (apt-get install qemu-system-x86)`);
  if (!existsSync(BUSYBOX) || isDynamic(BUSYBOX) || !ok(run(BUSYBOX, ['cpio', '--help']))) {
    missing.push(`a static ${BUSYBOX} with cpio (apt-get install busybox-static)`);
  }
  if (!ok(run('gcc', ['--version']))) missing.push('gcc (apt-get install gcc)');
  if (!ok(run('ldd', ['--version']))) missing.push('ldd (libc-bin)');
  return missing.join(', ');
}

// Fetches the image package and keeps its vmlinuz (and config, to read what the kernel has).
function fetchKernel(pkg: string, dir: string): void {
  const work = mkdtempSync(join(tmpdir(), 'memsys-kernel-'));
  try {
    let r = run('apt-get', ['download', pkg], { cwd: work });
    // An old package list may name a version the archive no longer has: refresh it (root only).
    if (!ok(r) && process.getuid?.() === 0) {
      run('apt-get', ['update']);
      r = run('apt-get', ['download', pkg], { cwd: work });
    }
    if (!ok(r)) throw new Error(`apt-get download ${pkg} failed: ${r.error?.message ?? r.stderr.trim()}`);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
    const x = run('dpkg', ['-x', join(work, deb), join(work, 'x')]);
    if (!ok(x)) throw new Error(`dpkg -x ${deb} failed: ${x.stderr.trim()}`);
    const boot = join(work, 'x', 'boot');
    const image = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
    const config = readdirSync(boot).find((f) => f.startsWith('config-'));
    if (!image) throw new Error(`${deb} has no /boot/vmlinuz-*`);
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    copyFileSync(join(boot, image), join(tmp, 'vmlinuz'));
    if (config) copyFileSync(join(boot, config), join(tmp, 'config'));
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The guest kernel: { path, version }, fetched once into build/guest/kernel-VERSION/. Throws saying why not. */
export function guestKernel(): { path: string; version: string } {
  const own = process.env.MEMSYS_GUEST_KERNEL;
  if (own) {
    if (!existsSync(own)) throw new Error(`MEMSYS_GUEST_KERNEL=${own} does not exist`);
    return { path: own, version: stamp(own) };
  }
  cacheDir();
  const cached = () => readdirSync(GUEST_DIR).filter((d) => /^kernel-/.test(d) && !d.includes('.tmp-') && existsSync(join(GUEST_DIR, d, 'vmlinuz')));
  const depends = () => {
    const r = run('apt-cache', ['depends', KERNEL_META]);
    return { r, m: ok(r) ? /Depends: (linux-image-\S+)/.exec(r.stdout) : null };
  };
  let { r: deps, m } = depends();
  // A machine whose package lists were never fetched, with nothing cached: fetch them (root only).
  if (!m && cached().length === 0 && process.getuid?.() === 0) {
    run('apt-get', ['update']);
    ({ r: deps, m } = depends());
  }
  if (!m) {
    // Offline or no package lists: the newest kernel fetched before will do.
    const have = cached().sort().at(-1);
    if (have) return { path: join(GUEST_DIR, have, 'vmlinuz'), version: have.slice('kernel-'.length) };
    throw new Error(`apt-cache depends ${KERNEL_META} names no kernel (${deps.error?.message ?? (deps.stderr.trim() || 'apt-get update first')}) and none was fetched before`);
  }
  const pkg = `${m[1]}-unsigned`;
  const version = m[1].slice('linux-image-'.length);
  const dir = join(GUEST_DIR, `kernel-${version}`);
  if (!existsSync(join(dir, 'vmlinuz'))) fetchKernel(pkg, dir);
  return { path: join(dir, 'vmlinuz'), version };
}

// Copies a host file to the same path under a staging root, its contents (not a symlink).
function stage(root: string, path: string, as = path): void {
  const to = join(root, as);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(realpathSync(path), to);
  chmodSync(to, statSync(realpathSync(path)).mode & 0o7777);
}

// A cpio (newc) archive of a staging tree, by busybox, padded to 512 bytes so that the next
// archive after it starts aligned.
function cpio(tree: string, out: string): void {
  execFileSync('/bin/sh', ['-c', `cd "$1" && ${BUSYBOX} find . | ${BUSYBOX} cpio -o -H newc > "$2"`, 'cpio', tree, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  const pad = (512 - (statSync(out).size % 512)) % 512;
  if (pad) appendFileSync(out, Buffer.alloc(pad));
}

const NODE = realpathSync(process.execPath);

// The base archive: busybox (and a link per applet), node at its host path, node's libraries at
// theirs. Cached by what goes in; older ones are removed (each is ~100 MB).
function baseArchive(): { path: string; libs: Set<string> } {
  const libs = lddLibraries(NODE);
  const key = sha(JSON.stringify([BASE_LAYOUT, process.version, stamp(NODE), stamp(BUSYBOX), ...libs.map((l) => stamp(realpathSync(l)))]));
  const path = join(cacheDir(), `base-${key}.cpio`);
  if (!existsSync(path)) {
    const tree = mkdtempSync(join(tmpdir(), 'memsys-base-'));
    try {
      for (const d of ['dev', 'proc', 'sys', 'tmp', 'root', 'etc', 'memsys', 'guest']) mkdirSync(join(tree, d), { recursive: true });
      stage(tree, BUSYBOX, '/bin/busybox');
      const applets = run(BUSYBOX, ['--list']).stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
      for (const a of applets) symlinkSync('busybox', join(tree, 'bin', a));
      stage(tree, NODE);
      if (NODE !== '/usr/bin/node') { mkdirSync(join(tree, 'usr', 'bin'), { recursive: true }); symlinkSync(NODE, join(tree, 'usr', 'bin', 'node')); }
      for (const l of libs) stage(tree, l);
      writeFileSync(join(tree, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
      writeFileSync(join(tree, 'etc', 'group'), 'root:x:0:\n');
      const tmp = `${path}.tmp-${process.pid}`;
      cpio(tree, tmp);
      for (const f of readdirSync(GUEST_DIR)) if (/^base-.*\.cpio$/.test(f)) rmSync(join(GUEST_DIR, f), { force: true });
      renameSync(tmp, path);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  }
  return { path, libs: new Set(libs) };
}

// test/guest/moveloop.c, built static (raw syscalls, no libnuma) and cached by its source.
export function moveloopBinary(): string {
  const src = fileURLToPath(new URL('./moveloop.c', import.meta.url));
  const gcc = run('gcc', ['--version']).stdout.split('\n')[0];
  const bin = join(GUEST_DIR, `moveloop-${sha(readFileSync(src, 'utf8') + gcc)}`);
  if (!existsSync(bin)) {
    cacheDir();
    for (const f of readdirSync(GUEST_DIR)) if (/^moveloop-/.test(f)) rmSync(join(GUEST_DIR, f), { force: true });
    execFileSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', src, '-o', `${bin}.tmp`], { stdio: ['ignore', 'inherit', 'inherit'] });
    renameSync(`${bin}.tmp`, bin);
  }
  return bin;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const MARK = '@@memsys-guest';

function initScript(token: string, o: GuestOptions): string {
  const env = Object.entries(o.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_]\w*$/.test(k)) throw new Error(`env: ${JSON.stringify(k)} is not a variable name`);
    return `export ${k}=${quote(v)}\n`;
  }).join('');
  return `#!/bin/busybox sh
# The console is a terminal: without these, node colours what it prints.
export PATH=/bin:/usr/bin HOME=/root TMPDIR=/tmp NO_COLOR=1 NODE_DISABLE_COLORS=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo ${o.numaBalancing ? 1 : 0} > /proc/sys/kernel/numa_balancing
${o.thp ? `echo ${o.thp} > /sys/kernel/mm/transparent_hugepage/enabled\n` : ''}echo "${MARK} start ${token} uptime=$(cut -d' ' -f1 /proc/uptime) numa_balancing=$(cat /proc/sys/kernel/numa_balancing) thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled | sed 's/.*\\[\\(.*\\)\\].*/\\1/')"
(
cd /memsys
${env}exec sh /guest/script.sh
) 2>&1
code=$?
echo "${MARK} end ${token} code=$code uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
`;
}

// The layer made at each boot; returns the path of the whole initramfs (base + layer).
function runArchive(o: GuestOptions, token: string, base: { path: string; libs: Set<string> }): string {
  const tree = mkdtempSync(join(tmpdir(), 'memsys-layer-'));
  const out = join(tmpdir(), `memsys-initramfs-${process.pid}-${token}.cpio`);
  try {
    writeFileSync(join(tree, 'init'), initScript(token, o), { mode: 0o755 });
    mkdirSync(join(tree, 'guest'));
    writeFileSync(join(tree, 'guest', 'script.sh'), o.script);
    stage(tree, moveloopBinary(), '/bin/moveloop');
    // The package as installed: package.json and build/ (the bundles, the core, the native helper,
    // the sidecar if built), without the guest's own cache, the maps and the declarations.
    const pkg = join(tree, 'memsys');
    mkdirSync(pkg, { recursive: true });
    const from = o.pkg ?? ROOT;
    copyFileSync(join(from, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(from, 'build'), join(pkg, 'build'), {
      recursive: true,
      filter: (src) => !/\/build\/(guest|types)(\/|$)|\.map$|\.wat$|\.png$/.test(src),
    });
    for (const [to, what] of Object.entries(o.files ?? {})) {
      if (!to.startsWith('/')) throw new Error(`files: ${JSON.stringify(to)} is not an absolute guest path`);
      if (typeof what === 'string' || what instanceof Uint8Array) {
        mkdirSync(dirname(join(tree, to)), { recursive: true });
        writeFileSync(join(tree, to), what);
      } else {
        stage(tree, what.from, to);
      }
    }
    // Dynamic binaries in the layer (the native helper, the sidecar) may need libraries node does not.
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
    for (const f of walk(tree)) {
      if (!isElf(f) || !isDynamic(f)) continue;
      for (const l of lddLibraries(f)) if (!base.libs.has(l) && !existsSync(join(tree, l))) stage(tree, l);
    }
    const layer = `${out}.layer`;
    cpio(tree, layer);
    copyFileSync(base.path, out);
    appendFileSync(out, readFileSync(layer));
    rmSync(layer);
    return out;
  } catch (e) {
    rmSync(out, { force: true });
    throw e;
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

export function qemuArgs(kernel: string, initrd: string, nodeMiB = 1024): string[] {
  return [
    '-accel', 'tcg', '-cpu', 'max', '-m', `${2 * nodeMiB}M`,
    // One socket per node: with plain -smp 2 the scheduler warns that CPU 1's LLC sibling is on another node.
    '-smp', '2,sockets=2,cores=1,threads=1',
    '-object', `memory-backend-ram,id=m0,size=${nodeMiB}M`, '-object', `memory-backend-ram,id=m1,size=${nodeMiB}M`,
    '-numa', 'node,nodeid=0,cpus=0,memdev=m0', '-numa', 'node,nodeid=1,cpus=1,memdev=m1',
    '-numa', 'dist,src=0,dst=1,val=20',
    '-nographic', '-no-reboot', '-kernel', kernel, '-initrd', initrd,
    // panic=-1 with -no-reboot: if init dies, qemu exits instead of hanging until the timeout.
    '-append', 'console=ttyS0 panic=-1 quiet',
  ];
}

const live = new Set<number>();
process.once('exit', () => { for (const pid of live) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });

/** Boots the two-node guest, runs `script` in it and returns its exit code and output. */
export async function bootGuest(o: GuestOptions): Promise<GuestRun> {
  const t0 = performance.now();
  const missing = guestMissing();
  if (missing) throw new Error(`the guest needs ${missing}`);
  const kernel = guestKernel();
  const token = randomBytes(6).toString('hex');
  const initrd = runArchive(o, token, baseArchive());
  const prepare = performance.now() - t0;
  const timeoutMs = o.timeoutMs ?? 300_000;

  const started = performance.now();
  const qemu = spawn(QEMU, qemuArgs(kernel.path, initrd, o.nodeMiB), { stdio: ['ignore', 'pipe', 'pipe'] });
  if (qemu.pid !== undefined) live.add(qemu.pid);
  let text = '', pending = '', stderr = '', bootAt = 0, endAt = 0, timedOut = false;
  const utf8 = new StringDecoder('utf8');
  const onData = (d: Buffer) => {
    pending += utf8.write(d);
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const raw of lines) {
      // SeaBIOS clears the screen with escape sequences that land on the line of init's first words.
      const l = raw.replace(/\r|\x1b(\[[0-9;?]*[A-Za-z]|c)/g, '');
      text += `${l}\n`;
      if (!bootAt && l.includes(`${MARK} start ${token}`)) bootAt = performance.now();
      if (!endAt && l.includes(`${MARK} end ${token}`)) {
        endAt = performance.now();
        // poweroff -f ends qemu at once; one that does not is killed rather than waited for.
        setTimeout(() => kill(), 10_000).unref();
      }
      o.onLine?.(l);
    }
  };
  const kill = () => { if (qemu.exitCode === null && qemu.signalCode === null && qemu.pid !== undefined) process.kill(qemu.pid, 'SIGKILL'); };
  qemu.stdout.on('data', onData);
  qemu.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => { timedOut = true; kill(); }, timeoutMs);
  const exit = await new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    qemu.once('error', (error) => resolve({ code: null, signal: null, error }));
    qemu.once('close', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(timer);
  if (pending) text += pending;
  if (qemu.pid !== undefined) live.delete(qemu.pid);
  const qemuMs = performance.now() - started;
  rmSync(initrd, { force: true });

  const startLine = new RegExp(`${MARK} start ${token} uptime=([\\d.]+).*$`, 'm').exec(text);
  const endLine = new RegExp(`${MARK} end ${token} code=(\\d+).*$`, 'm').exec(text);
  const output = startLine ? text.slice(startLine.index + startLine[0].length + 1, endLine ? endLine.index : undefined) : '';
  let failure = '';
  if (!endLine) {
    failure = timedOut ? `timed out after ${timeoutMs} ms (qemu killed)`
      : exit.error ? `qemu did not start: ${exit.error.message}`
      : `qemu exited (${exit.signal ?? exit.code}) before the script ended${startLine ? '' : ', before init started'}${stderr ? `: ${stderr.trim()}` : ''}`;
  }
  return {
    code: endLine ? Number(endLine[1]) : null,
    output,
    console: text + (stderr ? `\n[qemu stderr]\n${stderr}` : ''),
    timedOut,
    failure,
    kernel: kernel.version,
    ms: {
      prepare,
      boot: bootAt ? bootAt - started : NaN,
      guestBoot: startLine ? Number(startLine[1]) * 1000 : NaN,
      script: bootAt && endAt ? endAt - bootAt : NaN,
      qemu: qemuMs,
    },
  };
}

// `node --import tsx test/guest/guest.ts prepare` fetches and builds what the guest needs;
// `… run 'SCRIPT'` boots it and runs SCRIPT, printing the console as it comes.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const [cmd, script] = process.argv.slice(2);
  if (cmd === 'prepare') {
    const missing = guestMissing();
    if (missing) { console.error(`missing: ${missing}`); process.exit(1); }
    console.log(`kernel ${JSON.stringify(guestKernel())}\nbase ${baseArchive().path}\nmoveloop ${moveloopBinary()}`);
  } else if (cmd === 'run' && script) {
    const r = await bootGuest({ script, onLine: (l) => console.log(l) });
    console.log(JSON.stringify({ code: r.code, failure: r.failure, kernel: r.kernel, ms: r.ms }));
    process.exit(r.code ?? 1);
  } else {
    console.error("usage: node --import tsx test/guest/guest.ts prepare | run 'SCRIPT'");
    process.exit(2);
  }
}
