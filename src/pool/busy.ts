import { MemsysError } from '../errors.js';

// An arena stayed locked by another realm: what was done before is kept, the rest waits.
export const isBusy = (e: unknown): boolean => e instanceof MemsysError && e.code === 'ERR_MEMSYS_BUSY';

// Runs f; false if an arena it called stayed locked by another realm (ERR_MEMSYS_BUSY: what f did
// before is kept, the rest waits for another time). Any other error passes on.
export function unlessBusy(f: () => void): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (isBusy(e)) return false;
    throw e;
  }
}
