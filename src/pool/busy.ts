import { MemsysError } from '../errors.js';

// Runs f; false if an arena it called stayed locked by another realm (ERR_MEMSYS_BUSY: what f did
// before is kept, the rest waits for another time). Any other error passes on.
export function unlessBusy(f: () => void): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (e instanceof MemsysError && e.code === 'ERR_MEMSYS_BUSY') return false;
    throw e;
  }
}
