// Types of cluster-measure.mjs for test/integration/cluster.test.ts.
import type { Hosts } from './cluster-hosts.mjs';
import type { GatewayHost, Haproxy } from './cluster-services.mjs';

export interface Answer { id?: string; status: number; text: string; sentAt: number; doneAt: number; error?: string }
export type Timed = { sentMs: number; servedMs: number; timedOut?: undefined } | { timedOut: true; last?: { status: number; text: string; error?: string }; sentMs?: undefined; servedMs?: undefined };
export const FUNCTIONS: {
  text(body: string): Record<string, unknown>;
  slow(ms: number): Record<string, unknown>;
  spin(ms: number): Record<string, unknown>;
};
export function call(url: string, opts?: { headers?: Record<string, string>; timeoutMs?: number }): Promise<Answer>;
export function timeUntilServed(url: string, served: (a: Answer) => boolean, opts: { since: number; timeoutMs?: number; pollMs?: number }): Promise<Timed>;
export function propagation(gateways: GatewayHost[], path: string, change: () => Promise<unknown>, served: (a: Answer) => boolean, opts?: { timeoutMs?: number; pollMs?: number }): Promise<Array<Timed & { node: string }>>;
export function answeredBy(gateways: GatewayHost[], tag: string, status?: (status: number) => boolean): Record<string, number>;
export interface Load { results: Answer[]; done: Promise<Answer[]>; stop(): Promise<Answer[]> }
export function load(url: string, opts: { tag: string; concurrency?: number; calls?: number; timeoutMs?: number }): Load;
export function share(lb: Haproxy, gateways: GatewayHost[], path: string, opts: { tag: string; calls?: number; concurrency?: number }): Promise<{ byNode: Record<string, number>; ok: number; failed: number; statuses: Record<string, number> }>;
export function tally(results: Answer[]): Record<string, number>;
export function failover(hosts: Hosts, lb: Haproxy, victim: GatewayHost, path: string, opts: { tag: string; survivors?: GatewayHost[]; concurrency?: number; warmMs?: number; afterMs?: number; timeoutMs?: number }): Promise<{
  downMs: number | undefined; lastStatus: string | undefined; calls: number; failed: number; failedStatuses: Record<string, number>;
  inFlightAtKill: number; failedAfterDown: number | undefined; failedElsewhere: string[]; checkMs: number;
}>;
export function rateLimited(lb: Haproxy, gateways: GatewayHost[], path: string, opts: { tag: string; sendRps?: number; seconds?: number }): Promise<{
  allowed: number; refused: number; other: Record<string, number>; elapsedS: number; byNode: Record<string, number>;
}>;
export function hog(gw: GatewayHost, path: string, opts?: { concurrency?: number }): Load;
export function median(xs: number[]): number;
