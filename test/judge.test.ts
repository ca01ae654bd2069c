import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps, builtinStages } from '../src/stages/index.js';
import { addRepo } from '../src/commands/add-repo.js';
import { serviceChecks } from '../src/commands/daemon-options.js';
import { listenOnLoopback, closeNow } from '../src/standins/loopback.js';
import { CATEGORIES, categorizeAnswer, classifyAnswer } from '../src/domain/judge.js';
import { extractJson } from '../src/adapters/llm/client.js';
import { GitHubStandin, type StandinPR } from '../src/standins/github/server.js';
import { LlmStandin } from '../src/standins/llm/server.js';
import { PROMPTS_DIR } from '../src/stages/prompts.js';
import { createTestDb, type TestDb } from './helpers/db.js';

const API_KEY = 'sk-test-secret-key-123456';
let t: TestDb;
let github: GitHubStandin;
let llm: LlmStandin;
let daemon: Daemon | undefined;

beforeAll(async () => { t = await createTestDb(); });
afterAll(async () => { await t.destroy(); });
beforeEach(async () => {
  await sql`TRUNCATE repositories, discovery_runs, leases, stage_runs, rate_limit_pauses, workers, prompts RESTART IDENTITY CASCADE`.execute(t.db);
  github = await GitHubStandin.start();
  llm = await LlmStandin.start({ apiKey: API_KEY });
  github.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
});
afterEach(async () => {
  await daemon?.stop(2000);
  daemon = undefined;
  await github.close();
  await llm.close();
});

async function startDaemon(env: Record<string, string> = {}, withChecks = false): Promise<Daemon> {
  const config = loadConfig({
    PERFMINE_GITHUB_API_URL: github.url, GITHUB_TOKEN: 'gh-test', PERFMINE_SCHEDULE: 'false',
    PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS: '0', PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS: '0', PERFMINE_DIFF_MIN_INTERVAL_MS: '0',
    OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: API_KEY, PERFMINE_LLM_MODEL: 'standin-small', ...env,
  });
  const deps = buildStageDeps(config, silentLogger);
  const stages = builtinStages(deps).map((s) => ({ ...s, backoff: { baseMs: 100, maxMs: 400 } }));
  daemon = new Daemon({
    db: t.db, connectionString: t.url, stages, pollIntervalMs: 200,
    breaker: { baseSeconds: 0.5, maxSeconds: 2 }, serviceChecks: withChecks ? serviceChecks(deps) : undefined,
  });
  await daemon.start();
  return daemon;
}

function pr(number: number, title: string, files = [{ path: 'pkg/core.py', additions: 12, deletions: 4 }]): StandinPR {
  return {
    repository: 'acme/lib', number, title, merged_at: new Date(Date.parse('2024-03-01T00:00:00Z') + number * 60_000).toISOString(),
    merge_commit_sha: `m${number}`, base_sha: `b${number}`, changed_files: files.length, files,
  };
}

const verdicts = async () => (await sql<any>`
  SELECT number, is_performance_commit AS perf, classification, difficulty, judge_reason, patch IS NOT NULL AS has_patch,
         patch_tokens, judge_prompt_hash FROM pull_requests ORDER BY number`.execute(t.db)).rows;

describe('judge: stage 3', () => {
  it('one INSERT of a repository row -> classified PRs through stages 1-3', async () => {
    github.loadJsonl('data/xarray-prs.jsonl', { repository: 'acme/lib', limit: 150 });
    await startDaemon();
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    const rows = (await sql<any>`SELECT * FROM pull_requests`.execute(t.db)).rows;
    expect(rows.length).toBe(150);
    const candidates = rows.filter((r) => r.is_performance_commit_symbolic);
    expect(candidates.length).toBeGreaterThan(30);
    expect(candidates.every((r) => r.is_performance_commit !== null)).toBe(true);
    expect(rows.filter((r) => !r.is_performance_commit_symbolic).every((r) => r.is_performance_commit === null)).toBe(true);
    const perf = candidates.filter((r) => r.is_performance_commit);
    expect(perf.length).toBeGreaterThan(0);
    for (const r of perf) {
      expect([...CATEGORIES, 'uncategorized']).toContain(r.classification);
      expect(['easy', 'medium', 'hard']).toContain(r.difficulty);
      expect(r.patch).toMatch(/^diff --git/);
    }
    for (const r of candidates.filter((x) => !x.is_performance_commit)) expect(r.classification).toBeNull();
    const hash = (await sql<any>`SELECT hash FROM prompts WHERE name = 'judge'`.execute(t.db)).rows[0].hash;
    expect(new Set(candidates.map((r) => r.judge_prompt_hash))).toEqual(new Set([hash]));
    // The cost view: per repository and stage.
    const cost = (await sql<any>`SELECT * FROM costs WHERE repo = 'acme/lib' AND stage = 'classify_prs'`.execute(t.db)).rows[0];
    // Those the size gate decided never reached the LLM; the rest took one call, two when YES.
    const gated = candidates.filter((r) => /^(size gate|diff unavailable)/.test(r.judge_reason));
    expect(gated.every((r) => r.judge_model === null && r.is_performance_commit === false)).toBe(true);
    expect(Number(cost.llm_calls)).toBe(candidates.length - gated.length + perf.length);
    expect(Number(cost.api_calls)).toBe(candidates.length);
    expect(github.stats.byRoute['rest:pulls/diff']).toBe(candidates.length);
    expect(Number(cost.llm_tokens)).toBe(llm.stats.promptTokens + llm.stats.completionTokens);
    // The key never reaches the database.
    const everything = JSON.stringify((await sql<any>`SELECT * FROM stage_runs`.execute(t.db)).rows);
    expect(everything).not.toContain(API_KEY);
  }, 60_000);

  it('token accounting adds up per PR', async () => {
    github.addPRs([pr(1, 'Speed up groupby with a cache'), pr(2, 'Use lazy loading to avoid work')]);
    await startDaemon();
    llm.inject({ kind: 'malformed', times: 1 });
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    const runs = (await sql<any>`SELECT subject_id, cost FROM stage_runs WHERE stage = 'classify_prs' AND outcome = 'succeeded'`.execute(t.db)).rows;
    expect(runs.length).toBe(2);
    let total = 0;
    for (const r of runs) {
      const calls = r.cost.llm as Array<{ prompt_tokens: number; completion_tokens: number; model: string; latency_ms: number }>;
      expect(calls.length).toBe(r.cost.llm_calls);
      expect(calls.reduce((n, c) => n + c.prompt_tokens, 0)).toBe(r.cost.llm_prompt_tokens);
      expect(calls.reduce((n, c) => n + c.completion_tokens, 0)).toBe(r.cost.llm_completion_tokens);
      expect(calls.every((c) => c.model === 'standin-small' && c.latency_ms >= 0)).toBe(true);
      total += r.cost.llm_prompt_tokens + r.cost.llm_completion_tokens;
    }
    expect(runs.map((r) => r.cost.llm_calls).sort()).toEqual([2, 3]); // the malformed answer was asked again
    expect(total).toBe(llm.stats.promptTokens + llm.stats.completionTokens);
  });

  it('malformed answers past the try limit leave the verdict NULL; the row is retried, not guessed', async () => {
    github.addPRs([pr(1, 'Speed up interp')]);
    await startDaemon({ PERFMINE_LLM_MAX_TRIES: '2' });
    llm.inject({ kind: 'malformed', times: 4 }); // two whole attempts
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    const runs = (await sql<any>`SELECT outcome, error FROM stage_runs WHERE stage = 'classify_prs' ORDER BY id`.execute(t.db)).rows;
    expect(runs.map((r) => r.outcome)).toEqual(['error', 'error', 'succeeded']);
    expect(runs[0].error).toMatch(/classify: no valid answer after 2 tries/);
    expect((await verdicts())[0]).toMatchObject({ perf: true });
  });

  it('invalid labels are asked again; an invalid category or difficulty falls back', async () => {
    github.addPRs([pr(1, 'Faster rolling window')]);
    await startDaemon();
    llm.inject({ kind: 'invalid-label', times: 2 });
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    expect((await verdicts())[0]).toMatchObject({ perf: true });
    const cost = (await sql<any>`SELECT cost FROM stage_runs WHERE stage = 'classify_prs'`.execute(t.db)).rows[0].cost;
    expect(cost.llm_calls).toBe(4); // 2 invalid + 1 valid classify, 1 categorize
    expect(categorizeAnswer.parse({ category: 'make_it_go_brrr', difficulty: 'extreme' })).toMatchObject({ category: 'uncategorized', difficulty: 'medium' });
    expect(classifyAnswer.safeParse({ answer: 'PERHAPS' }).success).toBe(false);
    expect(classifyAnswer.parse({ answer: 'unsure' }).answer).toBe('YES');
    expect(extractJson('Sure! ```json\n{"answer": "NO", "reasoning": "a {brace} in text"}\n```')).toEqual({ answer: 'NO', reasoning: 'a {brace} in text' });
  });

  it('a 429 storm pauses the llm group; nothing is lost and nothing invented', async () => {
    github.addPRs([pr(1, 'Speed up a'), pr(2, 'Speed up b'), pr(3, 'Speed up c'), pr(4, 'Fix docs')]);
    await startDaemon();
    llm.inject({ kind: 'rate-limit-429', times: 6, retryAfterSeconds: 1 });
    await addRepo(t.db, 'acme/lib');
    const t0 = Date.now();
    let paused = false;
    while (!paused && Date.now() - t0 < 5000) {
      paused = (await sql<any>`SELECT 1 FROM rate_limit_pauses WHERE group_name = 'llm'`.execute(t.db)).rows.length > 0;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(paused).toBe(true);
    await daemon!.whenIdle();
    const v = await verdicts();
    expect(v.filter((r) => r.number <= 3).every((r) => r.perf === true)).toBe(true);
    expect((await sql<any>`SELECT * FROM failures`.execute(t.db)).rows).toEqual([]);
    const limited = (await sql<any>`SELECT count(*)::int AS n FROM stage_runs WHERE outcome = 'rate_limited'`.execute(t.db)).rows[0].n;
    expect(limited).toBeGreaterThan(0);
  }, 30_000);

  it('a quota error pauses the llm group for the configured time', async () => {
    github.addPRs([pr(1, 'Speed up a')]);
    await startDaemon({ PERFMINE_LLM_QUOTA_PAUSE_S: '600' });
    llm.inject({ kind: 'quota-429', times: 1 });
    await addRepo(t.db, 'acme/lib');
    let pause: any;
    const t0 = Date.now();
    while (!pause && Date.now() - t0 < 5000) {
      pause = (await sql<any>`SELECT until, reason FROM rate_limit_pauses WHERE group_name = 'llm'`.execute(t.db)).rows[0];
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(pause.reason).toBe('LLM quota exhausted');
    expect(pause.until.getTime() - Date.now()).toBeGreaterThan(500_000);
    expect((await verdicts())[0].perf).toBeNull();
  });

  it('slow answers past the timeout are retried; a slow answer within it is fine', async () => {
    github.addPRs([pr(1, 'Speed up a'), pr(2, 'Fix docs typo')]);
    await startDaemon({ PERFMINE_LLM_TIMEOUT_MS: '400', PERFMINE_CLASSIFY_CONCURRENCY: '1' });
    llm.inject({ kind: 'slow', times: 2, delayMs: 1500 });
    llm.inject({ kind: 'slow', times: 1, delayMs: 150 });
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    const v = await verdicts();
    expect(v[0].perf).toBe(true);
    const errors = (await sql<any>`SELECT error FROM stage_runs WHERE outcome = 'error'`.execute(t.db)).rows;
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0].error).toMatch(/timed out/i);
  }, 30_000);

  it('diffs GitHub will not give, and patches outside the size gate, are decided "not perf" with the reason', async () => {
    const huge = Array.from({ length: 60 }, (_, i) => ({ path: `pkg/m${i}.py`, additions: 400, deletions: 0 }));
    github.addPRs([pr(1, 'Speed up a'), pr(2, 'Speed up b', huge), pr(3, 'Speed up c')]);
    github.setDiffStatus('acme/lib', 1, 451);
    github.setDiffStatus('acme/lib', 3, 406);
    await startDaemon();
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    const v = await verdicts();
    expect(v[0]).toMatchObject({ perf: false, judge_reason: 'diff unavailable (HTTP 451)', has_patch: false });
    expect(v[1]).toMatchObject({ perf: false, has_patch: false });
    expect(v[1].judge_reason).toMatch(/^size gate: patch too large \(\d+ tokens\)$/);
    expect(v[1].patch_tokens).toBeGreaterThan(16000);
    expect(v[2]).toMatchObject({ perf: false, judge_reason: 'diff unavailable (HTTP 406)' });
    expect(llm.stats.completions).toBe(0);
  });

  it('re-judges with one SQL UPDATE after a prompt change', async () => {
    github.addPRs([pr(1, 'Speed up a'), pr(2, 'Faster b'), pr(3, 'Fix docs typo')]);
    await startDaemon();
    await addRepo(t.db, 'acme/lib');
    await daemon!.whenIdle();
    const first = await verdicts();
    await daemon!.stop();

    const dir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-prompts-'));
    try {
      cpSync(PROMPTS_DIR, dir, { recursive: true });
      const file = path.join(dir, 'classify.md');
      writeFileSync(file, readFileSync(file, 'utf8').replace('If you are unsure, answer YES.', 'If you are unsure, answer YES. Be thorough.'));
      await startDaemon({ PERFMINE_PROMPTS_DIR: dir });
      const newHash = (await sql<any>`SELECT hash FROM prompts WHERE name = 'judge'`.execute(t.db)).rows[0].hash;
      expect(newHash).not.toBe(first[0].judge_prompt_hash);
      const { numAffectedRows } = await sql`UPDATE pull_requests SET is_performance_commit = NULL
        WHERE judge_prompt_hash IS DISTINCT FROM (SELECT hash FROM prompts WHERE name = 'judge')
          AND is_performance_commit IS NOT NULL`.execute(t.db);
      expect(Number(numAffectedRows)).toBe(first.filter((r) => r.perf !== null).length);
      await daemon!.whenIdle();
      const again = await verdicts();
      expect(again.filter((r) => r.perf !== null).every((r) => r.judge_prompt_hash === newHash)).toBe(true);
      expect(again.map((r) => r.perf)).toEqual(first.map((r) => r.perf));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with no LLM endpoint every PR waits, none fails: the llm breaker holds the stage, with the reason in the funnel', async () => {
    const { server, port } = await listenOnLoopback();
    await closeNow(server); // a port nothing listens on: connections are refused
    github.addPRs([pr(1, 'Speed up a'), pr(2, 'Faster b'), pr(3, 'Use a cache for c')]);
    await startDaemon({ OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` }, true);
    await addRepo(t.db, 'acme/lib');
    await new Promise((r) => setTimeout(r, 4000)); // several breaker openings and probes
    // Between an opening and the next probe the pause may have just ended: look while it holds.
    let f: any;
    for (let i = 0; i < 100; i++) {
      f = (await sql<any>`SELECT pending, running, retrying, failed, pause_reason FROM funnel WHERE stage = 'classify_prs'`.execute(t.db)).rows[0];
      if (f.pause_reason) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(f.failed).toBe(0);
    expect(Number(f.pending) + Number(f.retrying) + Number(f.running)).toBe(3);
    expect(f.pause_reason).toMatch(/^llm: service down \(.*unreachable/);
    const judged = (await sql<any>`SELECT count(*)::int AS n FROM pull_requests WHERE is_performance_commit IS NOT NULL`.execute(t.db)).rows[0].n;
    expect(judged).toBe(0);
    const failedRuns = (await sql<any>`SELECT count(*)::int AS n FROM stage_runs WHERE outcome IN ('failed', 'error') AND stage = 'classify_prs'`.execute(t.db)).rows[0].n;
    expect(failedRuns).toBe(0);
  });

  it('a rejected API key opens the llm breaker at start; fixing it lets the backlog through', async () => {
    github.addPRs([pr(1, 'Speed up a'), pr(2, 'Faster b')]);
    await startDaemon({ OPENAI_API_KEY: 'sk-wrong-key-000000' }, true);
    await addRepo(t.db, 'acme/lib');
    await new Promise((r) => setTimeout(r, 1500));
    const f = (await sql<any>`SELECT failed, pause_reason FROM funnel WHERE stage = 'classify_prs'`.execute(t.db)).rows[0];
    expect(f.failed).toBe(0);
    expect(f.pause_reason).toMatch(/refused the API key/);
    expect(f.pause_reason).not.toContain('sk-wrong-key');
    await daemon!.stop();
    await startDaemon({}, true);
    await sql`DELETE FROM rate_limit_pauses`.execute(t.db);
    await daemon!.whenIdle();
    expect((await verdicts()).every((r) => r.perf !== null)).toBe(true);
  });
});
