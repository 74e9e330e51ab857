// Async invocations, put together (README "Async invocations"): the store (its own SQLite file
// beside the routes database), the dispatcher, callbacks, and what the public port (the 202 and
// the status URL), the admin port (/api/v1/invocations) and /metrics need of them. main.ts
// builds one and hands its parts out.
import { createAsyncCalls, type AsyncCalls } from '../http/async-accept.js';
import { invocationsApi, type InvocationsApi } from '../http/invocations-api.js';
import type { Invocation, InvocationResult } from '../calls.js';
import { asyncMetrics, type Scraped } from '../observe/metrics.js';
import type { Log } from '../protocol/log.js';
import { InvocationStore, invocationsDbPath } from '../routes/invocation-store.js';
import type { RouteTable } from '../routes/route-table.js';
import { CallbackSender } from './callbacks.js';
import { Dispatcher } from './dispatcher.js';

export interface AsyncInvocationsOptions {
  /** The routes database: the queue is the file beside it (invocationsDbPath). */
  readonly routesDb: string;
  readonly routes: () => RouteTable;
  readonly invoke: (inv: Invocation) => Promise<InvocationResult>;
  readonly log: Log;
}

export class AsyncInvocations {
  /** For server.ts: the 202 and the status URL. */
  readonly calls: AsyncCalls;
  /** For admin.ts: /api/v1/invocations. */
  readonly api: InvocationsApi;
  private readonly dispatcher: Dispatcher;
  private readonly callbacks: CallbackSender;
  private ports: readonly number[] = [];

  private constructor(private readonly store: InvocationStore, opts: AsyncInvocationsOptions) {
    this.callbacks = new CallbackSender({
      read: (id) => store.get(id),
      record: (id, state, attempts, error) => this.dispatcher.write({ kind: 'callback', id, state, attempts, error }),
      log: opts.log,
    });
    this.dispatcher = new Dispatcher({ store, routes: opts.routes, invoke: opts.invoke, log: opts.log, onFinished: (id) => this.callbacks.send(id) });
    this.calls = createAsyncCalls({ dispatcher: this.dispatcher, read: (id) => store.get(id), ownPorts: () => this.ports });
    this.api = invocationsApi({ read: (id) => store.get(id), list: (q) => store.list(q), retry: (id) => this.dispatcher.retry(id) });
  }

  /** Opens (creating) the queue's database. Throws, naming the file, when it cannot be used. */
  static open(opts: AsyncInvocationsOptions): AsyncInvocations {
    return new AsyncInvocations(InvocationStore.open(invocationsDbPath(opts.routesDb)), opts);
  }

  get file(): string {
    return this.store.file;
  }

  /** Once the ports are bound and workers are up: recovers what a stopped gateway left and starts running the queue. */
  start(ownPorts: readonly number[]): void {
    this.ports = ownPorts;
    this.dispatcher.start();
  }

  /** Shutdown, first step: no attempt starts any more, no callback is sent (they stay pending on disk). */
  stop(): void {
    this.dispatcher.stop();
    this.callbacks.stop();
  }

  /** Shutdown, last step: writes what the attempts that finished meanwhile left, and closes the file. */
  close(): void {
    this.dispatcher.close();
  }

  /** faas_async_* for /metrics. */
  metrics(): Scraped[] {
    const { dispatcher, store, callbacks } = this;
    return asyncMetrics({ queues: () => dispatcher.queues(), counters: dispatcher.counters, deadLetters: () => store.deadLetters(), callbacks });
  }

  /** Forgets the figures of routes that are gone, once nothing of theirs waits or runs. */
  forgetRoutes(live: (key: string) => boolean): void {
    this.dispatcher.forgetRoutes(live);
  }
}
