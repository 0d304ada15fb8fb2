// The built package as a user gets it: both entries, one set of classes, and the demo runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

test('memsys and memsys/node share their classes; memsys/node installs the host reader', async () => {
  const web = await import('../build/index.js');
  const node = await import('../build/node.js');
  assert.is(web.MMSA, node.MMSA);
  const host = node.readHostStats()!;
  assert.ok(host.total > 0 && host.free > 0 && host.free <= host.total);
  const mm = new web.MMSA({ name: 'pkg', minFree: host.total * 2 });
  assert.is(mm.init()?.code, 'ERR_MEMSYS_INSUFFICIENT_MEMORY', 'host figures reached an MMSA made through memsys');
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
