import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { connect, type Connection } from '../src/db/connect.js';
import { createThrowawayDatabase } from './helpers/pg-provider.js';

const run = promisify(execFile);
let throwaway: Awaited<ReturnType<typeof createThrowawayDatabase>>;
let c: Connection;

const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
  env: { ...process.env, DATABASE_URL: throwaway.url, PERFMINE_LOG_LEVEL: 'warn' },
});
/** The CLI's failure: exit code and stderr. */
const fails = (args: string[]) => cli(args).then(
  (ok) => { throw new Error(`expected a failure, got: ${ok.stdout}`); },
  (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
);
const q = async (text: string, params: unknown[] = []) => (await c.pool.query(text, params)).rows;

let repoId: number;
const prIds: number[] = [];

beforeAll(async () => {
  throwaway = await createThrowawayDatabase(inject('adminUrl'));
  await cli(['migrate']); // the schema and the built-in stages
  c = connect(throwaway.url, 2);
  [{ id: repoId }] = await q(`INSERT INTO repositories (owner, name, metadata_fetched_at, scrape_cursor, last_scraped_at)
    VALUES ('pydata', 'xarray', now(), '2024-06-01', now()) RETURNING id`);
  await q(`INSERT INTO repositories (owner, name) VALUES ('numpy', 'numpy')`);
  await q(`INSERT INTO prompts (name, hash, template) VALUES ('judge', 'new-hash', 'x')`);
  // Four PRs: two judged with the old prompts (one merged in 2023), one with the current, one not judged yet.
  for (const [n, hash, merged, verdict] of [[1, 'old-hash', '2023-05-01', true], [2, 'old-hash', '2024-03-01', false], [3, 'new-hash', '2024-04-01', true], [4, null, '2024-05-01', null]] as const) {
    const [{ id }] = await q(`INSERT INTO pull_requests (repository_id, number, title, merged_at, is_performance_commit_symbolic, is_performance_commit, judge_prompt_hash, body)
      VALUES ($1, $2, $3, $4, true, $5, $6, $7) RETURNING id`, [repoId, n, `PR ${n}`, merged, verdict, hash, 'long body '.repeat(100)]);
    prIds.push(id);
  }
}, 240_000);
afterAll(async () => {
  await c?.close();
  await throwaway.drop();
});

// Each call starts a Node process with the TypeScript loader: slow on a busy machine.
describe('the operators\' CLI verbs', { timeout: 240_000 }, () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
    expect((await cli(['--version'])).stdout.trim()).toBe(version);
  });

  it('every new verb has --help', async () => {
    for (const cmd of ['pause', 'resume', 'concurrency', 'inspect', 'rescrape', 'rejudge', 'retry']) {
      expect((await cli([cmd, '--help'])).stdout).toMatch(new RegExp(`Usage: perfmine ${cmd} `));
    }
  });

  it('pause and resume a stage; an unknown stage is an error (exit 2) that lists the valid names', async () => {
    expect((await cli(['pause', 'classify_prs', '--note', 'prompt review'])).stdout).toMatch(/paused classify_prs/);
    expect(await q(`SELECT paused, note FROM stage_settings WHERE stage = 'classify_prs'`)).toEqual([{ paused: true, note: 'prompt review' }]);
    expect((await cli(['pause', 'classify_prs'])).stdout).toMatch(/already paused/);
    const status = JSON.parse((await cli(['status', '--json'])).stdout);
    expect(status.stages.find((s: { stage: string }) => s.stage === 'classify_prs').paused).toBe(true);
    expect((await cli(['resume', 'classify_prs'])).stdout).toMatch(/resumed classify_prs/);
    expect(await q(`SELECT paused FROM stage_settings WHERE stage = 'classify_prs'`)).toEqual([{ paused: false }]);

    const bad = await fails(['pause', 'clasify_prs']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown stage: clasify_prs; valid stages: .*classify_prs/);
    expect(await q(`SELECT count(*)::int AS n FROM stage_settings WHERE stage = 'clasify_prs'`)).toEqual([{ n: 0 }]);
  });

  it('concurrency sets and clears a stage\'s override; bad numbers and stages exit 2', async () => {
    expect((await cli(['concurrency', 'resolve_packages', '3'])).stdout).toMatch(/concurrency 3/);
    expect(await q(`SELECT concurrency FROM stage_settings WHERE stage = 'resolve_packages'`)).toEqual([{ concurrency: 3 }]);
    await cli(['concurrency', 'resolve_packages', 'default']);
    expect(await q(`SELECT concurrency FROM stage_settings WHERE stage = 'resolve_packages'`)).toEqual([{ concurrency: null }]);
    expect((await fails(['concurrency', 'resolve_packages', '-1'])).code).toBe(2);
    expect((await fails(['concurrency', 'nope', '2'])).code).toBe(2);
  });

  it('retry re-queues failed rows, all or by --id or --error-like', async () => {
    await q(`INSERT INTO leases (stage, subject_id, subject_table, run_id, lease_seconds, attempts, max_attempts, failed_at, last_error)
      SELECT 'render_problems', id, 'pull_requests', nextval('run_ids'), 30, 3, 3, now(),
             CASE number WHEN 1 THEN 'LLM timeout after 120 s' WHEN 2 THEN 'no linked issue (100%_done)' ELSE 'other' END
      FROM pull_requests WHERE number IN (1, 2, 3)`);
    expect((await cli(['retry', 'render_problems', '--error-like', 'TIMEOUT'])).stdout).toMatch(/re-queued 1 failed row/);
    expect((await cli(['retry', 'render_problems', '--error-like', '%_'])).stdout).toMatch(/re-queued 1 failed row/); // taken literally
    expect((await cli(['retry', 'render_problems', '--id', String(prIds[2])])).stdout).toMatch(/re-queued 1 failed row/);
    expect((await cli(['retry', 'render_problems'])).stdout).toMatch(/re-queued 0 failed row/);
    expect(await q(`SELECT count(*)::int AS n FROM leases WHERE failed_at IS NOT NULL`)).toEqual([{ n: 0 }]);
    expect((await fails(['retry', 'render-problems'])).code).toBe(2);
    await q(`DELETE FROM leases`);
  });

  it('rescrape resets the cursor and re-requests stage 2, keeping the stored PRs', async () => {
    await q(`INSERT INTO leases (stage, subject_id, subject_table, run_id, lease_seconds, attempts, max_attempts, failed_at, last_error)
      VALUES ('scrape_commits', $1, 'repositories', nextval('run_ids'), 30, 3, 3, now(), 'boom')`, [repoId]);
    expect((await cli(['rescrape', 'PyData/XArray'])).stdout).toMatch(/pydata\/xarray: scrape cursor reset/);
    expect(await q(`SELECT scrape_cursor, last_scraped_at FROM repositories WHERE id = $1`, [repoId])).toEqual([{ scrape_cursor: null, last_scraped_at: null }]);
    expect(await q(`SELECT count(*)::int AS n FROM pull_requests`)).toEqual([{ n: 4 }]);
    expect(await q(`SELECT failed_at FROM leases WHERE stage = 'scrape_commits'`)).toEqual([{ failed_at: null }]); // a fresh budget
    const status = JSON.parse((await cli(['status', '--json'])).stdout);
    expect(status.stages.find((s: { stage: string }) => s.stage === 'scrape_commits')).toMatchObject({ failed: 0 });
    const missing = await fails(['rescrape', 'nobody/nothing']);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringMatching(/no repository nobody\/nothing/) });
    expect((await fails(['rescrape', 'not a slug'])).code).toBe(2);
    await q(`DELETE FROM leases`);
  });

  it('rejudge re-requests the judge for the PRs every filter matches', async () => {
    const verdicts = async () => (await q(`SELECT number, is_performance_commit AS v FROM pull_requests ORDER BY number`)).map((r) => r.v);
    expect((await cli(['rejudge', '--prompt-changed', '--since', '2024-01-01'])).stdout).toMatch(/for 2 pull request/); // 2, and 4 (never judged)
    expect(await verdicts()).toEqual([true, null, true, null]);
    expect((await cli(['rejudge', '--prompt-changed', '--repo', 'pydata/xarray'])).stdout).toMatch(/for 3 pull request/); // 1, 2 and 4 (never judged)
    expect(await verdicts()).toEqual([null, null, true, null]);
    expect((await cli(['rejudge', '--repo', 'numpy/numpy'])).stdout).toMatch(/for 0 pull request/);
    expect((await fails(['rejudge', '--since', 'yesterday'])).code).not.toBe(0);
  });

  it('inspect shows a PR\'s columns, leases, attempts and side rows, as text and JSON', async () => {
    const pr = prIds[2];
    await q(`INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, finished_at, outcome, error, cost) VALUES
      (nextval('run_ids'), 'classify_prs', 'pull_requests', $1, 1, 'w1', now() - interval '10 s', now() - interval '9 s', 'error', 'LLM said no', NULL),
      (nextval('run_ids'), 'classify_prs', 'pull_requests', $1, 2, 'w1', now() - interval '5 s', now() - interval '4 s', 'succeeded', NULL, '{"llm_calls": 1}')`, [pr]);
    await q(`INSERT INTO leases (stage, subject_id, subject_table, run_id, worker_id, claimed_at, expires_at, lease_seconds, attempts, max_attempts)
      VALUES ('resolve_packages', $1, 'pull_requests', nextval('run_ids'), 'w2', now(), now() + interval '1 min', 60, 1, 3)`, [pr]);
    await q(`INSERT INTO candidate_containers (pull_request_id, strategy, succeeded, reason, build_log) VALUES ($1, 'default', false, 'pip failed', $2)`,
      [pr, `${'x'.repeat(5000)}ERROR: could not build wheels`]);
    const text = (await cli(['inspect', 'pydata/xarray#3'])).stdout;
    expect(text).toMatch(/^pydata\/xarray#3 \(pull_requests.id = \d+\)/);
    expect(text).toMatch(/judge_prompt_hash\s+new-hash/);
    expect(text).toMatch(/body\s+\(1000 chars\)/);
    expect(text).toMatch(/resolve_packages: held by w2/);
    expect(text).toMatch(/classify_prs #1 error .*LLM said no/);
    expect(text).toMatch(/classify_prs #2 succeeded/);
    expect(text).toMatch(/candidate_containers \(1\):[\s\S]*could not build wheels/);
    const json = JSON.parse((await cli(['inspect', 'pydata/xarray#3', '--json'])).stdout);
    expect(json).toMatchObject({ repository: 'pydata/xarray', number: 3, pull_request: { id: pr, number: 3 } });
    expect(json.stage_runs.map((r: { outcome: string }) => r.outcome)).toEqual(['error', 'succeeded']);
    expect(json.side.candidate_containers[0]).toMatchObject({ build_log_chars: 5029, reason: 'pip failed' });
    expect((await fails(['inspect', 'pydata/xarray#99'])).stderr).toMatch(/no pull request #99 of pydata\/xarray/);
    expect((await fails(['inspect', 'pydata/xarray'])).code).toBe(2);
  });

  it('status shows throughput, an ETA, the oldest running attempt and open breakers', async () => {
    // classify_prs: PRs 1, 2 and 4 pending (rejudged above); four successes in the last hour, one two hours ago.
    await q(`INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, finished_at, outcome)
      SELECT nextval('run_ids'), 'classify_prs', 'pull_requests', $1, 1, 'w1', now() - make_interval(mins => m), now() - make_interval(mins => m), 'succeeded'
      FROM unnest(ARRAY[5, 10, 20, 30, 120]) m`, [prIds[0]]);
    await q(`INSERT INTO rate_limit_pauses (group_name, until, reason, kind, trips) VALUES ('llm', now() + interval '5 min', 'connection refused', 'breaker', 2)`);
    const s = JSON.parse((await cli(['status', '--json'])).stdout);
    const classify = s.stages.find((x: { stage: string }) => x.stage === 'classify_prs');
    expect(classify).toMatchObject({ pending: 3, throughput_per_hour: 5, eta_s: 2160 }); // 4 + the one in the inspect test
    expect(s.oldest_running).toMatchObject({ stage: 'resolve_packages', subject_table: 'pull_requests', subject_id: prIds[2], worker_id: 'w2' });
    expect(s.breakers).toEqual([expect.objectContaining({ group_name: 'llm', reason: 'connection refused', trips: 2 })]);
    const text = (await cli(['status'])).stdout;
    expect(text).toMatch(/classify_prs\s+3\s+0\s+0\s+0\s+\d+\s+5\s+36m/);
    expect(text).toMatch(/oldest running attempt: resolve_packages on pull_requests.id = \d+/);
    expect(text).toMatch(/breaker open: llm \(service down\)/);
  });
});
