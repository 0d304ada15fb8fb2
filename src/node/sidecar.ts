// The client of the NUMA sidecar (native/sidecar.c; the protocol is docs/sidecar.md): a child
// process that does what JavaScript cannot (move_pages, process_madvise, PSI triggers), spoken to
// in JSON lines over its stdio.
//
// One child per Sidecar, started by the first request. It never keeps the process alive: the
// child and its pipes are unref'd, and only a request in flight holds the process open, through
// its timeout timer. Nothing waits on the child forever: a request that times out is rejected and
// the child killed; a child that dies rejects what it was asked at once; the next request starts
// a new child. PSI triggers live in the child and are gone with it.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { MemsysError, MemsysTypeError, unref } from '../index.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_ID = 2 ** 31 - 1;
const STDERR_KEPT = 2048;

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

/** An ERR_MEMSYS_SIDECAR error: a request the sidecar answered with an error, or one it could
 * not answer (it died, timed out, or was closed). */
export class SidecarError extends MemsysError {
  /** The failed syscall's errno (EPERM = 1 …); 0 when the sidecar refused the request before any
   * syscall, or did not answer. */
  readonly errno: number;
  /** An error with this message (prefixed "memsys: ") and errno. */
  constructor(message: string, errno = 0) {
    super('ERR_MEMSYS_SIDECAR', message);
    this.errno = errno;
  }
}

/** A request: `op` and its fields, each a number, string or boolean (docs/sidecar.md). */
export interface SidecarRequest {
  op: string;
  [field: string]: unknown;
}

/** Options of a Sidecar. */
export interface SidecarOptions {
  /** The sidecar program. Default: the package's build/memsys-sidecar. */
  binary?: string;
  /** A request's default timeout, ms. Default 10 000. */
  timeoutMs?: number;
}

interface Pending {
  op: string;
  resolve: (v: object) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

// One child process and what was asked of it: when it goes, everything it owes goes with it.
interface Child {
  proc: ChildProcess;
  pid: number;
  pending: Map<number, Pending>; // in the order sent, which is the order of the answers
  parts: string[];               // the line being received, in pieces
  stderr: string;
  gone: boolean;
}


/** The sidecar's client: one child process, started on the first request. */
export class Sidecar {
  readonly #binary: string | undefined;
  readonly #timeoutMs: number;
  #child: Child | undefined;
  #lastId = 0;
  readonly #psi = new Set<(trigger: number) => void>();
  readonly #exits = new Set<(pid: number) => void>();

  /** A client; nothing starts until the first request. Throws ERR_MEMSYS_INVALID_ARG for a
   * binary that is not a non-empty string or a timeout outside 1 … 2^31 − 1 ms. */
  constructor(o: SidecarOptions = {}) {
    if (o.binary !== undefined && (typeof o.binary !== 'string' || o.binary === '')) {
      throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `option binary ${String(o.binary)} must be a path`);
    }
    this.#binary = o.binary;
    this.#timeoutMs = checkTimeout(o.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'option timeoutMs');
  }

  /** The running child's pid, or undefined when none runs (before the first request, after it
   * died or was closed). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Sends one request and resolves the answer's fields (without `id` and `ok`). Rejects with
   * ERR_MEMSYS_SIDECAR (a SidecarError) when the sidecar answers an error (the message has its
   * text and the errno's name), dies during the request, or does not answer within `timeoutMs`
   * (the child is then killed, and the next request starts another); ERR_MEMSYS_UNSUPPORTED when
   * the sidecar is not built; ERR_MEMSYS_INVALID_ARG for a request that is not an object with a
   * string `op` and number, string or boolean fields (`id` is the client's). */
  request<T extends object>(req: SidecarRequest, timeoutMs: number = this.#timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const ms = checkTimeout(timeoutMs, 'timeoutMs');
      const id = this.#lastId = this.#lastId === MAX_ID ? 1 : this.#lastId + 1;
      const line = requestLine(req, id);
      const c = this.#ensure();
      const timer = setTimeout(() => {
        const what = `${req.op} timed out after ${ms} ms`;
        this.#end(c, (p) => (p === entry ? `sidecar ${what}: the sidecar (pid ${c.pid}) was killed, the next request starts a new one`
          : `sidecar ${p.op}: the sidecar (pid ${c.pid}) was killed because ${what}`));
      }, ms);
      const entry: Pending = { op: req.op, resolve: resolve as (v: object) => void, reject, timer };
      c.pending.set(id, entry);
      c.proc.stdin!.write(line);
    });
  }

  /** Calls `fn` with the trigger's id on every PSI event (a trigger set by a `psi_watch` request);
   * returns the function that stops it. A listener does not keep the process alive. */
  onPsi(fn: (trigger: number) => void): () => void {
    return listen(this.#psi, fn, 'onPsi');
  }

  /** Calls `fn` with the child's pid whenever a child is finished with (it died, was killed after
   * a timeout, or was closed), after what it owed was rejected: what lived in it, PSI triggers,
   * is gone. Returns the function that stops it. */
  onExit(fn: (pid: number) => void): () => void {
    return listen(this.#exits, fn, 'onExit');
  }

  /** Stops the child, rejecting what it was asked with ERR_MEMSYS_SIDECAR; its PSI triggers go
   * with it. A later request starts a new child. */
  close(): void {
    const c = this.#child;
    if (c) this.#end(c, (p) => `sidecar ${p.op}: the sidecar (pid ${c.pid}) was closed`);
  }

  #ensure(): Child {
    if (this.#child) return this.#child;
    const binary = present(this.#binary ?? builtBinary());
    const proc = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    const c: Child = { proc, pid: proc.pid ?? 0, pending: new Map(), parts: [], stderr: '', gone: false };
    proc.unref();
    for (const s of [proc.stdin, proc.stdout, proc.stderr]) unref(s);
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => this.#data(c, chunk));
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => { c.stderr = (c.stderr + chunk).slice(-STDERR_KEPT); });
    // A write to a child that died fails with EPIPE; its 'close' says what happened.
    proc.stdin!.on('error', () => {});
    proc.on('error', (e) => this.#end(c, (p) => `sidecar ${p.op}: the sidecar ${binary} failed: ${e.message}`));
    // 'close', not 'exit': answers written just before the end are read before it fires.
    proc.on('close', (code, signal) => {
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      const tail = c.stderr.trim() ? `; it wrote: ${c.stderr.trim()}` : '';
      this.#end(c, (p) => `sidecar ${p.op}: the sidecar (pid ${c.pid}) died (${how}) during the request${tail}`);
    });
    this.#child = c;
    return c;
  }

  // The child is finished with: every request it owes is rejected, and it is killed.
  #end(c: Child, why: (p: Pending) => string): void {
    if (c.gone) return;
    c.gone = true;
    if (this.#child === c) this.#child = undefined;
    const owed = [...c.pending.values()];
    c.pending.clear();
    for (const p of owed) {
      clearTimeout(p.timer);
      p.reject(new SidecarError(why(p)));
    }
    c.proc.kill('SIGKILL');
    emit(this.#exits, c.pid);
  }

  #data(c: Child, chunk: string): void {
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0 && !c.gone; nl = chunk.indexOf('\n', from)) {
      c.parts.push(chunk.slice(from, nl));
      from = nl + 1;
      const line = c.parts.join('');
      c.parts = [];
      this.#line(c, line);
    }
    if (from < chunk.length) c.parts.push(chunk.slice(from));
  }

  #line(c: Child, line: string): void {
    let m: Record<string, unknown> | undefined;
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) m = v as Record<string, unknown>;
    } catch { /* m stays undefined */ }
    if (!m) {
      this.#end(c, (p) => `sidecar ${p.op}: the sidecar (pid ${c.pid}) sent a line that is not a JSON object: ${line.slice(0, 80)}`);
      return;
    }
    if (m.event !== undefined) {
      if (m.event === 'psi' && typeof m.trigger === 'number') emit(this.#psi, m.trigger);
      return;
    }
    // Answers come in the order of the requests: one the sidecar could not read an id from
    // (id 0) belongs to the oldest request still waiting.
    const id = m.id === 0 ? c.pending.keys().next().value : m.id;
    const p = typeof id === 'number' ? c.pending.get(id) : undefined;
    if (!p) return; // an answer to a request already given up on: nothing waits for it
    c.pending.delete(id as number);
    clearTimeout(p.timer);
    if (m.ok === true) {
      const fields = { ...m };
      delete fields.id;
      delete fields.ok;
      p.resolve(fields);
    } else {
      const errno = typeof m.errno === 'number' ? m.errno : 0;
      const name = errno ? ` (${ERRNO_NAMES.get(errno) ?? `errno ${errno}`})` : '';
      p.reject(new SidecarError(`sidecar ${p.op}: ${String(m.error)}${name}`, errno));
    }
  }

}

// Each subscription its own entry, even for the same fn; returns the function that ends it.
function listen<T>(set: Set<(v: T) => void>, fn: (v: T) => void, what: string): () => void {
  if (typeof fn !== 'function') throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `${what} listener ${String(fn)} must be a function`);
  const own = (v: T) => fn(v);
  set.add(own);
  return () => { set.delete(own); };
}

// Calls every listener; one that throws does not stop the others, and its error surfaces as Node
// shows any uncaught error, after the caller is done.
function emit<T>(set: Set<(v: T) => void>, v: T): void {
  for (const fn of [...set]) {
    try {
      fn(v);
    } catch (e) {
      queueMicrotask(() => { throw e; });
    }
  }
}

let one: Sidecar | undefined;

/** This process's one Sidecar, made on the first call. */
export function sidecar(): Sidecar {
  return (one ??= new Sidecar());
}

function checkTimeout(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_ID) {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `${what} ${String(v)} must be an integer 1 … 2^31 − 1 (milliseconds)`);
  }
  return v;
}

// The request as one line; the sidecar refuses anything but flat objects of these types.
function requestLine(req: SidecarRequest, id: number): string {
  if (typeof req !== 'object' || req === null || Array.isArray(req) || typeof req.op !== 'string') {
    throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `sidecar request ${String(req)} must be an object with a string op`);
  }
  for (const [k, v] of Object.entries(req)) {
    if (k === 'id') throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `sidecar request field id is the client's to set`);
    if (!(typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))) {
      throw new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `sidecar request field ${k} ${String(v)} must be a finite number, a string or a boolean`);
    }
  }
  return `${JSON.stringify({ id, ...req })}\n`;
}

/** Why this process's sidecar cannot run (not Linux, not built), or undefined when it can. */
export function sidecarMissing(): string | undefined {
  try {
    present(builtBinary());
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^memsys: /, '');
  }
}

function builtBinary(): string {
  if (process.platform !== 'linux') throw new MemsysError('ERR_MEMSYS_UNSUPPORTED', `the NUMA sidecar is Linux-only (this is ${process.platform})`);
  try {
    return createRequire(import.meta.url).resolve('#sidecar');
  } catch {
    throw notBuilt('it is not in the package');
  }
}

function present(binary: string): string {
  if (!existsSync(binary)) throw notBuilt(`${binary} does not exist`);
  return binary;
}

function notBuilt(why: string): MemsysError {
  return new MemsysError('ERR_MEMSYS_UNSUPPORTED', `the NUMA sidecar (build/memsys-sidecar) is not built (${why}): ` +
    'install a C compiler (apt-get install gcc) and run `npm run build` in the memsys package');
}
