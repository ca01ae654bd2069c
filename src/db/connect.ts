import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { CleanTextPlugin } from './clean-plugin.js';
import type { Database } from './schema.js';

// bigint (int8) and numeric stay strings by default; counts and ids fit in a
// JS number for this project's sizes, so parse int8 as number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Db = Kysely<Database>;

export interface Connection {
  db: Db;
  pool: pg.Pool;
  connectionString: string;
  close(): Promise<void>;
}

export interface ConnectOptions {
  max?: number;
  onError?: (err: Error) => void;
  applicationName?: string;
  /** Server-side limit per statement (0 = none). */
  statementTimeoutMs?: number;
  /** How long to wait for a connection (a new one, or a free one from the pool). */
  connectionTimeoutMs?: number;
}

/**
 * A pool plus a Kysely instance over it. A server that stops answering costs
 * a bounded wait (connection and statement timeouts, TCP keepalive to notice
 * a dead peer), and errors on idle clients never crash the process: the pool
 * drops the client and opens a new one when next needed.
 */
export function connect(connectionString: string, maxOrOptions: number | ConnectOptions = 8, onError?: (err: Error) => void): Connection {
  const o: ConnectOptions = typeof maxOrOptions === 'number' ? { max: maxOrOptions, onError } : maxOrOptions;
  const statementTimeout = o.statementTimeoutMs ?? 300_000;
  const pool = new pg.Pool({
    connectionString,
    max: o.max ?? 8,
    application_name: o.applicationName ?? 'perfmine',
    connectionTimeoutMillis: o.connectionTimeoutMs ?? 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    statement_timeout: statementTimeout || undefined,
    // The client gives up a little after the server would have, also when the server is gone silently.
    query_timeout: statementTimeout ? statementTimeout + 5_000 : undefined,
    idle_in_transaction_session_timeout: 600_000,
  });
  let closed = false;
  // After close, a server going away (an embedded one stopping) is expected, not an error.
  pool.on('error', (err) => { if (!closed) o.onError?.(err); });
  // pg-pool listens for errors only on idle clients: a connection that drops while
  // checked out (inside a transaction, between two queries) would emit an
  // unhandled 'error' and end the process. The query in flight still gets its error.
  pool.on('connect', (client) => client.on('error', (err) => { if (!closed) o.onError?.(err); }));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new CleanTextPlugin()] });
  return {
    db,
    pool,
    connectionString,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
