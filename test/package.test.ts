// The built package as a user gets it: both entries, one set of classes, and the demo runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';

test('memsys and memsys/node share their classes; memsys/node installs the host reader', async () => {
  // @ts-expect-error: built output, no declarations beside it
  const web = await import('../build/index.js');
  // @ts-expect-error: built output, no declarations beside it
  const node = await import('../build/node.js');
  assert.is(web.MMSA, node.MMSA);
  const host = node.readHostStats();
  assert.ok(host.total > 0 && host.free > 0 && host.free <= host.total);
  const mm = new web.MMSA({ name: 'pkg', minFree: host.total * 2 });
  assert.is(mm.init()?.code, 'ERR_MEMSYS_INSUFFICIENT_MEMORY', 'host figures reached an MMSA made through memsys');
});

test('npm start (the demo) runs and reports what it did', () => {
  const out = execFileSync(process.execPath, ['scripts/demo.js'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(out, /checked 50\/50 and freed them/);
  assert.match(out, /ERR_MEMSYS_NOT_LIVE/);
  assert.match(out, /terminated: 0 arenas left/);
});

test.run();
