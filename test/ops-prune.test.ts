import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { pruneHistory } from '../src/bus/sql/prune-history.js';
import { housekeeping } from '../src/commands/daemon-options.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { createTestDb, type TestDb } from './helpers/db.js';

let t: TestDb;
beforeAll(async () => { t = await createTestDb(); });
afterAll(async () => { await t.destroy(); });

const q = async <T = Record<string, unknown>>(text: string, params: unknown[] = []) => (await t.pool.query(text, params)).rows as T[];

async function seed(): Promise<{ repo: number; prs: number[] }> {
  await q(`TRUNCATE repositories, stage_runs CASCADE`);
  const [{ id: repo }] = await q<{ id: number }>(`INSERT INTO repositories (owner, name) VALUES ('o', 'r') RETURNING id`);
  const prs = (await q<{ id: number }>(`INSERT INTO pull_requests (repository_id, number) SELECT $1, n FROM generate_series(1, 3) n RETURNING id`, [repo])).map((r) => r.id);
  // PR 1: three old attempts at classify_prs (the last kept), one old and one new at resolve_packages.
  // PR 2: a single attempt, 200 days old: its last, so kept. PR 3: two recent attempts: kept.
  const runs: Array<[number, string, number, number]> = [
    [prs[0], 'classify_prs', 1, 300], [prs[0], 'classify_prs', 2, 250], [prs[0], 'classify_prs', 3, 200],
    [prs[0], 'resolve_packages', 1, 150], [prs[0], 'resolve_packages', 2, 1],
    [prs[1], 'classify_prs', 1, 200],
    [prs[2], 'classify_prs', 1, 2], [prs[2], 'classify_prs', 2, 1],
  ];
  for (const [pr, stage, attempt, days] of runs) {
    await q(`INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, finished_at, outcome)
      VALUES (nextval('run_ids'), $1, 'pull_requests', $2, $3, 'w', now() - make_interval(days => $4), now() - make_interval(days => $4), 'error')`,
      [stage, pr, attempt, days]);
  }
  // Rejects: two old ones and a recent one of the repository; build logs: two old attempts of PR 1, one old of PR 2.
  await q(`INSERT INTO scrape_rejects (repository_id, number, reason, created_at) VALUES
    ($1, 10, 'no merge sha', now() - interval '200 days'), ($1, 11, 'no merge sha', now() - interval '150 days'), ($1, 12, 'bad json', now() - interval '1 day')`, [repo]);
  await q(`INSERT INTO candidate_containers (pull_request_id, strategy, build_log, created_at) VALUES
    ($1, 'default', 'old log 1', now() - interval '60 days'), ($1, 'llm', 'old log 2', now() - interval '59 days'),
    ($2, 'default', 'only log', now() - interval '60 days')`, [prs[0], prs[1]]);
  // A second repository whose only reject is old: kept (its newest).
  const [{ id: other }] = await q<{ id: number }>(`INSERT INTO repositories (owner, name) VALUES ('o', 'other') RETURNING id`);
  await q(`INSERT INTO scrape_rejects (repository_id, number, reason, created_at) VALUES ($1, 1, 'x', now() - interval '300 days')`, [other]);
  return { repo, prs };
}

describe('housekeeping: pruning history by age', () => {
  it('removes old attempts, rejects and build logs but keeps every row\'s last attempt', async () => {
    const { prs } = await seed();
    const result = await pruneHistory(t.db, { stageRunsDays: 90, scrapeRejectsDays: 90, buildLogsDays: 30, batch: 1 });
    expect(result).toEqual({ stageRuns: 3, scrapeRejects: 2, buildLogs: 1 });
    const runs = await q<{ pr: number; stage: string; attempt: number }>(
      `SELECT subject_id AS pr, stage, attempt FROM stage_runs ORDER BY subject_id, stage, attempt`);
    expect(runs).toEqual([
      { pr: prs[0], stage: 'classify_prs', attempt: 3 }, // the last attempt, although 200 days old
      { pr: prs[0], stage: 'resolve_packages', attempt: 2 },
      { pr: prs[1], stage: 'classify_prs', attempt: 1 },
      { pr: prs[2], stage: 'classify_prs', attempt: 1 },
      { pr: prs[2], stage: 'classify_prs', attempt: 2 },
    ]);
    expect((await q<{ number: number }>(`SELECT number FROM scrape_rejects ORDER BY number`)).map((r) => r.number)).toEqual([1, 12]);
    expect(await q(`SELECT pull_request_id AS pr, strategy, build_log FROM candidate_containers ORDER BY id`)).toEqual([
      { pr: prs[0], strategy: 'default', build_log: null }, // the attempt row stays, its log goes
      { pr: prs[0], strategy: 'llm', build_log: 'old log 2' },
      { pr: prs[1], strategy: 'default', build_log: 'only log' },
    ]);
    expect(await pruneHistory(t.db, { stageRunsDays: 90, scrapeRejectsDays: 90, buildLogsDays: 30 })).toEqual({ stageRuns: 0, scrapeRejects: 0, buildLogs: 0 });
  });

  it('0 days keeps everything; the daemon\'s housekeeping job prunes with the PERFMINE_PRUNE_* settings', async () => {
    await seed();
    expect(await pruneHistory(t.db, { stageRunsDays: 0, scrapeRejectsDays: 0, buildLogsDays: 0 })).toEqual({ stageRuns: 0, scrapeRejects: 0, buildLogs: 0 });
    const config = loadConfig({ PERFMINE_PRUNE_STAGE_RUNS_DAYS: '100', PERFMINE_PRUNE_SCRAPE_REJECTS_DAYS: '0', PERFMINE_PRUNE_BUILD_LOGS_DAYS: '0' });
    const job = housekeeping(config, silentLogger, t.db).find((j) => j.name === 'prune-history')!;
    expect(job.everyMs).toBe(60 * 60_000);
    await job.run();
    // Older than 100 days and not the last: classify_prs attempts 1 and 2 and resolve_packages attempt 1 of PR 1.
    expect((await sql<{ n: number }>`SELECT count(*)::int AS n FROM stage_runs`.execute(t.db)).rows[0].n).toBe(5);
    expect((await sql<{ n: number }>`SELECT count(*)::int AS n FROM scrape_rejects`.execute(t.db)).rows[0].n).toBe(4);
  });
});
