// The direct data path's control messages (README "Data paths"). A warm node instance in a
// process sandbox has a second socket (fd 5 inside); its worker hands the other end to the
// gateway with Node's IPC channel (SCM_RIGHTS underneath), which exists between the gateway and
// the workers it spawned, and lends it slots: calls the gateway may run on it at once. The
// gateway then sends the instance its calls itself, in the runtime host's own frames
// (instance-frames.ts), and the worker stays the owner of the instance: it starts, limits, warms,
// reaps and stops it. What the worker must know of the calls it no longer sees comes back here,
// off the hot path: that the instance was used (once a second), that a call timed out on it, and
// that the gateway has let go of it.
//
// Worker → gateway:
//   lease   the socket (the message's handle) and the slots lent: a new instance of key@version
//   slots   more slots lent on an instance already leased (calls through the worker ended)
//   revoke  send no more calls; `release` once the ones running have ended (retired, stopping)
//   reclaim give it back now if no call runs on it (`release`), else say `busy` and keep it (the
//           memory budget needs room: an idle instance is evicted, one in use is not)
//   gone    the instance exited, and why (its calls still running are answered with it)
// Gateway → worker:
//   direct  this gateway takes leases (sent once, at the worker's start; `--data-path direct`)
//   release the gateway has no call left on the instance and sends none (after `revoke` or
//           `reclaim`, or when its socket broke)
//   busy    the answer to `reclaim` when calls run on it: the lease is kept
//   timeout a call ran past its timeout_ms on the instance: it is stuck, and is replaced
//   used    the instances that ran calls since the last `used` (for the idle reaper)

export type ToGateway =
  | { readonly t: 'lease'; readonly instance: string; readonly key: string; readonly version: number; readonly slots: number }
  | { readonly t: 'slots'; readonly instance: string; readonly slots: number }
  | { readonly t: 'revoke'; readonly instance: string }
  | { readonly t: 'reclaim'; readonly instance: string }
  | { readonly t: 'gone'; readonly instance: string; readonly message: string };

export type ToWorker =
  | { readonly t: 'direct' }
  | { readonly t: 'release'; readonly instance: string }
  | { readonly t: 'busy'; readonly instance: string }
  | { readonly t: 'timeout'; readonly instance: string }
  | { readonly t: 'used'; readonly instances: readonly string[] };

/** How often the gateway tells workers which leased instances ran calls. */
export const USED_EVERY_MS = 1000;

type Fields = Record<string, 'string' | 'count'>;

const TO_GATEWAY: Record<ToGateway['t'], Fields> = {
  lease: { instance: 'string', key: 'string', version: 'count', slots: 'count' },
  slots: { instance: 'string', slots: 'count' },
  revoke: { instance: 'string' },
  reclaim: { instance: 'string' },
  gone: { instance: 'string', message: 'string' },
};

/** A message from a worker's IPC channel, or why it is not one (the gateway logs it and drops it). */
export function parseToGateway(msg: unknown): ToGateway | string {
  return parse(msg, TO_GATEWAY) as ToGateway | string;
}

const TO_WORKER: Record<Exclude<ToWorker['t'], 'used'>, Fields> = {
  direct: {},
  release: { instance: 'string' },
  busy: { instance: 'string' },
  timeout: { instance: 'string' },
};

/** A message from the gateway's IPC channel, or why it is not one. */
export function parseToWorker(msg: unknown): ToWorker | string {
  if (isObject(msg) && msg.t === 'used') {
    return Array.isArray(msg.instances) && msg.instances.every((i) => typeof i === 'string')
      ? msg as ToWorker : 'a "used" message needs instances: an array of names';
  }
  return parse(msg, TO_WORKER) as ToWorker | string;
}

function parse(msg: unknown, kinds: Record<string, Fields>): unknown {
  if (!isObject(msg) || typeof msg.t !== 'string' || !Object.hasOwn(kinds, msg.t)) {
    return `not a direct-path message (t must be one of ${Object.keys(kinds).join(', ')})`;
  }
  for (const [field, kind] of Object.entries(kinds[msg.t]!)) {
    const v = msg[field];
    const ok = kind === 'string' ? typeof v === 'string' : Number.isSafeInteger(v) && (v as number) >= 0;
    if (!ok) return `a "${msg.t}" message needs ${field}: ${kind === 'string' ? 'a string' : 'a whole number ≥ 0'}`;
  }
  return msg;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
