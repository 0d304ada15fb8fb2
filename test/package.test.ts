// The built package as a user gets it: both entries, one set of classes, `memsys` resolved by name
// (Node, and bundlers for the browser, for Node and for neither), and the demo runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';

const ROOT = realpathSync(new URL('..', import.meta.url).pathname);

test('memsys and memsys/node share their classes; memsys/node installs the host reader', async () => {
  const web = await import('../build/index.js');
  const node = await import('../build/node.js');
  assert.is(web.MMSA, node.MMSA);
  const host = node.readHostStats()!;
  assert.ok(host.total > 0 && host.free > 0 && host.free <= host.total);
  const mm = new web.MMSA({ name: 'pkg', minFree: host.total * 2 });
  assert.is(mm.init()?.code, 'ERR_MEMSYS_INSUFFICIENT_MEMORY', 'host figures reached an MMSA made through memsys');
});

// A user's project outside the repo with memsys installed (linked) under node_modules, so that
// `memsys` resolves by its name through package.json's "exports".
function userProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'memsys-pkg-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'memsys'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  return dir;
}

test('in Node, `memsys` is the Node entry: host figures, Node streams, the classes of memsys/node', () => {
  const dir = userProject();
  try {
    writeFileSync(join(dir, 'main.js'), `
      import { MMSA, SGL, readHostStats } from 'memsys';
      import * as node from 'memsys/node';
      import * as inline from 'memsys/inline';
      const mm = new MMSA({ name: 'child', minFree: 0 });
      mm.init();
      const sgl = mm.newSGL();
      sgl.writeString('through a Node Readable');
      const chunks = [];
      for await (const c of sgl.toReadable()) chunks.push(Buffer.from(c));
      const into = mm.newSGL();
      await new Promise((resolve, reject) => into.toWritable().on('error', reject).end('and a Writable', resolve));
      const low = new MMSA({ name: 'low', minFree: readHostStats().total * 2 });
      console.log(JSON.stringify({
        resolved: import.meta.resolve('memsys'),
        total: mm.hostStats()?.total,
        read: Buffer.concat(chunks).toString(),
        written: new TextDecoder().decode(into.readAll()),
        init: low.init()?.code,
        sameAsNode: MMSA === node.MMSA && SGL === node.SGL && sgl instanceof node.SGL,
        sameAsInline: MMSA === inline.MMSA,
      }));
      mm.terminate();
    `);
    const out = JSON.parse(execFileSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8', timeout: 30_000 }));
    assert.ok(out.resolved.endsWith('/build/node.js'), out.resolved);
    assert.ok(out.total > 0, 'mm.hostStats() has the host figures');
    assert.is(out.read, 'through a Node Readable');
    assert.is(out.written, 'and a Writable');
    assert.is(out.init, 'ERR_MEMSYS_INSUFFICIENT_MEMORY', 'the host provider is every MMSA\'s default');
    assert.ok(out.sameAsNode, 'memsys and memsys/node hand out one MMSA and one SGL');
    assert.ok(out.sameAsInline, 'memsys/inline shares them too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bundlers pick the file for their platform: browser, Node, or neither', async () => {
  const dir = userProject();
  try {
    const bundle = async (platform: esbuild.Platform) => {
      const r = await esbuild.build({
        stdin: { contents: "import { MMSA } from 'memsys'; console.log(MMSA);", resolveDir: dir },
        bundle: true, platform, format: 'esm', write: false, metafile: true, logLevel: 'silent',
      });
      return Object.keys(r.metafile.inputs).filter((f) => f.includes('build/')).map((f) => f.replace(/^.*build\//, '')).sort();
    };
    assert.equal(await bundle('browser'), ['browser.js']);
    assert.equal(await bundle('node'), ['index.js', 'node.js']);
    assert.equal(await bundle('neutral'), ['index.js']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm start (the demo) runs and reports what it did', () => {
  const out = execFileSync(process.execPath, ['scripts/demo.js'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(out, /checked 50\/50 and freed them/);
  assert.match(out, /ERR_MEMSYS_NOT_LIVE/);
  assert.match(out, /terminated: 0 arenas left/);
  assert.match(out, /SGL: after handoff the sender gets ERR_MEMSYS_MOVED/);
  assert.match(out, /host: .* available of .*pressure (low|moderate|high|extreme|OOM)/);
  const burst = /burst: ([\d.]+) GiB streamed; pool peaked at ([\d.]+) MiB, ([\d.]+) (B|KiB|MiB) after the quiet spell/.exec(out);
  assert.ok(burst, 'the burst ran');
  assert.ok(Number(burst![1]) > 0.5 && Number(burst![2]) >= 16, `streamed ${burst![1]} GiB, peak ${burst![2]} MiB`);
  const after = Number(burst![3]) / (burst![4] === 'MiB' ? 1 : 1024 * 1024);
  assert.ok(after < Number(burst![2]) / 2, `the pool gave memory back once quiet: ${burst![2]} MiB -> ${after} MiB`);
  const chart = /chart: (\S+\.svg)/.exec(out)![1];
  assert.match(readFileSync(chart, 'utf8'), /<polyline/);
});

test.run();
