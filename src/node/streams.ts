// Node stream classes over an SGL, registered with the core by memsys/node (index.ts) so that
// sgl.toReadable() / sgl.toWritable() work; the browser-safe core never imports node:stream.

import { Readable, Writable } from 'node:stream';
import type { ChunkOptions, SGL } from '../index.js';
import { copyOption } from '../index.js';

// Unread bytes, consumed as they are read. Chunks are views of the SGL's buffers (no copy) unless
// `copy`: valid until the SGL is freed, reset or written over.
export function sglReadable(sgl: SGL, opts: ChunkOptions): Readable {
  const copy = copyOption(opts);
  return new Readable({
    read() {
      try {
        const c = sgl.nextChunk();
        this.push(c ? (copy ? c.slice() : c) : null);
      } catch (e) {
        this.destroy(e as Error);
      }
    },
  });
}

// Appends every chunk written; strings are written as UTF-8.
export function sglWritable(sgl: SGL): Writable {
  return new Writable({
    write(chunk: Uint8Array, _enc, cb) {
      try {
        sgl.write(chunk);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}
