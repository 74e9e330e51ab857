// The worker's side of the direct data path (src/protocol/direct.ts): it lends the gateway the
// warm node instances it runs in process sandboxes — the socket to each, with as many slots as
// are free — and keeps owning them. Calls the gateway sends through the worker still claim slots
// as before; when they end, their slots are lent too. An instance that is retired or stopped asks
// for its lease back and stops once the gateway's calls on it have ended.
import type { Socket } from 'node:net';
import { parseToWorker, type ToGateway } from '../src/protocol/direct.js';
import type { Log } from '../src/protocol/log.js';
import type { FunctionSpec } from '../src/protocol/messages.js';
import type { Instance } from './instance.js';

export type SendToGateway = (msg: ToGateway, socket?: Socket) => void;

/** How long reclaim() waits for the gateway's answer before it counts the instance as in use. */
const RECLAIM_WAIT_MS = 500;

export class DirectLeases {
  /** The gateway said it takes leases (`direct`). */
  private enabled = false;
  /** Instances lent or waiting to be, by name. */
  private readonly known = new Map<string, { readonly instance: Instance; readonly spec: FunctionSpec; lent: boolean }>();

  /** reclaim() calls waiting for the gateway's answer, by instance name: true when it gave the lease back. */
  private readonly reclaiming = new Map<string, (released: boolean) => void>();

  constructor(private readonly send: SendToGateway, private readonly log: Log) {}

  /**
   * Asks the gateway for an instance's lease back, now, if it runs no call on it (the memory
   * budget needs room): true once it is back (the instance is then the caller's to stop).
   */
  reclaim(instance: Instance): Promise<boolean> {
    if (!this.known.get(instance.name)?.lent || instance.leased === 0 || this.reclaiming.has(instance.name)) return Promise.resolve(false);
    return new Promise((resolve) => {
      const answer = (released: boolean): void => {
        clearTimeout(timer);
        this.reclaiming.delete(instance.name);
        resolve(released);
      };
      const timer = setTimeout(answer, RECLAIM_WAIT_MS, false);
      this.reclaiming.set(instance.name, answer);
      this.send({ t: 'reclaim', instance: instance.name });
    });
  }

  /** A message from the gateway's IPC channel. */
  receive(raw: unknown): void {
    const msg = parseToWorker(raw);
    if (typeof msg === 'string') {
      this.log({ level: 'warn', msg: 'dropped a message from the gateway', error: msg });
      return;
    }
    switch (msg.t) {
      case 'direct':
        this.enabled = true;
        for (const { instance } of this.known.values()) this.offer(instance);
        return;
      case 'release': {
        // Its socket is the gateway's, or closed: the instance is not lent again, and serves through the worker.
        const entry = this.known.get(msg.instance);
        this.known.delete(msg.instance);
        if (entry) entry.instance.onRevoke = undefined;
        entry?.instance.released();
        this.reclaiming.get(msg.instance)?.(true);
        return;
      }
      case 'busy': this.reclaiming.get(msg.instance)?.(false); return;
      case 'timeout': this.known.get(msg.instance)?.instance.timedOut(); return;
      case 'used': {
        const now = Date.now();
        for (const name of msg.instances) {
          const entry = this.known.get(name);
          if (entry) entry.instance.lastUsedMs = now;
        }
      }
    }
  }

  /**
   * An instance that may be lent: a node host with a direct channel. Lent now if it is ready and
   * has free slots, else at a later offer() (once ready, once calls through the worker end).
   */
  track(instance: Instance, spec: FunctionSpec): void {
    const socket = instance.direct;
    if (!socket || spec.config.runtime !== 'node' || spec.config.mode !== 'process') return;
    socket.on('error', () => {}); // a sandbox that dies before the gateway took its end
    this.known.set(instance.name, { instance, spec, lent: false });
    // Told now, before any call: the host reads its worker's frames in order, the gateway's apart.
    if (instance.accounted) instance.accountDirectCalls();
    instance.onRevoke = () => this.send({ t: 'revoke', instance: instance.name });
    void instance.gone.then(() => {
      const entry = this.known.get(instance.name);
      this.known.delete(instance.name);
      if (entry?.lent) this.send({ t: 'gone', instance: instance.name, message: instance.exitMessage });
    });
  }

  /** Lends what is free on the instance: its socket and slots the first time, more slots after. */
  offer(instance: Instance): void {
    const entry = this.known.get(instance.name);
    if (!entry || !this.enabled || !instance.isReady || instance.retired) return;
    const free = instance.capacity - instance.claims - instance.leased;
    if (free <= 0) return;
    instance.leased += free;
    if (entry.lent) {
      this.send({ t: 'slots', instance: instance.name, slots: instance.leased });
      return;
    }
    entry.lent = true;
    const { key, version } = entry.spec;
    this.send({ t: 'lease', instance: instance.name, key, version, slots: instance.leased }, instance.direct);
  }
}
