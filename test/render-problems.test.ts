import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps } from '../src/stages/index.js';
import { renderProblems } from '../src/stages/render-problems.js';
import { GitHubClient } from '../src/adapters/github/client.js';
import { githubIssueFetcher } from '../src/adapters/github/issue-fetcher.js';
import { findLinkedIssues } from '../src/domain/linked-issues.js';
import { GitHubStandin, type StandinPR } from '../src/standins/github/server.js';
import { LlmStandin } from '../src/standins/llm/server.js';
import { INVENTED_SENTENCE } from '../src/standins/llm/extract-answers.js';
import { createTestDb, type TestDb } from './helpers/db.js';

const API_KEY = 'sk-test-render-key-0123456789';
const GITHUB_TOKEN = 'ghp_rendertesttoken0123456789abcdef';
let t: TestDb;
let github: GitHubStandin;
let llm: LlmStandin;
let daemon: Daemon | undefined;

beforeAll(async () => { t = await createTestDb(); });
afterAll(async () => { await t.destroy(); });
beforeEach(async () => {
  await sql`TRUNCATE repositories, leases, stage_runs, rate_limit_pauses, workers, prompts RESTART IDENTITY CASCADE`.execute(t.db);
  github = await GitHubStandin.start();
  llm = await LlmStandin.start({ apiKey: API_KEY });
  github.addRepo({ owner: 'acme', name: 'lib', stars: 900 });
  seedIssues();
});
afterEach(async () => {
  await daemon?.stop(2000);
  daemon = undefined;
  await github.close();
  await llm.close();
});

// ---------------------------------------------------------------- the world

const ISSUE_5_BODY = [
  'Calling `ds.groupby("x").sum()` on a dataset with a million groups takes more than 30 seconds. '
    + 'I expected it to take well under a second, as it does in pandas. Reported to me by jane.doe@example.org; @bob-smith saw it too.',
  '',
  '```python',
  'import lib',
  'ds = lib.make_dataset(1_000_000)',
  'ds.groupby("x").sum()',
  '```',
].join('\n');

/** The patch's new code: what a problem statement must never hand over. */
const SOLUTION = [
  '    order = np.argsort(codes, kind="stable")',
  '    starts = np.flatnonzero(np.diff(codes[order], prepend=-1))',
  '    return np.add.reduceat(values[order], starts)',
];
const PATCH = [
  'diff --git a/lib/groupby.py b/lib/groupby.py',
  '--- a/lib/groupby.py',
  '+++ b/lib/groupby.py',
  '@@ -10,2 +10,4 @@',
  ' def groupby_reduce(values, codes):',
  '-    return [values[codes == c].sum() for c in np.unique(codes)]',
  ...SOLUTION.map((l) => `+${l}`),
  '',
].join('\n');

function seedIssues(): void {
  github.addIssue('acme/lib', {
    number: 5, title: 'groupby sum is slow with many groups', body: ISSUE_5_BODY,
    comments: [
      'I profiled it with cProfile and most of the time is spent in the Python loop over the groups in `groupby_reduce`. See also #6.',
      'Same on my machine (/home/carol/data/big.nc, two million rows): it takes over a minute.',
    ],
  });
  // #6 links back to #5 (a cycle) and on to #7, which is three steps from the PR.
  github.addIssue('acme/lib', { number: 6, title: 'Grouped reductions scale badly', body: 'Every grouped reduction walks the groups one by one, as in #5. Related: #7.' });
  github.addIssue('acme/lib', { number: 7, title: 'Three steps away', body: 'Only reachable in three steps from the PR.' });
  github.addIssue('acme/lib', { number: 11, title: 'Deleted', body: 'gone' });
  github.setIssueStatus('acme/lib', 11, 410);
  github.addIssue('acme/lib', { number: 13, title: 'Withheld', body: 'withheld' });
  github.setIssueStatus('acme/lib', 13, 451);
  github.addPRs([standinPR(8, 'Faster reductions (first try)', 'A draft that tried numba.')]);
}

function standinPR(number: number, title: string, body: string): StandinPR {
  return {
    repository: 'acme/lib', number, title, body, merged_at: '2024-03-01T00:00:00Z',
    merge_commit_sha: `m${number}`, base_sha: `b${number}`, changed_files: 1,
    files: [{ path: 'lib/groupby.py', additions: 3, deletions: 1 }],
  };
}

const PR_BODY = 'Closes #5. Supersedes #8 (see https://github.com/acme/lib/pull/9); also touches #11, #12 and #13.\n\n'
  + 'This replaces the Python loop in `groupby_reduce` with a single `np.add.reduceat` call over the sorted codes. '
  + 'It is about 40x faster on the benchmark with a million groups.';

async function insertRepo(source: 'github' | 'git' = 'github'): Promise<number> {
  const { rows } = await sql<{ id: number }>`
    INSERT INTO repositories (owner, name, source, git_path, description, asv_config_path, metadata_fetched_at, last_scraped_at)
    VALUES ('acme', ${source === 'git' ? 'gitlib' : 'lib'}, ${source}, ${source === 'git' ? '/nonexistent/clone' : null},
            'Labelled arrays; maintained by maintainer@acme.example', 'asv_bench/asv.conf.json', now(), now())
    RETURNING id`.execute(t.db);
  return Number(rows[0].id);
}

async function insertPR(repositoryId: number, number: number, title: string, body: string | null, canInstall: boolean | null = true): Promise<number> {
  github.addPRs([standinPR(number, title, body ?? '')]);
  const { rows } = await sql<{ id: number }>`
    INSERT INTO pull_requests (repository_id, number, title, body, patch, is_performance_commit, can_install, merged_at)
    VALUES (${repositoryId}, ${number}, ${title}, ${body}, ${PATCH}, true, ${canInstall}, '2024-03-01T00:00:00Z')
    RETURNING id`.execute(t.db);
  return Number(rows[0].id);
}

async function startDaemon(env: Record<string, string> = {}, pollIntervalMs = 200): Promise<Daemon> {
  const config = loadConfig({
    PERFMINE_GITHUB_API_URL: github.url, GITHUB_TOKEN, PERFMINE_SCHEDULE: 'false',
    PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS: '0', PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS: '0',
    OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: API_KEY, PERFMINE_LLM_MODEL: 'standin-small', ...env,
  });
  const stage = { ...renderProblems(buildStageDeps(config, silentLogger)), backoff: { baseMs: 100, maxMs: 400 } };
  daemon = new Daemon({ db: t.db, connectionString: t.url, stages: [stage], pollIntervalMs, breaker: { baseSeconds: 0.5, maxSeconds: 2 } });
  await daemon.start();
  return daemon;
}

async function stopDaemon(): Promise<void> {
  await daemon?.stop(2000);
  daemon = undefined;
}

const prRow = async (id: number) => (await sql<any>`
  SELECT rendered_problem, problem_description, render_reason, problem_rendered_at FROM pull_requests WHERE id = ${id}`.execute(t.db)).rows[0];
const candidate = async (id: number) => (await sql<any>`SELECT * FROM candidate_prs WHERE pull_request_id = ${id}`.execute(t.db)).rows[0];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- linked issues over the real client

describe('linked issues: breadth-first over GitHub REST', () => {
  const client = () => new GitHubClient({ baseUrl: github.url, tokens: [GITHUB_TOKEN], log: silentLogger, graphqlMinIntervalMs: 0 });
  const limits = { maxDepth: 2, maxIssues: 6, maxLookups: 20 };

  it('follows the PR to depth 2, skips linked PRs and 404/410/451, and survives a cycle', async () => {
    github.addPRs([standinPR(10, 'Speed up groupby', PR_BODY)]);
    let requests = 0;
    const found = await findLinkedIssues({ owner: 'acme', name: 'lib', number: 10, title: 'Speed up groupby', body: PR_BODY },
      githubIssueFetcher(client(), new AbortController().signal, (n) => { requests += n; }), limits);
    expect(found.issues.map((i) => [i.number, i.depth, i.found])).toEqual([
      [5, 1, { in: 'pr body', form: '#N', from: 'acme/lib#10' }],
      [6, 2, { in: 'issue comment', form: '#N', from: 'acme/lib#5' }],
    ]);
    expect(found.issues[0].comments).toHaveLength(2);
    expect(found.skipped.map((s) => [s.number, s.reason])).toEqual([
      [8, 'pull request'], [9, 'pull request'], [11, 'HTTP 410'], [12, 'HTTP 404'], [13, 'HTTP 451'],
    ]);
    // #7 is three steps away: never asked for. #9 was known to be a PR from its URL: never asked for either.
    expect(found.lookups).toBe(6);
    expect(requests).toBe(github.stats.total);
  });

  it('reads every page of comments and timelines, and stops at the issue limit', async () => {
    github.addIssue('acme/lib', { number: 30, title: 'Big thread', body: 'Loading is slow.', comments: Array.from({ length: 230 }, (_, i) => `comment ${i + 1}`) });
    for (let n = 100; n < 220; n++) github.addIssue('acme/lib', { number: n, title: `mention ${n}`, body: `Same as #30 for me (${n}).` });
    const body = 'Fixes #30.';
    github.addPRs([standinPR(40, 'Faster loading', body)]);
    const found = await findLinkedIssues({ owner: 'acme', name: 'lib', number: 40, title: 'Faster loading', body },
      githubIssueFetcher(client(), new AbortController().signal, () => undefined), limits);
    expect(found.issues.map((i) => i.number)).toEqual([30, 100, 101, 102, 103, 104]);
    expect(found.issues[0].comments).toHaveLength(230);
    expect(found.issues[0].comments.at(-1)).toBe('comment 230');
    expect(found.issues[1].found).toEqual({ in: 'issue timeline', form: 'timeline', from: 'acme/lib#30' });
    expect(found.skipped.filter((s) => s.reason === 'issue limit (6)')).toHaveLength(115);
    // 230 comments: 3 pages for #30, 1 for each of the five others; timelines: the PR's, and 2 pages for #30 (120 items).
    expect(github.stats.byRoute['rest:issues/comments']).toBe(8);
    expect(github.stats.byRoute['rest:issues/timeline']).toBe(3);
  });

  it('a transient 502 on a comments page is retried in place', async () => {
    github.addPRs([standinPR(10, 'Speed up groupby', PR_BODY)]);
    github.inject({ kind: 'http-502', route: 'rest:issues/comments', times: 1 });
    const found = await findLinkedIssues({ owner: 'acme', name: 'lib', number: 10, title: '', body: 'Closes #5.' },
      githubIssueFetcher(client(), new AbortController().signal, () => undefined), limits);
    expect(found.issues[0].comments).toHaveLength(2);
    expect(github.faultStats.byKind['http-502']).toBe(1);
  });
});

// ---------------------------------------------------------------- the stage in a daemon

describe('render_problems: stage 5', () => {
  it('a PR flows from can_install = true to rendered_problem and its candidate_prs row; the funnel shows the stage; one UPDATE re-runs it', async () => {
    const repo = await insertRepo();
    const id = await insertPR(repo, 10, 'Speed up groupby with many groups', PR_BODY, null);
    // A long poll: only the can_install doorbell can wake the stage in time.
    await startDaemon({}, 60_000);
    await sql`UPDATE pull_requests SET can_install = true WHERE id = ${id}`.execute(t.db);
    const row = await waitFor('the problem', async () => (await prRow(id))?.problem_rendered_at && prRow(id));

    expect(row.render_reason).toBeNull();
    const problem: string = row.rendered_problem;
    expect(problem).toMatch(/^# Make acme\/lib faster/);
    expect(problem).toContain('Keep it correct');
    expect(problem).toContain('asv run --config asv_bench/asv.conf.json --python=same');
    expect(problem).toContain('takes more than 30 seconds');
    expect(problem).toContain('```python\nimport lib\nds = lib.make_dataset(1_000_000)\nds.groupby("x").sum()\n```');
    expect(problem).toContain('I profiled it with cProfile');
    expect(problem).toContain('## Relevant issues');
    expect(problem).toContain('### groupby sum is slow with many groups');
    expect(problem).toContain('### Grouped reductions scale badly');
    // Never the solution, the raw PR body, a person or a home directory.
    for (const banned of ['reduceat', 'Supersedes', 'np.argsort', 'jane.doe', '@bob-smith', 'carol', 'maintainer@', 'Three steps away']) {
      expect(problem).not.toContain(banned);
    }
    expect(problem).toContain('Reported to me by [email]; @[user] saw it too.');
    // Issue numbers lead only to the discussion of the fix.
    expect(problem).toContain('Every grouped reduction walks the groups one by one, as in [link]. Related: [link].');
    expect(problem).not.toMatch(/#\d/);
    expect(row.problem_description).toContain('takes more than 30 seconds');
    expect(row.problem_description).not.toContain('Make acme/lib faster');

    const c = await candidate(id);
    expect(c).toMatchObject({ source_kind: 'github', model: 'standin-small', outcome: 'rendered' });
    expect(c.linked_issues.map((i: any) => [i.number, i.depth, i.found.in])).toEqual([[5, 1, 'pr body'], [6, 2, 'issue comment']]);
    expect(c.skipped_refs.map((s: any) => s.reason)).toEqual(['pull request', 'pull request', 'HTTP 410', 'HTTP 404', 'HTTP 451']);
    expect(c.extracted.solution_overview).toContain('Closes #5.');
    expect(c.fidelity).toMatchObject({ min_ratio: 0.75, dropped: [] });
    expect(c.leakage_score).toBeLessThan(0.2);
    expect(c.anonymized).toMatchObject({ emails: 2, mentions: 1, home_paths: 1 });
    const hash = (await sql<any>`SELECT hash FROM prompts WHERE name = 'render'`.execute(t.db)).rows[0].hash;
    expect(c.prompt_hash).toBe(hash);

    const funnel = (await sql<any>`SELECT * FROM funnel WHERE stage = 'render_problems'`.execute(t.db)).rows[0];
    expect(funnel).toMatchObject({ ordinal: 5, pending: 0, failed: 0 });
    expect(Number(funnel.done)).toBe(1);
    const run = (await sql<any>`SELECT cost FROM stage_runs WHERE stage = 'render_problems' AND outcome = 'succeeded'`.execute(t.db)).rows[0];
    expect(run.cost.llm_calls).toBe(1);
    expect(run.cost.api_calls).toBe(github.stats.total);
    expect(llm.stats.byTask.extract).toBe(1);

    // Nothing secret anywhere in the database.
    const everything = JSON.stringify([
      (await sql<any>`SELECT * FROM stage_runs`.execute(t.db)).rows, (await sql<any>`SELECT * FROM candidate_prs`.execute(t.db)).rows,
      (await sql<any>`SELECT * FROM pull_requests`.execute(t.db)).rows]);
    expect(everything).not.toContain(API_KEY);
    expect(everything).not.toContain(GITHUB_TOKEN);

    // Re-run one PR: one UPDATE.
    await sql`UPDATE pull_requests SET problem_rendered_at = NULL WHERE id = ${id}`.execute(t.db);
    await waitFor('the second render', async () => {
      const n = (await sql<any>`SELECT count(*)::int AS n FROM stage_runs WHERE stage = 'render_problems' AND outcome = 'succeeded'`.execute(t.db)).rows[0].n;
      return n === 2 && (await prRow(id)).problem_rendered_at !== null;
    });
    expect((await prRow(id)).rendered_problem).toBe(problem);
    expect((await sql<any>`SELECT count(*)::int AS n FROM candidate_prs`.execute(t.db)).rows[0].n).toBe(1);
    expect(llm.stats.byTask.extract).toBe(2);
  });

  it('the fidelity check drops a sentence the extractor made up', async () => {
    const repo = await insertRepo();
    const id = await insertPR(repo, 21, 'Speed up groupby', `Closes #5. [standin:invent]\n\n${PR_BODY}`);
    await startDaemon();
    await daemon!.whenIdle();
    const row = await prRow(id);
    expect(row.render_reason).toBeNull();
    expect(row.rendered_problem).toContain('takes more than 30 seconds');
    expect(row.rendered_problem).not.toContain('Cray supercomputer');
    const c = await candidate(id);
    expect(c.extracted.initial_observations).toContain(INVENTED_SENTENCE);
    expect(c.fidelity.dropped).toEqual([
      { section: 'initial_observations', kind: 'sentence', text: INVENTED_SENTENCE, best_ratio: expect.any(Number) },
    ]);
    expect(c.fidelity.dropped[0].best_ratio).toBeLessThan(0.75);
    expect(c.sections.initial_observations).not.toContain('Cray');
  });

  it('a problem that copies the solution is rejected with that reason', async () => {
    const repo = await insertRepo();
    const body = `Closes #5. [standin:copy-solution]\n\nThe loop becomes a single reduceat:\n\n\`\`\`python\n${SOLUTION.join('\n')}\n\`\`\``;
    const id = await insertPR(repo, 22, 'Speed up groupby', body);
    await startDaemon();
    await daemon!.whenIdle();
    const row = await prRow(id);
    expect(row.rendered_problem).toBeNull();
    expect(row.problem_description).toBeNull();
    expect(row.problem_rendered_at).not.toBeNull();
    expect(row.render_reason).toMatch(/^solution leak: the problem overlaps the patch's new code by [\d.]+ \(limit 0.2, PERFMINE_PROBLEM_MAX_PATCH_OVERLAP\)/);
    const c = await candidate(id);
    expect(c.leakage_score).toBeGreaterThan(0.2);
    expect(c.leakage.quoted_lines).toContain('return np.add.reduceat(values[order], starts)');
    expect(c.outcome).toBe(row.render_reason);
    // Stage 6 would wake on rendered_problem: nothing for it here, and nothing failed.
    expect((await sql<any>`SELECT * FROM failures`.execute(t.db)).rows).toEqual([]);
  });

  it('gate: a PR without a linked issue stops with the reason; with PERFMINE_PROBLEM_REQUIRES_ISSUE=false its own text suffices', async () => {
    const repo = await insertRepo();
    const body = 'The rolling mean recomputes the whole window sum at every position. On a ten million element array that takes 12 seconds. '
      + 'This keeps a running sum instead.';
    const id = await insertPR(repo, 23, 'Faster rolling mean', body);
    await startDaemon();
    await daemon!.whenIdle();
    expect((await prRow(id))).toMatchObject({ rendered_problem: null, render_reason: expect.stringMatching(/^no linked issue found/) });
    expect(llm.stats.completions).toBe(0);
    await stopDaemon();

    await sql`UPDATE pull_requests SET problem_rendered_at = NULL WHERE id = ${id}`.execute(t.db);
    await startDaemon({ PERFMINE_PROBLEM_REQUIRES_ISSUE: 'false' });
    await daemon!.whenIdle();
    const row = await prRow(id);
    expect(row.render_reason).toBeNull();
    expect(row.rendered_problem).toContain('On a ten million element array that takes 12 seconds.');
    expect(row.rendered_problem).not.toContain('## Relevant issues');
    expect((await candidate(id)).linked_issues).toEqual([]);
  });

  it('a git source has no issues: the reason by default, the PR\'s own text with the setting off, and no GitHub request', async () => {
    const repo = await insertRepo('git');
    const body = 'Fixes #5. Reading a netCDF file with many variables takes 40 seconds because every variable is decoded twice. '
      + 'It should take a few seconds. Decoding once is enough.';
    const id = await insertPR(repo, 24, 'Faster open_dataset', body);
    await startDaemon();
    await daemon!.whenIdle();
    expect((await prRow(id)).render_reason).toMatch(/^no linked issue: a git source has no issues/);
    await stopDaemon();

    await sql`UPDATE pull_requests SET problem_rendered_at = NULL WHERE id = ${id}`.execute(t.db);
    await startDaemon({ PERFMINE_PROBLEM_REQUIRES_ISSUE: 'false' });
    await daemon!.whenIdle();
    const row = await prRow(id);
    expect(row.render_reason).toBeNull();
    expect(row.rendered_problem).toContain('every variable is decoded twice');
    expect(row.rendered_problem).toContain('# Make acme/gitlib faster');
    const c = await candidate(id);
    expect(c).toMatchObject({ source_kind: 'git', linked_issues: [], skipped_refs: [] });
    expect(github.stats.total).toBe(0);
  });

  it('bad input stops with a reason and the daemon goes on; malformed answers are asked again', async () => {
    const repo = await insertRepo();
    const empty = await insertPR(repo, 25, 'Speed up something', '   ');
    const nothing = await insertPR(repo, 26, 'Speed up groupby', 'Closes #5. [standin:empty]');
    const fine = await insertPR(repo, 27, 'Speed up groupby', 'Closes #5.\n\nUses a better loop.');
    llm.inject({ kind: 'invalid-label', times: 1 });
    await startDaemon({ PERFMINE_RENDER_CONCURRENCY: '1' });
    await daemon!.whenIdle();
    expect((await prRow(empty)).render_reason).toBe('empty PR body: nothing to make a problem statement from');
    expect((await prRow(nothing)).render_reason).toBe('the extractor found no initial observations in the PR and its issues');
    expect((await prRow(fine)).render_reason).toBeNull();
    const calls = (await sql<any>`SELECT sum((cost->>'llm_calls')::int)::int AS n FROM stage_runs WHERE stage = 'render_problems'`.execute(t.db)).rows[0].n;
    expect(calls).toBe(3); // two PRs reached the extractor; one answer was invalid and asked again
    expect((await sql<any>`SELECT * FROM failures`.execute(t.db)).rows).toEqual([]);
  });
});
