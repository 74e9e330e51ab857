// Types of cluster.mjs for test/integration/cluster.test.ts.
import type { QueryResult } from 'pg';
import type { Hosts } from './cluster-hosts.mjs';
import type { ClusterFeatures, GatewayHost, Haproxy, Postgres, Redis } from './cluster-services.mjs';

export const GATEWAYS: string[];
export const AGENT_PORT: number;
export interface Cluster {
  hosts: Hosts; db: Postgres; redis: Redis; lb: Haproxy; gateways: GatewayHost[]; features: ClusterFeatures; syncMs: number;
  sql(text: string, params?: unknown[]): Promise<QueryResult>;
  reconnect(): Promise<void>;
  put(key: string, config: Record<string, unknown>): Promise<void>;
  teardown(): Promise<void>;
}
export function startCluster(opts?: { syncMs?: number; log?: (line: string) => void }): Promise<Cluster>;
export function servedEverywhere(gateways: GatewayHost[], routePath: string, served: (a: { status: number; text: string }) => boolean, timeoutMs?: number): Promise<void>;
