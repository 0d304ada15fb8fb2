// Starting a TypeScript worker under tsx. Node 20 does not apply loader hooks given in a Worker's
// execArgv (--import tsx) to the worker's entry module (nodejs/node#47747): the .ts entry fails
// with ERR_UNKNOWN_FILE_EXTENSION. So the worker starts from a tiny script that registers tsx in
// its own thread, then imports the entry.

import { Worker } from 'node:worker_threads';

export function startWorker(entry: URL, data: unknown): Worker {
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}
