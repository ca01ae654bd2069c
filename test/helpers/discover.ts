import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { sql } from 'kysely';
import { Daemon } from '../../src/bus/daemon.js';
import type { HandlerContext, StageDefinition } from '../../src/bus/stage.js';
import { checkpoint, type LeaseKey } from '../../src/bus/sql/checkpoint.js';
import { loadConfig } from '../../src/config.js';
import type { Db } from '../../src/db/connect.js';
import { silentLogger } from '../../src/log.js';
import { buildStageDeps, builtinStages } from '../../src/stages/index.js';
import type { GitHubStandin, StandinPR } from '../../src/standins/github/server.js';
import { createTestDb, type TestDb } from './db.js';

const DISCOVER = ['discover_repos', 'scrape_repos', 'scrape_commits'];

export interface DiscoverFixture {
  t: TestDb;
  /** The test's GitHub stand-in, closed after the test. */
  standin: GitHubStandin;
  /** The test's daemon, stopped after the test. */
  daemon: Daemon | undefined;
}

/**
 * The hooks of a discover test file: one throwaway database for the file,
 * emptied before each test; after each, the test's daemon stopped and its
 * stand-in closed.
 */
export function discoverFixture(): DiscoverFixture {
  const f = { daemon: undefined } as DiscoverFixture;
  beforeAll(async () => { f.t = await createTestDb(); });
  afterAll(async () => { await f.t.destroy(); });
  beforeEach(async () => {
    await sql`TRUNCATE repositories, discovery_runs, leases, stage_runs, rate_limit_pauses, workers RESTART IDENTITY CASCADE`.execute(f.t.db);
  });
  afterEach(async () => {
    await f.daemon?.stop(2000);
    f.daemon = undefined;
    await f.standin?.close();
    (f as Partial<DiscoverFixture>).standin = undefined;
  });
  return f;
}

/** The discover stages configured for a GitHub stand-in at `githubUrl`, with short backoffs for tests. */
export function discoverStages(githubUrl: string, env: Record<string, string> = {}): StageDefinition[] {
  const config = loadConfig({
    PERFMINE_GITHUB_API_URL: githubUrl, GITHUB_TOKEN: 'test-token', PERFMINE_SCHEDULE: 'false',
    PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS: '0', PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS: '0',
    PERFMINE_GITHUB_MAX_INLINE_WAIT_S: '5', ...env,
  });
  return builtinStages(buildStageDeps(config, silentLogger))
    .filter((s) => DISCOVER.includes(s.name))
    .map((s) => ({ ...s, backoff: { baseMs: 100, maxMs: 300 } }));
}

/** A daemon running the discover stages against the stand-in. */
export async function startDiscoverDaemon(t: TestDb, githubUrl: string, env: Record<string, string> = {}): Promise<Daemon> {
  const daemon = new Daemon({
    db: t.db, connectionString: t.url, stages: discoverStages(githubUrl, env), pollIntervalMs: 200, sweepIntervalMs: 500,
  });
  await daemon.start();
  return daemon;
}

/**
 * The context the reactor gives a handler, for calling one directly. Its
 * checkpoint is the reactor's, fenced on `lease`: with a lease no row holds,
 * every checkpoint is refused, as for a worker whose lease was taken over.
 */
export function handlerContext(db: Db, lease: LeaseKey, signal = new AbortController().signal): HandlerContext {
  return {
    runId: lease.runId, attempt: 1, workerId: lease.workerId, signal, deadline: new Date(Date.now() + 3_600_000),
    log: silentLogger, db, addCost: () => undefined,
    checkpoint: (fn) => checkpoint(db, lease, fn),
  };
}

export async function prCount(db: Db): Promise<number> {
  return (await sql<{ n: number }>`SELECT count(*)::int AS n FROM pull_requests`.execute(db)).rows[0].n;
}

/** Asks the daemon for another scrape of every repository (as the rescrape cron does) and waits for it. */
export async function rescrape(db: Db, daemon: Daemon): Promise<void> {
  await sql`UPDATE repositories SET last_scraped_at = NULL`.execute(db);
  await daemon.whenIdle();
}

/** `n` small PRs of a repository, one an hour from `start` (a Date, epoch ms or ISO time). */
export function hourlyPRs(repository: string, n: number, start: string | number | Date, firstNumber = 1): StandinPR[] {
  const t0 = new Date(start).getTime();
  return Array.from({ length: n }, (_, i) => ({
    repository, number: firstNumber + i, title: `Speed up thing ${firstNumber + i}`,
    merged_at: new Date(t0 + i * 3_600_000).toISOString(),
    merge_commit_sha: `m${firstNumber + i}`, base_sha: `b${firstNumber + i}`, changed_files: 1,
    files: [{ path: `pkg/mod${i}.py`, additions: 3, deletions: 1 }],
  }));
}
