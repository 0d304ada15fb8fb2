// Runs the uvu suites under test/ (TypeScript through tsx) and ends with one plain line,
// "N passed, N failed, N skipped", that CI reads. Exits non-zero on any failure.
import { spawnSync } from 'node:child_process';

const args = ['--import', 'tsx', 'node_modules/uvu/bin.js', 'test', '\\.test\\.ts$'];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
process.stdout.write(r.stdout);
// uvu colours its summary: the figures are read from the text without its ANSI colour codes.
const plain = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
const num = (label) => Number((new RegExp(`${label}:\\s+(\\d+)`).exec(plain) ?? [])[1] ?? 0);
const total = num('Total');
const passed = num('Passed');
const skipped = num('Skipped');
const failed = total - passed; // uvu's total counts the tests that ran, not the skipped ones
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(r.status === 0 && failed === 0 && total > 0 ? 0 : 1);
