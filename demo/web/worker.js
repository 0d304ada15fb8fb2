// A worker of the live view: attaches the page's MMSA and, during bursts, holds and churns 32 KiB
// buffers and sends some to the page, which frees them (memory made in one realm, given back in
// another).
import { MMSA } from '/build/browser.js';

let mm;
let phase = 'quiet';
let held = [];

function burst() {
  if (phase !== 'burst') return;
  try {
    for (let i = 0; i < 64; i++) held.push(mm.allocSize(32768));
    if (held.length > 1024) postMessage({ bufs: held.splice(0, 256) });
  } catch (e) {
    if (e.code === 'ERR_MEMSYS_BUDGET' || e.code === 'ERR_MEMSYS_OUT_OF_MEMORY') postMessage({ refused: 1 });
    else postMessage({ error: String(e) });
  }
  setTimeout(burst, 50);
}

onmessage = (e) => {
  const d = e.data;
  if (d.memsys) return; // memsys's own announcements on this port
  try {
    if (d.desc) {
      mm = MMSA.attach(d.desc, self);
      postMessage({ ready: true });
    } else if (d.phase === 'burst') {
      phase = 'burst';
      burst();
    } else if (d.phase === 'quiet') {
      phase = 'quiet';
      for (const b of held) mm.free(b);
      held = [];
    }
  } catch (err) {
    postMessage({ error: String(err) });
  }
};
