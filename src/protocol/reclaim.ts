// What a stream's socket reads leave behind, given back as it goes. Node reads a socket into
// buffers it allocates outside V8's heap; a relayed chunk dies at once, but V8 collects such
// buffers only when young objects fill its nursery — a stream makes few — or when external
// memory has grown by tens of MiB. A 64 MiB answer passed through grew the gateway and the
// worker by ≈ 35 MiB each (README, Benchmarks: Streaming), which glibc then keeps. So every
// RECLAIM_EVERY_BYTES relayed, a minor GC (a scavenge, ≈ 0.4 ms here) frees the dead reads.
import v8 from 'node:v8';
import vm from 'node:vm';

export const RECLAIM_EVERY_BYTES = 4 * 1024 * 1024;

let since = 0;
/** The scavenge; undefined where this Node cannot give it (then nothing is done), null until first needed. */
let scavenge: (() => void) | undefined | null = null;

/** Counts bytes relayed by a stream; past the threshold, collects what the reads left. */
export function relayed(bytes: number): void {
  since += bytes;
  if (since < RECLAIM_EVERY_BYTES) return;
  since = 0;
  if (scavenge === null) scavenge = minorGc();
  scavenge?.();
}

function minorGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (options: { type: 'minor' }) => void; // a new context sees the flag
    return () => gc({ type: 'minor' });
  } catch {
    return undefined;
  }
}
