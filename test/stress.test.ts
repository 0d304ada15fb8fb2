// A short run of the stress scenarios (`npm run stress` runs them for as long as asked).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runStress } from './stress/run.js';

for (const mode of ['sleep', 'nosleep'] as const) {
  test(`stress, ${mode}: buffers and SGLs from many tasks in 4 threads, memory freed and pressure moved meanwhile`, async () => {
    const r = await runStress({ durationMs: 2500, mode, minOps: 200 });
    assert.ok(r.ops >= 200, `${r.ops} operations`);
    assert.ok(r.sgls > 10 && r.buffers > 100);
    assert.is(r.mismatches, 0, 'no object ever held a wrong byte');
    assert.is(r.inUseAtEnd, 0, 'every count balances');
    assert.is(r.outAtEnd, 0, 'every slot is back in its arena');
    assert.equal(r.pressureSeen, [0, 1, 2, 3], 'it ran through Low, Moderate, High and Extreme');
    assert.ok(r.freeMemCalls >= 3);
  });
}

test.run();
