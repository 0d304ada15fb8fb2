import * as assert from 'uvu/assert';

// Asserts that fn throws an error with this code whose message mentions every one of `parts`.
export function throwsCode(fn: () => unknown, code: string, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `expected ${code}, nothing was thrown`);
  assert.is((err as { code?: string }).code, code, (err as Error).message);
  for (const p of parts) assert.ok((err as Error).message.includes(p), `message ${JSON.stringify((err as Error).message)} lacks ${JSON.stringify(p)}`);
}
