// What a call is, for every module that handles one: the request as the public port read it
// (CallRequest), the call to run with its route (Invocation), the function's answer
// (InvocationResult), and what the access log and the metrics see of an answered request
// (Answered). Here, beside neither side, so that the fleet, the async queue and the observers do
// not import the request path (src/http/server.ts) for its types.
import type { ErrorCode } from './errors.js';
import type { GatewayStream, StreamedBody } from './protocol/body-stream.js';
import type { Route } from './routes/route-table.js';

/**
 * What a function call asks, as the public port read it: the part of a call that is the same
 * whether it runs now (src/http/server.ts's Invocation adds the route and a streamed body) or is
 * kept for later (src/routes/invocation-store.ts).
 */
export interface CallRequest {
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Flat [name, value, …], names lower-case as uWS gives them. */
  readonly headers: string[];
  readonly body: Buffer;
  /** The client's address: the peer, or behind --trusted-proxies the X-Forwarded-For client (forwarded.ts). */
  readonly clientIp: string;
}

/** A call to run now: what it asks (its body empty when streamed: bodyIn), and the route it runs. */
export interface Invocation extends CallRequest {
  readonly route: Route;
  readonly bodyIn?: StreamedBody;
}

export interface InvocationResult {
  readonly status: number;
  readonly headers: readonly string[];
  /** Empty when the answer is streamed: its bytes come through `stream`, then its figures at the end. */
  readonly body: Buffer;
  readonly stream?: GatewayStream;
  readonly workerId: string;
  readonly cold: boolean;
  readonly fnMs: number;
  /** The instance's CPU µs and peak memory bytes during the call, from its cgroup; undefined when unknown. */
  readonly cpuUs: number | undefined;
  readonly memPeak: number | undefined;
}

/** One answered request. */
export interface Answered {
  /** The route's key; undefined when no route matched. */
  readonly route: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** From the request's arrival to its answer, in the gateway. */
  readonly ms: number;
  /** The worker's time on the call; 0 when no worker answered. */
  readonly fnMs: number;
  readonly cold: boolean;
  readonly worker: string | undefined;
  /**
   * CPU time of the function's instance during the call, µs, and the most memory it was charged
   * meanwhile, bytes (workers/call-usage.ts); undefined when no worker reported them (no cgroup,
   * no call). A node instance runs many calls at once: the figures are the instance's.
   */
  readonly cpuUs: number | undefined;
  readonly memPeak: number | undefined;
  /** The error code of a gateway error answer. */
  readonly code: ErrorCode | undefined;
  readonly message: string | undefined;
  readonly requestId: string;
  /** W3C trace id: the client's (traceparent), or a new one. */
  readonly traceId: string;
}
