// The published type declarations as a user's TypeScript project compiles them, with
// skipLibCheck off so that every declaration of the package is checked too:
//   - a browser project (no Node types at all, lib ES2022 + DOM, bundler resolution), which must
//     not meet a `node:` module nor a Node global anywhere in the browser-safe declarations;
//   - a Node project (nodenext, @types/node), where `memsys` resolves to the Node entry's types
//     and an SGL's toReadable() is Node's Readable.
// Each project lives in a temp dir outside the repo with memsys copied into its node_modules, so
// that nothing of the repo's own node_modules (@types/node above all) is found by walking up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

// A project dir with memsys installed as the published package has it: package.json and build/
// (declarations, bundles and the `#core` declaration), copied rather than linked.
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'memsys-types-'));
  const pkg = join(dir, 'node_modules', 'memsys');
  mkdirSync(join(pkg, 'build'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(ROOT, 'build/types'), join(pkg, 'build/types'), { recursive: true });
  for (const f of readdirSync(join(ROOT, 'build')).filter((n) => /\.(js|d\.ts)$/.test(n))) {
    cpSync(join(ROOT, 'build', f), join(pkg, 'build', f));
  }
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

// Compiles a project made by project() and removes it: its output must match `want` (exit 0 and
// nothing printed, or a failure with the given error code).
function compiles(dir: string, want: { fails?: RegExp } = {}): void {
  try {
    const r = tsc(dir);
    if (want.fails) {
      assert.is.not(r.status, 0);
      assert.match(r.out, want.fails);
    } else {
      assert.is(r.out, '');
      assert.is(r.status, 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Every file below `d`, but for folders named in `skip`.
function walk(d: string, skip: string[] = []): string[] {
  return readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? (skip.includes(n) ? [] : walk(p, skip)) : [p];
  });
}

// tsc's exit status and everything it printed.
function tsc(dir: string): { status: number; out: string } {
  try {
    const out = execFileSync(process.execPath, [TSC, '-p', dir], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    return { status: 0, out };
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return { status: x.status, out: `${x.stdout}${x.stderr}` };
  }
}

// Where a directory's ancestors hold a node_modules/@types, TypeScript would find it from there.
function typesAbove(dir: string): string | undefined {
  for (let d = dirname(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', '@types'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

const browserApp = `
import {
  MMSA, SGL, SGLReader, Channel, loadCore, MemsysError, MemsysRangeError, MemsysTypeError, browserMemStats,
  Pressure, pressureName, formatBytes, MiB, type MemsysErrorCode, type Handoff, type MMSAStats,
} from 'memsys';
import { MMSA as InlineMMSA } from 'memsys/inline';

await loadCore({ base: '/assets/' });
const mm = new MMSA({ name: 'app', arenaSize: 16 * MiB, memStats: browserMemStats({ budget: 64 * MiB }) });
const err: MemsysError | null = mm.init();
if (err) {
  const code: MemsysErrorCode = err.code;
  console.log(code);
}
const same: typeof MMSA = InlineMMSA;
const stats: MMSAStats = mm.stats();
console.log(same, formatBytes(stats.bytes), pressureName(mm.pressure()), Pressure.OOM);

const sgl: SGL = mm.newSGL();
sgl.writeString('hello');
const rs: ReadableStream<Uint8Array> = sgl.toReadableStream({ copy: true });
const ws: WritableStream<ArrayBufferView | ArrayBufferLike | string> = sgl.toWritableStream();
const reader: SGLReader = sgl.open();
await sgl.writeTo(new WritableStream<Uint8Array>());
for await (const chunk of sgl) console.log(chunk.byteLength);
console.log(rs, ws, reader.len);
// In the browser-safe types a Node stream is nothing to call methods on.
// @ts-expect-error
sgl.toReadable().pipe;
// SGLs and their readers come from an MMSA and an SGL, not from \`new\`.
// @ts-expect-error
new SGL();
// @ts-expect-error
new SGLReader(sgl);

const ch: Channel = mm.openChannel();
const posted: Handoff = sgl.handoff();
ch.send(mm.alloc());
const got = await ch.receive(100);
console.log(posted.kind, got instanceof Uint8Array ? got.byteLength : got.len);

try {
  mm.allocSize(-1);
} catch (e) {
  if (e instanceof MemsysRangeError || e instanceof MemsysTypeError) console.log(e.code);
}
mm.terminate();
export {};
`;

test('a browser TypeScript project (no Node types, skipLibCheck off) compiles against memsys', () => {
  const dir = project({
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [],
        strict: true, skipLibCheck: false, noEmit: true,
      },
      files: ['app.ts'],
    }),
    'app.ts': browserApp,
  });
  assert.is(typesAbove(dir), undefined, 'no node_modules/@types above the project');
  compiles(dir);
});

test('the browser-safe declarations name no node: module and no Node global', () => {
  const nodeOnly = /from\s+['"]node:|import\(['"]node:|\bNodeJS\.|reference\s+types=["']node/;
  const files = walk(join(ROOT, 'build/types'), ['node']);
  assert.ok(files.some((f) => f.endsWith('sgl/sgl.d.ts')));
  for (const f of files) assert.not.match(readFileSync(f, 'utf8'), nodeOnly, f);
});

test('build/types publishes only the public API: every file an entry reaches, every name one an entry exports', async () => {
  const { ENTRIES, reachable } = await import('../scripts/types-reach.js') as { ENTRIES: string[]; reachable(root: string): Set<string> };
  const root = join(ROOT, 'build/types');
  const files = walk(root);
  const reached = reachable(root);
  assert.equal(files.filter((f) => !reached.has(f)), [], 'declaration files no entry reaches');
  const pub = new Set<string>();
  for (const e of ENTRIES) {
    for (const m of readFileSync(join(root, e), 'utf8').matchAll(/export (?:type )?\{([^}]*)\}/g)) {
      for (const n of m[1].split(',')) pub.add(n.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!);
    }
  }
  assert.ok(pub.has('MMSA') && pub.has('SGL') && pub.has('watch'), 'the entries\' names were read');
  const leaks: string[] = [];
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^export (?:declare )?(?:abstract )?(?:class|function|const|interface|type|let|enum) (\w+)/gm)) {
      if (!pub.has(m[1])) leaks.push(`${f.slice(root.length + 1)}: ${m[1]}`);
    }
  }
  assert.equal(leaks, [], 'names published that no entry exports (mark them @internal)');
  const mmsa = readFileSync(join(root, 'mmsa.d.ts'), 'utf8');
  assert.not.match(mmsa, /^\s+(?:readonly )?pool:|requestArena\(|coreOut\(/m, 'internal members of MMSA are stripped');
  assert.ok(files.length >= 20 && !files.some((f) => f.endsWith('pool/pool.d.ts')), `${files.length} files, none of the pool's internals`);
});

test('the browser check fails on a Node reference (it can fail)', () => {
  const dir = project({
    'tsconfig.json': JSON.stringify({
      compilerOptions: { module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true },
      files: ['app.ts'],
    }),
    'app.ts': "import type { Readable } from 'node:stream';\nexport let r: Readable | undefined;\n",
  });
  compiles(dir, { fails: /TS2307/ });
});

const nodeApp = `
import { MMSA, SGL, readHostStats } from 'memsys';
import * as memsysNode from 'memsys/node';
import { Readable, Writable } from 'node:stream';

type Is<T extends true> = T;
export type ReadableIsNodes = Is<ReturnType<SGL['toReadable']> extends Readable ? true : false>;
export type WritableIsNodes = Is<ReturnType<SGL['toWritable']> extends Writable ? true : false>;

const mm = new MMSA({ name: 'server', minFree: 0 });
mm.init();
const same: typeof MMSA = memsysNode.MMSA;
console.log(same, readHostStats()?.total, mm.hostStats()?.available);
const sgl = mm.newSGL();
sgl.writeString('hello');
const r = sgl.toReadable();
r.pipe(process.stdout);
r.on('end', () => sgl.free());
const w: Writable = mm.newSGL().toWritable();
w.end('bye');
await sgl.readFrom(Readable.from(['more']));
{
  // Symbol.dispose as TypeScript's own lib, @types/node and memsys each declare it.
  using scratch = mm.newSGL();
  scratch.writeByte(1);
}
`;

test('a Node TypeScript project (nodenext, @types/node) gets Node streams from `memsys`', () => {
  const dir = project({
    'package.json': JSON.stringify({ name: 'server', private: true, type: 'module' }),
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ESNext', 'DOM'], types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')], strict: true, skipLibCheck: false, noEmit: true,
      },
      files: ['server.ts'],
    }),
    'server.ts': nodeApp,
  });
  compiles(dir);
});

test('the Node check fails where toReadable() is not a Readable (it can fail)', () => {
  const dir = project({
    'package.json': JSON.stringify({ name: 'server', private: true, type: 'module' }),
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')], strict: true, noEmit: true,
      },
      files: ['server.ts'],
    }),
    'server.ts': "import type { SGL } from 'memsys';\ntype Is<T extends true> = T;\n" +
      "export type NotAString = Is<ReturnType<SGL['toReadable']> extends string ? true : false>;\n",
  });
  compiles(dir, { fails: /TS2344/ });
});

test.run();
