// Frames between a function instance (the runtime host inside the sandbox) and whoever calls it:
// its worker, over the socketpair the sandbox inherits as fd 3, and on the direct data path the
// gateway, over the one it inherits as fd 5 (README "Data paths"):
//
//   u32 BE frameBytes | u32 BE metaBytes | meta (UTF-8 JSON) | body (raw bytes)
//
// JSON rather than msgpack because the hosts run inside the sandbox with only their
// runtime's standard library (node-host.mjs, python-host.py); the body never goes through
// JSON. Keep this layout in step with both hosts.

import { ChunkQueue } from './frames.js';

export type HostMessage =
  | { t: 'ready' }
  | { t: 'load_error'; message: string }
  /** `waitUntil`: work the call handed to ctx.waitUntil still runs; a `done` frame follows. */
  | ({ t: 'result'; id: number; status: number; headers: string[]; waitUntil?: true } & DirectUsage)
  | ({ t: 'error'; id: number; code: 'FUNCTION_ERROR' | 'FUNCTION_RESPONSE_INVALID'; message: string } & DirectUsage)
  | { t: 'log'; id: number; stream: 'stdout' | 'stderr'; text: string }
  /** A WebAssembly module's run: its stdout (the body of the frame) is a CGI response (cgi.ts). */
  | { t: 'cgi'; id: number; exitCode: number; stderr: string }
  /** A streamed answer: its status and headers, then `chunk` frames (the bytes are the body), then `end`. */
  | { t: 'head'; id: number; status: number; headers: string[] }
  | { t: 'chunk'; id: number }
  /** `error`: the stream broke off (the function's stream threw); the answer is cut short. */
  | ({ t: 'end'; id: number; error?: string; waitUntil?: true } & DirectUsage)
  /** The call's answer is sent, and work it handed to ctx.waitUntil is running: `done` follows. */
  | { t: 'done'; id: number };

/**
 * What the host measured of a call on its direct channel, once its worker sent `account`: the
 * process's CPU time during the call, µs, and its memory (node-host.mjs usageSince says how).
 */
export interface DirectUsage {
  cpuUs?: number;
  memPeak?: number;
}

/**
 * Worker → host, beside invoke and load: flow control of a streamed answer (`ack`: the client
 * took `bytes` more; `cancel`: it went away), and a streamed request body (`chunk`, `end`).
 */
export type HostControl =
  | { t: 'ack'; id: number; bytes: number }
  | { t: 'cancel'; id: number }
  | { t: 'chunk'; id: number }
  /** `error`: the request body broke off (its client went). */
  | { t: 'end'; id: number; error?: string }
  /** Worker only: report the figures of calls on the direct channel (the instance has a cgroup; the worker does not see those calls). */
  | { t: 'account' };

export interface HostInvoke {
  t: 'invoke';
  id: number;
  requestId: string;
  method: string;
  path: string;
  query: string;
  headers: string[];
  /** The client's address as the gateway resolved it; absent from an older gateway. */
  clientIp?: string;
  deadlineMs: number;
  /** For a WebAssembly module: its whole environment (CGI variables and the function's env) and stdout cap. */
  cgi?: { env: Record<string, string>; stdoutCap: number };
  /** A Lambda handler gets the HTTP API payload 2.0 (the route's `"event": "v2"`); absent: the REST API event. */
  event?: 'v2';
  /** The request body follows in `chunk` frames and an `end`, as it arrives (the frame's own body is empty). */
  bodyStream?: true;
}

/**
 * To a pre-started host: become this function (`adopt` in node-host.mjs and python-host.py).
 * The function's files travel in the frame's body, one after another, as `files` lists them
 * (paths relative to the host's code folder, /tmp/.fn); `entry` is the one to load.
 */
export interface HostLoad {
  t: 'load';
  files: Array<{ path: string; bytes: number }>;
  entry: string;
  handler: string;
  key: string;
  memoryMb: number;
  env: Readonly<Record<string, string>>;
}

export const MAX_INSTANCE_FRAME_BYTES = 64 * 1024 * 1024;

export function encodeInstanceFrame(meta: HostInvoke | HostLoad | HostControl, body: Buffer = Buffer.alloc(0)): Buffer[] {
  const json = JSON.stringify(meta);
  const jsonBytes = Buffer.byteLength(json);
  const head = Buffer.allocUnsafe(8 + jsonBytes);
  head.writeUInt32BE(4 + jsonBytes + body.length, 0);
  head.writeUInt32BE(jsonBytes, 4);
  head.write(json, 8);
  return body.length > 0 ? [head, body] : [head];
}

/** Splits a byte stream from a host into messages; throws on a frame that cannot be valid. */
export class InstanceFrameDecoder {
  private readonly queue = new ChunkQueue();

  push(chunk: Buffer): Array<{ meta: HostMessage; body: Buffer }> {
    this.queue.push(chunk);
    const out: Array<{ meta: HostMessage; body: Buffer }> = [];
    for (;;) {
      const head = this.queue.peek(8);
      if (!head) break;
      const frameBytes = head.readUInt32BE(0);
      const metaBytes = head.readUInt32BE(4);
      if (frameBytes > MAX_INSTANCE_FRAME_BYTES || metaBytes > frameBytes - 4) {
        throw new Error(`instance sent a bad frame header (frame ${frameBytes} bytes, meta ${metaBytes} bytes)`);
      }
      if (this.queue.buffered < 4 + frameBytes) break;
      const whole = this.queue.take(4 + frameBytes);
      out.push({ meta: JSON.parse(whole.subarray(8, 8 + metaBytes).toString('utf8')) as HostMessage, body: whole.subarray(8 + metaBytes) });
    }
    return out;
  }
}
