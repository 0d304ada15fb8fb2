// The declaration files a user of the package can reach: those the entries' declarations import,
// transitively. build/types keeps only these (the package's exports map reaches nothing else), and
// test/types.test.ts checks that every name they export is one an entry re-exports.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const ENTRIES = ['index.d.ts', 'node/index.d.ts'];

export function reachable(root, entries = ENTRIES) {
  const seen = new Set();
  const todo = entries.map((e) => resolve(root, e));
  while (todo.length) {
    const f = todo.pop();
    if (seen.has(f)) continue;
    seen.add(f);
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:from\s+|import\(\s*)['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      const p = resolve(dirname(f), `${m[1]}.d.ts`);
      if (existsSync(p)) todo.push(p);
    }
  }
  return seen;
}
