// Builds a C program over the core translated to C by wasm2c (wabt), as docs/embedding.md does
// by hand: wasm2c one core module into a directory, compile it with the program, wasm2c's
// runtime (wasm-rt-impl.c) and include/memsys.h. Used by test/embed-c.test.ts and bench/c.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** @param {string} name @returns {string | null} */
function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

/**
 * What a build needs: wasm2c, a C compiler and wasm2c's runtime sources (wabt installs them
 * under share/wabt/wasm2c next to its bin/), or what is missing and how to get it.
 * @returns {{ wasm2c: string, cc: string, rt: string, missing?: undefined } | { missing: string }}
 */
export function toolchain() {
  const wasm2c = which('wasm2c');
  const cc = process.env.CC || which('cc');
  const missing = [];
  if (!wasm2c) missing.push('wasm2c');
  if (!cc) missing.push('cc');
  const rt = wasm2c ? join(dirname(dirname(realpathSync(wasm2c))), 'share', 'wabt', 'wasm2c') : '';
  if (wasm2c && !existsSync(join(rt, 'wasm-rt-impl.c'))) missing.push(`${join(rt, 'wasm-rt-impl.c')} (wasm2c's runtime)`);
  if (missing.length) return { missing: `${missing.join(' and ')} not found (apt-get install wabt gcc libc6-dev; .ci/run installs them)` };
  return { wasm2c: /** @type {string} */ (wasm2c), cc: /** @type {string} */ (cc), rt };
}

/**
 * wasm2c's version line, e.g. "1.0.32".
 * @param {{ wasm2c: string }} tc
 */
export function wasm2cVersion(tc) {
  return execFileSync(tc.wasm2c, ['--version'], { encoding: 'utf8' }).trim();
}

/**
 * Translates `modules` ({ name, wasm, cflags? }: each core module under its own wasm2c module
 * name, compiled with its own flags) and links them with `sources` into `out`. Returns out.
 * @param {{ wasm2c: string, cc: string, rt: string }} tc
 * @param {{ dir: string, out: string, sources: string[], modules: { name: string, wasm: string, cflags?: string[] }[], cflags?: string[] }} o
 */
export function buildHost(tc, o) {
  const run = (cmd, args) => execFileSync(cmd, args, { cwd: o.dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const common = ['-O2', '-I', o.dir, '-I', join(root, 'include'), '-I', tc.rt, ...(o.cflags ?? [])];
  const objects = [];
  for (const m of o.modules) {
    const c = join(o.dir, `${m.name}.c`);
    run(tc.wasm2c, [m.wasm, '-n', m.name, '-o', c]);
    const obj = join(o.dir, `${m.name}.o`);
    run(tc.cc, [...common, ...(m.cflags ?? []), '-c', c, '-o', obj]);
    objects.push(obj);
  }
  const rtObj = join(o.dir, 'wasm-rt-impl.o');
  run(tc.cc, [...common, '-c', join(tc.rt, 'wasm-rt-impl.c'), '-o', rtObj]);
  run(tc.cc, [...common, '-Wall', '-Wextra', '-Werror', ...o.sources, ...objects, rtObj, '-lm', '-o', o.out]);
  return o.out;
}
