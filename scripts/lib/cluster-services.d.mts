// Types of cluster-services.mjs for test/integration/cluster.test.ts.
import type { ClientConfig } from 'pg';
import type { HostProcess, Hosts } from './cluster-hosts.mjs';

export const SERVICE_PROGRAMS: string[];
export interface ClusterFeatures {
  clusterDb: boolean;
  agentPort: boolean;
  clusterRedis: boolean;
  reason: { clusterDb: string; agentPort: string; clusterRedis: string };
}
export function clusterFeatures(): ClusterFeatures;
export function tail(file: string, lines?: number): string;
export function tcpAsk(host: string, port: number, line: string, opts?: { timeoutMs?: number; done?: (text: string) => boolean }): Promise<string>;
export function haproxyConfig(template: string, opts: { lbAddr: string; gateways: Array<{ name: string; addr: string; port: number }>; agentPort?: number; statsSocket: string }): string;
export function checkTiming(config: string): { interMs: number; fall: number };
export function readFrom(file: string, offset: number): string;

export interface Postgres {
  addr: string; port: number; url: string; passfile: string; password: string; log: string;
  proc: HostProcess;
  client: ClientConfig;
  start(): Promise<void>;
  stop(): Promise<unknown>;
}
export interface Redis { addr: string; port: number; url: string; proc: HostProcess }
export interface HaproxyServer { svname: string; status: string; weight: string; [column: string]: string }
export interface Haproxy {
  addr: string; port: number; url: string; proc: HostProcess; config: string;
  interMs: number; fall: number;
  stat(): Promise<HaproxyServer[]>;
  servers(): Promise<Record<string, HaproxyServer>>;
}
export interface GatewayHost {
  name: string; addr: string; port: number; adminPort: number; agentPort?: number; dir: string; args: string[];
  url: string; admin: string; log: string; proc: HostProcess;
  adminGet(path: string): Promise<Response>;
  agent(): Promise<string>;
  start(): Promise<void>;
}
export function startPostgres(hosts: Hosts, host: string, opts?: { port?: number }): Promise<Postgres>;
export function startRedis(hosts: Hosts, host: string, opts?: { port?: number }): Promise<Redis>;
export function startHaproxy(hosts: Hosts, host: string, opts: { gateways: GatewayHost[]; agentPort?: number }): Promise<Haproxy>;
export function startGateway(hosts: Hosts, host: string, opts?: {
  syncMs?: number; env?: Record<string, string>; port?: number; adminPort?: number;
  cluster?: { db?: Postgres; redis?: Redis; agentPort?: number; trustedProxies?: string };
}): Promise<GatewayHost>;
