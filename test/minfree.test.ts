// Minimum free memory: AIStore README precedence, AIS_* variables, and their errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA, parseSize } from '../src/index.js';
import { minFree } from '../src/policy/minfree.js';
import { throwsCode } from './helpers.js';

const GiB = 1 << 30;
const host = { total: 64 * GiB, free: 32 * GiB };

test('AIS_MINMEM_FREE wins over everything', () => {
  const m = minFree({ AIS_MINMEM_FREE: '2GiB', AIS_MINMEM_PCT_TOTAL: '50' }, { minFree: 5 * GiB }, host);
  assert.equal(m, { bytes: 2 * GiB, source: 'AIS_MINMEM_FREE' });
});

test('then AIS_MINMEM_PCT_TOTAL / AIS_MINMEM_PCT_FREE; the smaller of the two', () => {
  assert.is(minFree({ AIS_MINMEM_PCT_TOTAL: '10' }, { minFree: 5 * GiB }, host).bytes, Math.floor(6.4 * GiB));
  assert.is(minFree({ AIS_MINMEM_PCT_FREE: '10' }, {}, host).bytes, Math.floor(3.2 * GiB));
  assert.is(minFree({ AIS_MINMEM_PCT_TOTAL: '10', AIS_MINMEM_PCT_FREE: '10' }, {}, host).bytes, Math.floor(3.2 * GiB));
});

test('then the fields, the smallest given; then 1.5 GiB', () => {
  assert.is(minFree({}, { minFree: 5 * GiB, minPctTotal: 4 }, host).bytes, Math.floor(2.56 * GiB));
  assert.is(minFree({}, { minFree: 1 * GiB, minPctTotal: 4 }, host).bytes, 1 * GiB);
  assert.is(minFree({}, { minPctFree: 50 }, host).bytes, 16 * GiB);
  assert.equal(minFree({}, {}, host), { bytes: 1.5 * GiB, source: 'default' });
  assert.is(minFree({}, {}, undefined).bytes, 0, 'no host (a browser): no built-in minimum');
  assert.is(minFree({}, { minFree: 1000 }, undefined).bytes, 1000);
});

test('each bad variable is ERR_MEMSYS_ENV naming it and its value, and the next rule applies as if it were unset', () => {
  const cases: [Record<string, string>, string, number][] = [
    [{ AIS_MINMEM_FREE: '2 parsecs' }, 'AIS_MINMEM_FREE "2 parsecs"', 3 * GiB],
    [{ AIS_MINMEM_FREE: '-1', AIS_MINMEM_PCT_TOTAL: '10' }, 'AIS_MINMEM_FREE "-1"', Math.floor(host.total / 10)],
    [{ AIS_MINMEM_PCT_TOTAL: 'ten' }, 'AIS_MINMEM_PCT_TOTAL "ten"', 3 * GiB],
    [{ AIS_MINMEM_PCT_TOTAL: '150' }, 'within 0..100', 3 * GiB],
    [{ AIS_MINMEM_PCT_FREE: '1.5' }, 'AIS_MINMEM_PCT_FREE "1.5"', 3 * GiB],
  ];
  for (const [env, part, bytes] of cases) {
    const m = minFree(env, { minFree: 3 * GiB }, host);
    throwsCode(() => { throw m.error; }, 'ERR_MEMSYS_ENV', part);
    assert.is(m.bytes, bytes, part);
  }
  assert.is(minFree({ AIS_MINMEM_FREE: 'x' }, {}, host).bytes, 1.5 * GiB, 'no field either: the default');
});

test('init with a bad variable returns its error and keeps the minimum from the fields: pressure is not Low with too little free', () => {
  const mm = new MMSA({ name: 'env', env: { AIS_MINMEM_FREE: 'lots' }, minFree: 400 << 20, housekeeping: false,
    memStats: () => ({ total: 4 * GiB, free: 300 << 20, available: 300 << 20 }) });
  const err = mm.init();
  assert.is(err?.code, 'ERR_MEMSYS_ENV');
  assert.is(mm.watermarks.minFree, 400 << 20);
  assert.ok(mm.pressure() >= 2, `300 MiB free under a 400 MiB minimum (${mm.pressure()})`);
  mm.terminate();
});

test('size strings', () => {
  assert.is(parseSize('2GiB'), 2 * GiB);
  assert.is(parseSize('2gb'), 2 * GiB);
  assert.is(parseSize('2G'), 2 * GiB);
  assert.is(parseSize('512MiB'), 512 << 20);
  assert.is(parseSize('1048576'), 1048576);
  assert.is(parseSize('1.5k'), 1536);
  assert.is(parseSize('lots'), undefined);
  assert.is(parseSize(''), undefined);
});

test('init applies the precedence to the host figures and stats report the result', () => {
  const mm = new MMSA({ name: 'p', env: { AIS_MINMEM_PCT_FREE: '1' }, memStats: () => host, minFree: GiB });
  assert.is(mm.init(), null);
  assert.is(mm.stats().minFree, Math.floor(0.32 * GiB));
});

test('a bad AIS_DEBUG is init\'s error, and the minimum and watermarks are still worked out', () => {
  const mm = new MMSA({
    name: 'envdebug', housekeeping: false, env: { AIS_DEBUG: 'memsys=zz', AIS_MINMEM_FREE: '1GiB' },
    memStats: () => ({ total: 8 * 2 ** 30, free: 4 * 2 ** 30 }),
  });
  const err = mm.init();
  assert.is(err?.code, 'ERR_MEMSYS_ENV');
  assert.match(err!.message, /AIS_DEBUG "memsys=zz"/);
  assert.equal(mm.watermarks.minFree, 2 ** 30);
  assert.is(mm.watermarks.source, 'AIS_MINMEM_FREE');
  assert.ok(mm.watermarks.lowWM > 2 ** 30);
  mm.free(mm.alloc()); // initialised all the same
  mm.terminate();
});

test.run();
