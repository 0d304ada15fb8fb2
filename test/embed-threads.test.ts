// The threaded core (build/memsys.wasm) outside JavaScript: two instances over one shared memory
// in wabt's interpreter (spectest-interp --enable-threads), driven by a wasm module of our own
// (test/embed/threads-driver.wat, which says what it checks). The .wast script is written here from
// the built module's bytes, converted by wast2json and run; every assertion in it must pass.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from './helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CORE = join(ROOT, 'build', 'memsys.wasm');
const CORE_ST = join(ROOT, 'build', 'memsys.st.wasm');
const DRIVER = readFileSync(new URL('./embed/threads-driver.wat', import.meta.url), 'utf8');

// The driver's pseudo-random run: its seed and length (about 2 s in the interpreter; the whole
// script, with the E_BUSY spin of ~2^24 tries and the two sabotaged half runs, about 5 s).
const SEED = 0x2545f491;
const OPS = 100000;

const tool = (name: string, ...args: string[]) => spawnSync(name, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, FORCE_COLOR: '0' } }); // uvu's bin sets FORCE_COLOR=1, which colours wabt's messages
const version = (name: string) => { const r = tool(name, '--version'); return r.error || r.status !== 0 ? null : r.stdout.trim(); };
const wabt = { interp: version('spectest-interp'), wast2json: version('wast2json'), wasm2c: version('wasm2c') };

// The memory the driver imports: "(memory N N shared)". The arena's memory is made to match.
const pages = Number((/\(import "env" "memory" \(memory (\d+) \1 shared\)\)/.exec(DRIVER) ?? [])[1]);

// A module in a .wast from its bytes, every byte escaped.
const binary = (name: string, bytes: Uint8Array) => `(module ${name} binary "${Array.from(bytes, (b) => `\\${b.toString(16).padStart(2, '0')}`).join('')}")`;

// One arena: a shared memory registered as "env", the core instantiated twice over it ("a" and
// "b"), and the driver, whose exports the assertions after it invoke.
function world(core: Uint8Array): string {
  return [
    `(module $M (memory (export "memory") ${pages} ${pages} shared))`,
    '(register "env" $M)',
    binary('$A', core),
    '(register "a" $A)',
    binary('$B', core),
    '(register "b" $B)',
    DRIVER,
  ].join('\n');
}

const ret = (call: string, expected: number) => `(assert_return (invoke ${call}) (i32.const ${expected}))`;

function script(core: Uint8Array): { wast: string; asserts: number } {
  const parts = [
    world(core),
    ret('"setup"', 0),
    ret(`"run" (i32.const ${SEED}) (i32.const ${OPS}) (i32.const 0)`, 0),
    // What must fail is seen to fail: through the core ...
    ret('"double_free"', -5), // E_NOT_OUT
    ret('"wrong_class"', -4), // E_WRONG_CLASS
    ret('"bad_state"', -103), // check(): a slot's state is wrong
    ret('"busy"', -9), // E_BUSY while realm 33 holds the lock
    ret('"empty"', 0),
    // ... and through the driver's own checks, each in a fresh arena: a clobbered tag (20) and a
    // buffer the driver forgets to free, so that the core's out count differs from its own (31).
    world(core),
    ret('"setup"', 0),
    ret(`"run" (i32.const ${SEED}) (i32.const ${OPS}) (i32.const 1)`, 20),
    world(core),
    ret('"setup"', 0),
    ret(`"run" (i32.const ${SEED}) (i32.const ${OPS}) (i32.const 2)`, 31),
  ];
  return { wast: parts.join('\n') + '\n', asserts: parts.filter((p) => p.startsWith('(assert_return')).length };
}

const missing = [wabt.interp ? '' : 'spectest-interp', wabt.wast2json ? '' : 'wast2json'].filter(Boolean).join(' and ');

needs('the threaded core in wabt', missing === '', `wabt's ${missing} not found (apt-get install wabt; .ci/run installs it)`, () => {
  test('two instances of the threaded core over one shared memory pass every assertion in spectest-interp', () => {
    assert.ok(pages >= 3, 'the driver imports a memory of N N shared pages');
    const dir = mkdtempSync(join(tmpdir(), 'memsys-wabt-'));
    try {
      const { wast, asserts } = script(readFileSync(CORE));
      writeFileSync(join(dir, 'threads.wast'), wast);
      const conv = tool('wast2json', '--enable-threads', join(dir, 'threads.wast'), '-o', join(dir, 'threads.json'));
      assert.is(conv.status, 0, `wast2json: ${conv.stderr}`);
      // spectest-interp counts every command but a registration as a test: each module and each
      // assertion. All of them must pass.
      const commands = JSON.parse(readFileSync(join(dir, 'threads.json'), 'utf8')).commands as { type: string }[];
      assert.is(commands.filter((c) => c.type === 'assert_return').length, asserts);
      const started = Date.now();
      const r = tool('spectest-interp', '--enable-threads', join(dir, 'threads.json'));
      const ms = Date.now() - started;
      assert.is(r.status, 0, `spectest-interp exited ${r.status} ${r.signal ?? ''}:\n${r.stdout}${r.stderr}`);
      const m = /^(\d+)\/(\d+) tests passed\.$/m.exec(r.stdout);
      assert.ok(m, `no "N/N tests passed" line in:\n${r.stdout}`);
      assert.is(m[1], m[2], r.stdout);
      assert.is(Number(m[2]), commands.filter((c) => c.type !== 'register').length, r.stdout);
      console.log(`  spectest-interp: ${m[0]} in ${(ms / 1000).toFixed(1)} s (${OPS} operations, ${pages} pages)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a driver run that fails is reported as a failed assertion, not a pass', () => {
    // The same script with the real run expected to return 1 instead of 0: the interpreter must
    // say so and exit non-zero (the harness above reads its verdict correctly).
    const dir = mkdtempSync(join(tmpdir(), 'memsys-wabt-'));
    try {
      const core = readFileSync(CORE);
      const wast = [world(core), ret('"setup"', 0), ret(`"run" (i32.const ${SEED}) (i32.const 64) (i32.const 0)`, 1)].join('\n');
      writeFileSync(join(dir, 'fail.wast'), wast);
      assert.is(tool('wast2json', '--enable-threads', join(dir, 'fail.wast'), '-o', join(dir, 'fail.json')).status, 0);
      const r = tool('spectest-interp', '--enable-threads', join(dir, 'fail.json'));
      assert.is.not(r.status, 0, r.stdout);
      assert.match(r.stdout, /mismatch in result 0 of assert_return: expected i32:1, got i32:0/);
      assert.match(r.stdout, /^\d+\/\d+ tests passed\.$/m);
      assert.not.match(r.stdout, /^(\d+)\/\1 tests passed\.$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without --enable-threads the interpreter refuses the shared memory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsys-wabt-'));
    try {
      writeFileSync(join(dir, 'core.wast'), `${binary('$A', readFileSync(CORE))}\n`);
      const r = tool('wast2json', join(dir, 'core.wast'), '-o', join(dir, 'core.json'));
      assert.is.not(r.status, 0);
      assert.match(r.stderr, /memory may not be shared: threads not allowed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // wabt 1.0.32's wasm2c has no threads support: it refuses the threaded build outright (what
  // docs/embedding-threads.md quotes), and converts the single-threaded one.
  if (wabt.wasm2c === '1.0.32') {
    test('wasm2c 1.0.32 refuses the shared memory and converts the single-threaded build', () => {
      const dir = mkdtempSync(join(tmpdir(), 'memsys-wasm2c-'));
      try {
        const plain = tool('wasm2c', CORE, '-o', join(dir, 'core.c'));
        assert.is(plain.status, 1);
        assert.is(plain.stderr.trim(), '0000047: error: memory may not be shared: threads not allowed');
        const threads = tool('wasm2c', '--enable-threads', CORE, '-o', join(dir, 'core.c'));
        assert.is(threads.status, 1);
        assert.is(threads.stderr.trim(), 'wasm2c currently only supports a limited set of features.');
        const st = tool('wasm2c', CORE_ST, '-o', join(dir, 'core-st.c'));
        assert.is(st.status, 0, st.stderr);
        assert.match(readFileSync(join(dir, 'core-st.h'), 'utf8'), /alloc/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  } else {
    console.warn(`\n!!! wasm2c is ${wabt.wasm2c ?? 'missing'}, not 1.0.32: its refusal of shared memories is not checked\n`);
  }
});

test.run();
