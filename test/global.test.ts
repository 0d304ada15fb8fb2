// The global memory manager: one page MMSA and one small MMSA, set up once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as memsys from '../src/index.js';

test('init sets up both once; pageMM and byteMM return them', () => {
  const a = memsys.init();
  assert.is(memsys.init(), a);
  assert.is(memsys.pageMM(), a);
  assert.is.not(memsys.byteMM(), a);
  assert.is(a.defaultSize, 32768);
  assert.is(memsys.byteMM().defaultSize, 1024);
  assert.is(a.timeIval, 120_000);
  const b = memsys.byteMM().alloc();
  assert.is(b.length, 1024);
  memsys.byteMM().free(b);
  const p = a.alloc();
  assert.is(p.length, 32768);
  a.free(p);
});

test.run();
