/**
 * A small, realistic funnel written straight into the tables, as the stages
 * leave it: 40 PRs scraped, most stopped by the symbolic gate, a few by the
 * judge, one at each later gate with a reason, two published. Plus the bus's
 * stage_runs (with costs) over three days, build attempts of every strategy,
 * benchmark runs. One reason is hostile HTML, one published title too.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connect.js';

export const HOSTILE_REASON = '</script><img src=x onerror=document.body.remove()>';
export const HOSTILE_TITLE = `<script>document.title='pwned'</script> Speed up rolling sums`;

/** What the fixture holds, for assertions that do not re-derive it. */
export const EXPECTED = {
  scraped: 40, symbolic: 15, judged: 9, installable: 8, rendered: 6, built: 5, faster: 3, published: 2,
  symbolicRejected: 25, judgeRejected: 4, judgePending: 1, judgeFailed: 1,
  speedups: [{ max: 4.5, lower: 3.9 }, { max: 1.3, lower: 1.12 }],
};

const sha = () => randomBytes(20).toString('hex');
const day = (d: number, h = 0) => new Date(Date.UTC(2025, 2, 10 + d, h)).toISOString();

interface Pr {
  symbolic: boolean;
  symbolicReason?: Record<string, unknown>;
  judge?: boolean | null;
  judgeReason?: string;
  failed?: string[];
  install?: { ok: boolean; reason?: string; year: number };
  render?: { ok: boolean; reason?: string };
  build?: { ok: boolean; reason?: string; attempts: Array<{ strategy: string; ok: boolean; ms: number; reason?: string }> };
  bench?: { decision: string; reason: string; max?: number; lower?: number; seconds: number };
  publish?: { ok: boolean; reason?: string };
  title?: string;
}

function plan(): Pr[] {
  const prs: Pr[] = [];
  const noWords = { verdict: false, rule: 'loose', positive: [], negative: [], nonCoreOnly: false, sizeLimit: null };
  for (let i = 0; i < 15; i++) prs.push({ symbolic: false, symbolicReason: noWords });
  for (let i = 0; i < 6; i++) prs.push({ symbolic: false, symbolicReason: { ...noWords, positive: ['fast'], nonCoreOnly: true } });
  for (let i = 0; i < 4; i++) prs.push({ symbolic: false, symbolicReason: { ...noWords, positive: ['perf'], sizeLimit: 'files' } });
  prs.push({ symbolic: true, judge: null });
  prs.push({ symbolic: true, judge: null, failed: ['classify_prs'] });
  prs.push({ symbolic: true, judge: false, judgeReason: 'The change only renames variables; no performance effect.' });
  prs.push({ symbolic: true, judge: false, judgeReason: 'Adds a feature.' });
  prs.push({ symbolic: true, judge: false, judgeReason: 'Documentation.' });
  prs.push({ symbolic: true, judge: false, judgeReason: 'size gate: too many tokens (91234 tokens)' });
  const yes = { symbolic: true, judge: true, judgeReason: 'Replaces a quadratic loop.' };
  prs.push({ ...yes, install: { ok: false, reason: 'pip could not resolve: No matching distribution found for numpy==1.2.0', year: 2021 } });
  prs.push({ ...yes, install: { ok: true, year: 2022 }, render: { ok: false, reason: 'empty PR body: nothing to make a problem statement from' } });
  prs.push({ ...yes, install: { ok: true, year: 2022 }, render: { ok: false, reason: HOSTILE_REASON } });
  prs.push({
    ...yes, install: { ok: true, year: 2022 }, render: { ok: true },
    build: { ok: false, reason: 'no attempt gave a verified environment (2 attempts)\n1. default: build_failed (gcc: error)\n2. llm: verification_failed (import failed)',
      attempts: [{ strategy: 'default', ok: false, ms: 95_000, reason: 'gcc: error' }, { strategy: 'llm', ok: false, ms: 140_000, reason: 'import failed' }] },
  });
  const built = (strategy: string, year: number) => ({
    ...yes, install: { ok: true, year }, render: { ok: true },
    build: { ok: true, attempts: strategy === 'llm'
      ? [{ strategy: 'default', ok: false, ms: 80_000, reason: 'build failed' }, { strategy: 'llm', ok: true, ms: 120_000 }]
      : [{ strategy, ok: true, ms: strategy === 'cache' ? 2_000 : 60_000 }] },
  });
  prs.push({ ...built('default', 2023), bench: { decision: 'no change', reason: 'no benchmark faster after Holm over K=3 (smallest adjusted p 0.41)', seconds: 300 } });
  prs.push({ ...built('similar', 2023), bench: { decision: 'tests failed', reason: 'tests/test_core.py::test_window passed on base, failed on head', seconds: 120 } });
  prs.push({ ...built('llm', 2024), bench: { decision: 'faster', reason: 'faster: 1 of 4 benchmarks', max: 1.04, lower: 1.01, seconds: 420 },
    publish: { ok: false, reason: 'not published: lower-bound speedup 1.01x of run 3 is below PERFMINE_MIN_SPEEDUP (1.05x)' } });
  prs.push({ ...built('default', 2024), bench: { decision: 'faster', reason: 'faster: 2 of 3 benchmarks', max: 4.5, lower: 3.9, seconds: 380 },
    publish: { ok: true }, title: HOSTILE_TITLE });
  prs.push({ ...built('cache', 2024), bench: { decision: 'faster', reason: 'faster: 1 of 2 benchmarks', max: 1.3, lower: 1.12, seconds: 250 },
    publish: { ok: true } });
  return prs;
}

async function stageRun(db: Db, stage: string, subjectTable: string, subjectId: number, at: string, seconds: number, cost: Record<string, number> | null, outcome = 'succeeded') {
  await sql`INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, finished_at, outcome, cost)
    VALUES (nextval('run_ids'), ${stage}, ${subjectTable}, ${subjectId}, 1, 'w-test', ${at}::timestamptz - make_interval(secs => ${seconds}), ${at}, ${outcome},
            ${cost ? JSON.stringify(cost) : null}::jsonb)`.execute(db);
}

/** Writes the funnel; returns the repository id. */
export async function insertReportFunnel(db: Db): Promise<number> {
  const stages = ['scrape_repos', 'scrape_commits', 'classify_prs', 'resolve_packages', 'render_problems', 'synthesize_images', 'benchmark', 'publish'];
  for (const [i, name] of stages.entries()) {
    await sql`INSERT INTO stages (name, ordinal, subject_table, pending_sql, done_sql, since_sql)
      VALUES (${name}, ${[1, 2, 3, 4, 5, 6, 7, 8][i]}, 'pull_requests', 'false', 'false', 's.created_at')`.execute(db);
  }
  const repoId = (await sql<{ id: number }>`
    INSERT INTO repositories (owner, name, metadata_fetched_at, last_scraped_at) VALUES ('acme', 'fastlib', now(), now()) RETURNING id`.execute(db)).rows[0].id;
  await stageRun(db, 'scrape_repos', 'repositories', repoId, day(0, 1), 2, { api_calls: 3 });
  await stageRun(db, 'scrape_commits', 'repositories', repoId, day(0, 2), 40, { api_calls: 12 });

  for (const [i, p] of plan().entries()) {
    const number = 100 + i;
    const merged = day(-400 + i * 10);
    const id = (await sql<{ id: number }>`
      INSERT INTO pull_requests (repository_id, number, title, merged_at, merge_commit_sha, base_sha, scraped_at,
        is_performance_commit_symbolic, symbolic_reason, failed_stages)
      VALUES (${repoId}, ${number}, ${p.title ?? `Change ${number}`}, ${merged}, ${sha()}, ${sha()}, ${day(0, 2)},
        ${p.symbolic}, ${JSON.stringify(p.symbolicReason ?? { verdict: true })}::jsonb, ${p.failed ?? []}::text[])
      RETURNING id`.execute(db)).rows[0].id;
    if (p.failed) await stageRun(db, 'classify_prs', 'pull_requests', id, day(0, 5), 3, { api_calls: 1 }, 'failed');
    if (p.judge === undefined || p.judge === null) continue;
    await sql`UPDATE pull_requests SET is_performance_commit = ${p.judge}, judge_reason = ${p.judgeReason ?? null}, judged_at = ${day(0, 6)} WHERE id = ${id}`.execute(db);
    await stageRun(db, 'classify_prs', 'pull_requests', id, day(0, 6 + (i % 6)), 4, { api_calls: 1, llm_calls: 2, llm_prompt_tokens: 3000, llm_completion_tokens: 200 });
    if (!p.install) continue;
    const pkg = (await sql<{ id: number }>`
      INSERT INTO packages (repository_id, merge_commit_sha, python_version, can_install, install_reason, committed_at)
      VALUES (${repoId}, ${sha()}, '3.11', ${p.install.ok}, ${p.install.reason ?? null}, ${new Date(Date.UTC(p.install.year, 5, 1)).toISOString()})
      RETURNING id`.execute(db)).rows[0].id;
    await sql`UPDATE pull_requests SET package_id = ${pkg}, can_install = ${p.install.ok}, env_resolved_at = ${day(1, 1)} WHERE id = ${id}`.execute(db);
    await stageRun(db, 'resolve_packages', 'pull_requests', id, day(1, 1 + (i % 4)), 30, null);
    if (!p.render) continue;
    await sql`UPDATE pull_requests SET rendered_problem = ${p.render.ok ? `Make change ${number} faster.` : null}, render_reason = ${p.render.reason ?? null},
      problem_rendered_at = ${day(1, 6)} WHERE id = ${id}`.execute(db);
    await stageRun(db, 'render_problems', 'pull_requests', id, day(1, 6 + (i % 3)), 5, { api_calls: 3, llm_calls: 1, llm_prompt_tokens: 2500, llm_completion_tokens: 600 });
    if (!p.build) continue;
    for (const [n, a] of p.build.attempts.entries()) {
      await sql`INSERT INTO candidate_containers (pull_request_id, repository_id, commit_sha, attempt_no, strategy, outcome, succeeded, reason, duration_ms, created_at)
        VALUES (${id}, ${repoId}, ${sha()}, ${n + 1}, ${a.strategy}, ${a.ok ? 'verified' : 'build_failed'}, ${a.ok}, ${a.reason ?? null}, ${a.ms}, ${day(2, 1)})`.execute(db);
    }
    await sql`UPDATE pull_requests SET container_name = ${p.build.ok ? `local:/envs/pr${number}` : null}, build_reason = ${p.build.reason ?? null},
      env_built_at = ${day(2, 2)} WHERE id = ${id}`.execute(db);
    await stageRun(db, 'synthesize_images', 'pull_requests', id, day(2, 2 + (i % 3)), p.build.attempts.reduce((s, a) => s + a.ms / 1000, 0), null);
    if (!p.bench) continue;
    const runId = (await sql<{ id: number }>`
      INSERT INTO benchmark_runs (pull_request_id, container_name, succeeded, reason, max_speedup, max_speedup_lower_bound, tests_ok, decision, started_at, finished_at)
      VALUES (${id}, ${`local:/envs/pr${number}`}, ${p.bench.decision !== 'tests failed'}, ${p.bench.reason}, ${p.bench.max ?? null}, ${p.bench.lower ?? null},
        ${p.bench.decision !== 'tests failed'}, ${p.bench.decision}, ${day(2, 10)}::timestamptz - make_interval(secs => ${p.bench.seconds}), ${day(2, 10)})
      RETURNING id`.execute(db)).rows[0].id;
    await sql`UPDATE pull_requests SET benchmark_decision = ${p.bench.decision}, benchmark_reason = ${p.bench.reason}, benchmark_run_id = ${runId},
      max_speedup = ${p.bench.max ?? null}, max_speedup_lower_bound = ${p.bench.lower ?? null}, benchmarked_at = ${day(2, 10)} WHERE id = ${id}`.execute(db);
    await stageRun(db, 'benchmark', 'pull_requests', id, day(2, 10 + (i % 3)), p.bench.seconds, null);
    if (!p.publish) continue;
    await sql`UPDATE pull_requests SET publish_decided_at = ${day(2, 20)}, publish_reason = ${p.publish.reason ?? `published acme__fastlib-${number}`},
      published_at = ${p.publish.ok ? day(2, 20) : null} WHERE id = ${id}`.execute(db);
    await stageRun(db, 'publish', 'pull_requests', id, day(2, 20), 2, null);
  }
  return repoId;
}
