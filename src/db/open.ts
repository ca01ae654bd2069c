import pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { connect, type Connection } from './connect.js';
import { backendPidsOf, embeddedPsqlCommand, startEmbeddedPostgres, type EmbeddedServer } from './embedded.js';
import { migrate } from './migrate.js';

export interface OpenDatabase extends Connection {
  /** True when the database is on the embedded server (close() stops it if no one else uses it). */
  embedded: boolean;
  /** A psql command line for people to inspect progress, with no password in it. */
  psql: string;
}

/**
 * The database named by DATABASE_URL, or else the embedded one under
 * PERFMINE_DATA_DIR: reused if another perfmine process runs it, started
 * otherwise. close() stops the embedded server only when no other client is
 * connected to it.
 */
export async function openDatabase(config: Config, log: Logger, opts: { migrate?: boolean; waitMs?: number } = {}): Promise<OpenDatabase> {
  let url = config.DATABASE_URL;
  let server: EmbeddedServer | undefined;
  if (url && opts.waitMs) await waitForServer(url, opts.waitMs, log);
  if (!url) {
    server = await startEmbeddedPostgres(config.PERFMINE_DATA_DIR, config.PERFMINE_EMBEDDED_PG_PORT);
    if (server.startedHere) log.info({ dataDir: server.dataDir, port: server.port }, 'no DATABASE_URL: started embedded PostgreSQL');
    url = await server.urlFor('perfmine');
  }
  const conn = connect(url, {
    max: config.PERFMINE_POOL_SIZE, statementTimeoutMs: config.PERFMINE_STATEMENT_TIMEOUT_MS,
    applicationName: `perfmine:${process.pid}`,
    onError: (err) => log.error({ err: err.message }, 'idle database client error'),
  });
  const ownBackends = backendPidsOf(conn.pool);
  if (opts.migrate) await migrate(conn.pool, log);
  return {
    ...conn,
    embedded: !!server,
    psql: server ? embeddedPsqlCommand(server, 'perfmine') : psqlCommand(url),
    async close() {
      await conn.close();
      if (server && (await server.stopIfUnused({ ownBackends }))) log.info({ dataDir: server.dataDir }, 'stopped embedded PostgreSQL (no other client was connected)');
    },
  };
}

/** Whether a PostgreSQL server accepts a connection and a query at `url`. */
export async function serverAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A psql command line for a database URL, with its password taken out (psql then asks, or reads ~/.pgpass). */
export function psqlCommand(url: string): string {
  return `psql '${withoutPassword(url).replace(/'/g, `'\\''`)}'`;
}

/** The URL with no password in it (and none in its query string either). */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.delete(key);
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@\s]+):[^@\s]*@/, '$1@');
  }
}

/**
 * A daemon started while its database restarts (a supervisor restarting
 * everything at once) waits for it rather than exiting: it tries again with
 * backoff for up to `waitMs`.
 */
export async function waitForServer(url: string, waitMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; !(await serverAnswers(url, 2000)); attempt++) {
    if (Date.now() >= deadline) throw new Error(`PostgreSQL did not answer within ${Math.round(waitMs / 1000)} s`);
    if (attempt === 0) log.warn({ waitS: Math.round(waitMs / 1000) }, 'PostgreSQL does not answer yet; waiting for it');
    await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
  }
}
