// What a call is inside the worker, for every module that runs one (instance.ts, pool.ts, cgi.ts,
// wasm-runner.ts, invoke-server.ts): what it asks, how it ends, where its output goes. Types only,
// so none of those modules imports another for them.
import type { InvokeMessage, WorkerErrorCode } from '../src/protocol/messages.js';
import type { BodyStream } from '../src/protocol/body-stream.js';
import type { CallUsage } from './call-usage.js';

/** A call as the runners see it: what the gateway's Invoke frame asks (the body travels beside it). */
export type CallRequest = Pick<InvokeMessage, 'requestId' | 'method' | 'path' | 'query' | 'headers' | 'clientIp'>;

/** A streamed answer in the worker; its end carries the call's figures. */
export type AnswerStream = BodyStream<CallUsage>;

/**
 * `usage`: what the instance's cgroup used while the call ran (call-usage.ts), where it has one.
 * A streamed answer (`stream`) has an empty body: its bytes, and its usage, come through the stream.
 */
export type CallOutcome = (
  | { readonly ok: true; readonly status: number; readonly headers: string[]; readonly body: Buffer; readonly stream?: AnswerStream }
  | { readonly ok: false; readonly code: WorkerErrorCode; readonly message: string }
) & { readonly usage?: CallUsage };

/** Where what a function prints during a call goes (to the gateway, over the worker's stream). */
export type CallOutput = (stream: 'stdout' | 'stderr', text: string) => void;
