// HAProxy's agent-check (issue 17: several gateways behind HAProxy). On --agent-port the gateway
// answers every TCP connection with one line and closes it. HAProxy 2.6 reads up to the first
// CR or LF a series of words, in any order, separated by spaces, tabs or commas (its
// configuration manual, "agent-check"; src/tcpcheck.c, tcpcheck_agent_expect_reply):
//
//   up | down | stopped | fail   the operational state; "down" marks the server DOWN at once, and
//                                only an agent's "up" brings it back (the regular check cannot)
//   ready | drain | maint        the administrative state; "ready" cancels a DRAIN or MAINT, the
//                                agent's own or one set on the stats socket
//   N%                           the weight, as a percentage of the server's configured `weight`
//                                (0% is a drain in all but name: no new connections)
//   #text                        the rest of the line: why, shown on the stats page with the state
//
// Words an agent leaves out leave that part of HAProxy's state as it was, and HAProxy remembers
// what an agent said across the agent's restarts. So every line here says the whole state — a
// health word, an admin word and, where it means anything, a weight — and none depends on what an
// earlier line (perhaps from an earlier gateway process on this port) left behind:
//
//   up ready N%        serving; N (1–100) is the fleet's headroom, agentPercent() below
//   up drain           shutting down: no new connections, the calls in flight finish. "up" rather
//                      than "down" because the gateway still answers those calls; it also undoes a
//                      "down" said before, so the stats page shows DRAIN — finishing, not failed —
//                      until the public port's own check marks the stopping gateway DOWN. No
//                      weight: a drained server takes no new connections whatever its weight, and
//                      the next "up ready N%" sets one.
//   down ready #why    no worker can take a call: HAProxy stops sending here at once instead of
//                      letting every call get 503 NO_WORKER_AVAILABLE; "ready" undoes a drain
//                      said before, so the next "up" line alone brings the server back.
import net from 'node:net';
import type { Log } from '../protocol/log.js';

/** What the weight is made of: one worker the gateway can send a call to now. */
export interface AgentWorker {
  /** The worker's smoothed load score, 0–100, from its last report. */
  readonly score: number;
  /** Calls the gateway has sent to the worker and not yet seen answered. */
  readonly inFlight: number;
}

/** What the gateway knows when HAProxy asks. */
export interface AgentInput {
  /** The gateway is shutting down (SIGTERM or SIGINT). */
  readonly stopping: boolean;
  /** Workers connected and reporting: those a call can be sent to. */
  readonly available: readonly AgentWorker[];
  /** Workers the gateway has (spawned or announced), available or not: the node's full capacity. */
  readonly known: number;
}

export type AgentState =
  | { readonly state: 'up'; readonly percent: number }
  | { readonly state: 'drain' }
  | { readonly state: 'down'; readonly reason: string };

/**
 * The node's free capacity as a percentage of its configured weight (SCHEDULING.md, "Several
 * gateways: the agent's weight"):
 *
 *   headroom(w) = (1 − score(w)/100) / (1 + inFlight(w))
 *   N = round(100 · Σ over available workers headroom(w) / known), clamped to 1..100
 *
 * An idle worker counts 1; a busy one the part of it its score leaves free, shared with the calls
 * it already runs (a new call gets 1/(k+1) of a worker running k: processor sharing). In-flight
 * counts matter as much as scores: they are fresh where a score is up to a report old, and two
 * gateways on one machine read the same host-wide /proc figures (a pinned worker's score is how
 * busy its CPU is, whoever keeps it busy), so only their calls in flight tell them apart. Workers
 * that are down count 0 of `known`: a node with half its fleet restarting offers half its weight.
 * Never 0 while up: HAProxy takes 0% for a drain.
 */
export function agentPercent(available: readonly AgentWorker[], known: number): number {
  let free = 0;
  for (const w of available) free += (1 - clamp(w.score, 0, 100) / 100) / (1 + Math.max(0, w.inFlight));
  const percent = Math.round((100 * free) / Math.max(known, available.length, 1));
  return clamp(percent, 1, 100);
}

/** The state to report: stopping wins, then no worker, then the weight. */
export function agentState(input: AgentInput): AgentState {
  if (input.stopping) return { state: 'drain' };
  if (input.available.length === 0) {
    return { state: 'down', reason: `no worker is connected and reporting (0 of ${input.known})` };
  }
  return { state: 'up', percent: agentPercent(input.available, input.known) };
}

/** The line HAProxy reads: the whole state, ending in \n. */
export function agentLine(s: AgentState): string {
  switch (s.state) {
    case 'up':
      return `up ready ${s.percent}%\n`;
    case 'drain':
      return 'up drain\n';
    case 'down':
      // The reason runs to the end of the line: no CR or LF inside it.
      return `down ready #${s.reason.replace(/[\r\n]+/g, ' ')}\n`;
  }
}

export interface AgentCheckOptions {
  readonly host: string;
  readonly port: number;
  /** Read at every connection: the line is always current. */
  readonly state: () => AgentInput;
  readonly log: Log;
}

export interface AgentCheckServer {
  readonly port: number;
  /** Stops listening (connections open now get their line). */
  close(): void;
}

/** A peer that neither reads nor closes is let go after this long. */
const SOCKET_TIMEOUT_MS = 5_000;

/** Listens on host:port; rejects with an error naming --agent-port when it cannot. */
export function startAgentCheck(opts: AgentCheckOptions): Promise<AgentCheckServer> {
  const server = net.createServer((socket) => {
    // HAProxy resets the connection once it has read the line: not an error worth a log line.
    socket.on('error', () => {});
    socket.setTimeout(SOCKET_TIMEOUT_MS, () => socket.destroy());
    socket.end(agentLine(agentState(opts.state())));
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`--agent-port ${opts.port}: cannot listen on ${opts.host}:${opts.port} (${err.code ?? err.message}); ` +
        'choose a free port, or leave --agent-port out to run without an agent-check'));
    });
    server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => {
      const address = server.address() as net.AddressInfo;
      server.removeAllListeners('error');
      server.on('error', (err) => opts.log({ level: 'error', msg: 'agent-check failed', error: err.message }));
      opts.log({ msg: 'agent-check listening', host: opts.host, port: address.port });
      resolve({ port: address.port, close: () => void server.close() });
    });
  });
}

function clamp(n: number, min: number, max: number): number {
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : min;
}
