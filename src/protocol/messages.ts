// The messages that cross a process boundary: gateway ⇄ worker (stream frames, see frames.ts)
// and worker → gateway (load reports, see report.ts). Workers import src/protocol and nothing
// else from src/.

export type Runtime = 'node' | 'python' | 'wasm' | 'go';
/** `thread`: a WebAssembly module in a worker thread (piscina), wasm's default; wasm only. */
export type Mode = 'process' | 'container' | 'thread';
/** The modes that run a sandboxed process (a runner each, workers/runner.ts). */
export type SandboxMode = Exclude<Mode, 'thread'>;

/** Container mode's OCI runtime: runc, or gVisor's runsc. */
export type Isolation = 'runc' | 'gvisor';

/** A function's config after validation: CONTRACT §2, with defaults applied. */
export interface FunctionConfig {
  readonly runtime: Runtime;
  readonly mode: Mode;
  /** Exactly one of code / path is set. */
  readonly code?: string;
  readonly path?: string;
  /** Entry point; undefined means the runtime's default (fetch/handler, handle, _start). */
  readonly handler?: string;
  /** Container mode: the root file system folder to run in, instead of the host's /usr. */
  readonly image?: string;
  /** Container mode: runc (the default) or gVisor. */
  readonly isolation?: Isolation;
  /** Cores an instance may use (cgroup cpu.max / cfs quota); undefined: no quota. */
  readonly cpu?: number;
  readonly timeoutMs: number;
  readonly memoryMb: number;
  readonly maxConcurrency: number;
  /** Instances each worker keeps started, calls or not. */
  readonly minWarm: number;
  readonly env: Readonly<Record<string, string>>;
  readonly auth: 'none' | 'api-key';
  readonly rateLimit?: { readonly rps: number; readonly burst: number };
  /** Lambda-style handlers: the API Gateway REST event (v1, the default) or the HTTP API / Function URL payload (v2). */
  readonly event?: LambdaEvent;
  /** CORS answered at the gateway: preflights without a call, the headers added to answers. */
  readonly cors?: CorsConfig;
  /** How asynchronous invocations of the route are run (the gateway's business; workers ignore it). */
  readonly async?: AsyncConfig;
  /** The row's `dependencies`: whether installs may run the packages' own scripts (off unless said). */
  readonly dependencies?: { readonly scripts: boolean };
  /**
   * Not from the row: what the gateway built for it (src/build/: node_modules, python packages, a
   * Go program), set once the build is ready. Workers mount `dir` read-only (workers/function-code.ts).
   */
  readonly built?: BuiltArtifact;
}

/** A finished build in the gateway's content-addressed cache (README "Dependencies"). */
export interface BuiltArtifact {
  /** npm: node_modules from `npm ci`; pip: packages from `pip install --target`; go: the compiled runtime host. */
  readonly kind: 'npm' | 'pip' | 'go';
  /** The cache entry; what the sandbox mounts is its ARTIFACT_SUBDIR. */
  readonly dir: string;
}

/** The part of an artifact's `dir` that a sandbox gets (the rest is the build's own record). */
export const ARTIFACT_SUBDIR: Readonly<Record<BuiltArtifact['kind'], string>> = { npm: 'node_modules', pip: 'site', go: 'bin' };

/** A route's `async` field (README "Async invocations"), defaults filled in. */
export interface AsyncConfig {
  /** Invocations of the route running at once. */
  readonly concurrency: number;
  /** Further attempts after a failed one. */
  readonly retries: number;
  /** Wait before the first retry, ms; doubled for each next one. */
  readonly backoffMs: number;
  /** Seconds an invocation may stay unfinished, and its record is kept once finished. */
  readonly ttlS: number;
}

export type LambdaEvent = 'v1' | 'v2';

/** A route's `cors` field (CONTRACT §2, README "CORS"), names as in the row. */
export interface CorsConfig {
  /** Allowed origins, exact (`https://app.example`), or `*` for any. */
  readonly origins: readonly string[];
  /** Methods a preflight may ask for; default: the route's method. */
  readonly methods?: readonly string[];
  /** Request headers a preflight may ask for (lower-case); default: any it asks for is echoed back. */
  readonly headers?: readonly string[];
  /** Seconds a browser may cache a preflight's answer (Access-Control-Max-Age). */
  readonly maxAge?: number;
  /** Access-Control-Allow-Credentials: true (never with origin `*`). */
  readonly credentials?: boolean;
}

/** Where a container `image` must have each runtime's interpreter (the first that exists is used). */
export const IMAGE_INTERPRETERS: Readonly<Record<'node' | 'python', readonly string[]>> = {
  node: ['/usr/local/bin/node', '/usr/bin/node'],
  python: ['/usr/local/bin/python3', '/usr/bin/python3'],
};

/**
 * One version of one function. `version` changes whenever the row's config changes, so a
 * worker can cache instances per version and let old ones drain.
 */
export interface FunctionSpec {
  readonly key: string;
  readonly version: number;
  readonly config: FunctionConfig;
}

/** Frame kinds on the gateway ⇄ worker stream. */
export const enum FrameType {
  Invoke = 1,
  Result = 2,
  Ping = 3,
  Pong = 4,
  Warm = 5,
  Output = 6,
  /** A piece of a streamed body: the answer's (worker → gateway) or the request's (gateway → worker). */
  Chunk = 7,
  /** The end of a streamed body; for an answer, with the call's figures or the reason it broke off. */
  End = 8,
  /** The receiver of a streamed answer has passed on `bytes` more: the sender may send that much more. */
  Ack = 9,
  /** Gateway → worker: the client of a streamed answer has gone; stop producing it. */
  Cancel = 10,
}

/** Largest answer body a function may return (Lambda's synchronous limit); a streamed one has none. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

/** Why an answer body of `bytes` is refused (FUNCTION_RESPONSE_INVALID), or undefined. */
export function oversizedAnswer(bytes: number): string | undefined {
  return bytes > MAX_RESPONSE_BYTES ? `the response body of ${bytes} bytes is over the limit of ${MAX_RESPONSE_BYTES} bytes (6 MiB)` : undefined;
}

/**
 * How many bytes of a streamed answer may be on their way at once, from the function to the
 * client's socket: the sender stops reading the function's stream at this many unacknowledged
 * bytes. What one streamed answer can hold in the worker, the gateway and the sockets between.
 */
export const STREAM_WINDOW_BYTES = 256 * 1024;

/** Gateway → worker: run a function. The request body travels raw beside the envelope. */
export interface InvokeMessage {
  readonly t: FrameType.Invoke;
  readonly id: number;
  /** Function key and version; `spec` is sent only the first time a connection sees a version. */
  readonly key: string;
  readonly version: number;
  readonly spec?: FunctionConfig;
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Flat [name, value, name, value, …], names lower-case. */
  readonly headers: string[];
  /** The body follows in Chunk frames and an End, as the client sends it (the frame's own body is empty). */
  readonly bodyStream?: true;
  /** The client's address as the gateway resolved it (the peer, or behind --trusted-proxies the X-Forwarded-For client). */
  readonly clientIp?: string;
}

/** Error codes a worker can answer with; the gateway maps them to HTTP (src/errors.ts). */
export type WorkerErrorCode =
  | 'FUNCTION_ERROR'
  | 'FUNCTION_CRASHED'
  | 'FUNCTION_TIMEOUT'
  | 'FUNCTION_AT_CAPACITY'
  | 'FUNCTION_UNAVAILABLE'
  | 'FUNCTION_RESPONSE_INVALID'
  | 'WORKER_PROTOCOL_ERROR';

/** Worker → gateway: the function's answer (body raw beside the envelope), or an error. */
export interface ResultMessage {
  readonly t: FrameType.Result;
  readonly id: number;
  readonly status: number;
  /** Flat [name, value, …]. */
  readonly headers: string[];
  /** True when this call waited for a new instance to start. */
  readonly cold: boolean;
  /** Milliseconds the worker spent on the call (queue + start + function). */
  readonly fnMs: number;
  readonly error?: { readonly code: WorkerErrorCode; readonly message: string };
  /**
   * The body is streamed: Chunk frames follow, then an End (which carries cpuUs and memPeak
   * instead of this message). The gateway acknowledges each chunk once its client took it.
   */
  readonly stream?: true;
  /**
   * CPU time of the instance while the call ran, integer µs, from its cgroup; absent where the
   * sandbox has none (workers/call-usage.ts). A node instance runs many calls at once: each call
   * in flight on it meanwhile gets the same figure.
   */
  readonly cpuUs?: number;
  /** Most memory charged to the instance while the call ran, bytes (call-usage.ts says how); absent where unknown. */
  readonly memPeak?: number;
}

export interface PingMessage {
  readonly t: FrameType.Ping | FrameType.Pong;
  readonly id: number;
}

/**
 * Gateway → worker, after each sync that changed routes and on every new connection: every
 * function that wants instances kept warm (min_warm > 0). A function not in the list no
 * longer does; its instances are then reaped when idle, like any other.
 */
export interface WarmMessage {
  readonly t: FrameType.Warm;
  readonly id: 0;
  readonly specs: readonly FunctionSpec[];
}

/**
 * Worker → gateway: what a function printed during call `id` (stdout/stderr, console.*, print),
 * already capped per call by its runtime host. Sent before the call's Result.
 */
export interface OutputMessage {
  readonly t: FrameType.Output;
  readonly id: number;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

/** A piece of a streamed body (the frame's body). */
export interface ChunkMessage {
  readonly t: FrameType.Chunk;
  readonly id: number;
}

/**
 * The end of a streamed body. For an answer: `error` when it broke off (the function threw,
 * timed out or crashed mid-stream; the gateway then closes the client's connection, since the
 * status is long gone), and the call's figures as in ResultMessage.
 */
export interface EndMessage {
  readonly t: FrameType.End;
  readonly id: number;
  readonly error?: { readonly code: WorkerErrorCode; readonly message: string };
  readonly fnMs?: number;
  readonly cpuUs?: number;
  readonly memPeak?: number;
}

export interface AckMessage {
  readonly t: FrameType.Ack;
  readonly id: number;
  readonly bytes: number;
}

export interface CancelMessage {
  readonly t: FrameType.Cancel;
  readonly id: number;
}

export type StreamMessage = InvokeMessage | ResultMessage | PingMessage | WarmMessage | OutputMessage
  | ChunkMessage | EndMessage | AckMessage | CancelMessage;

/**
 * Worker → gateway over the metrics datagram socket, every report period.
 * cpu, mem, io and score are smoothed and normalised to 0–100 (see SCHEDULING.md).
 */
export interface WorkerReport {
  /** Format version; bump on incompatible change. */
  readonly v: 1;
  readonly id: string;
  readonly pid: number;
  readonly socket: string;
  readonly cpu: number;
  readonly mem: number;
  readonly io: number;
  readonly score: number;
  /** Increases by one per report from this worker process; replays and reorderings are dropped. */
  readonly seq: number;
  /** Sender's wall clock, ms since the epoch. */
  readonly time: number;
  /** Function keys with a warm instance on this worker (capped). */
  readonly warm: readonly string[];
}
