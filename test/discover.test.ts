import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { rmSync } from 'node:fs';
import type { Daemon } from '../src/bus/daemon.js';
import { addRepo } from '../src/commands/add-repo.js';
import { normalizePRNode } from '../src/adapters/github/normalize.js';
import { GitHubStandin, type StandinPR } from '../src/standins/github/server.js';
import { discoverFixture, prCount, startDiscoverDaemon } from './helpers/discover.js';
import { makeGitRepo } from './helpers/git-repo.js';

const DATA = 'data/xarray-prs.jsonl';
const f = discoverFixture();

const ASV = '{\n  // comments are allowed\n  "benchmark_dir": "benchmarks",\n}';

/** A daemon running the discover stages against the test's stand-in. */
async function startDaemon(env: Record<string, string> = {}): Promise<Daemon> {
  f.daemon = await startDiscoverDaemon(f.t, f.standin.url, env);
  return f.daemon;
}

/** `n` small synthetic PRs for a repository, spread over 2024. */
function syntheticPRs(repository: string, n: number, start = 1): StandinPR[] {
  return Array.from({ length: n }, (_, i) => ({
    repository, number: start + i, title: i % 3 ? `Speed up thing ${i}` : `Fix docs typo ${i}`,
    merged_at: new Date(Date.parse('2024-01-01T00:00:00Z') + i * 3_600_000).toISOString(),
    merge_commit_sha: `m${i}`, base_sha: `b${i}`, changed_files: 1,
    files: [{ path: `pkg/mod${i}.py`, additions: 3, deletions: 1 }],
  }));
}

describe('discover: stages 1-2 from one INSERT', () => {
  it('fills pull_requests with every merged PR of xarray and its symbolic verdict, then a re-scrape changes nothing', async () => {
    f.standin = await GitHubStandin.start();
    const loaded = f.standin.loadJsonl(DATA);
    f.standin.addRepo({ owner: 'pydata', name: 'xarray', stars: 3900, files: { 'asv_bench/asv.conf.json': ASV } });
    await startDaemon();
    await sql`INSERT INTO repositories (owner, name, asv_config_path) VALUES ('pydata', 'xarray', 'asv_bench/asv.conf.json')`.execute(f.t.db);
    await f.daemon!.whenIdle();

    expect(await prCount(f.t.db)).toBe(loaded);
    const repo = (await sql<any>`SELECT * FROM repositories`.execute(f.t.db)).rows[0];
    expect(repo).toMatchObject({ stars: 3900, ingest_enabled: true, benchmark_dir: 'asv_bench/benchmarks', default_branch: 'main' });
    expect(repo.last_scraped_at).not.toBeNull();
    const v = (await sql<any>`
      SELECT count(*) FILTER (WHERE is_performance_commit_symbolic IS NULL)::int AS undecided,
             count(*) FILTER (WHERE is_performance_commit_symbolic)::int AS flagged,
             count(*) FILTER (WHERE files_count > 100 AND jsonb_array_length(files) = files_count)::int AS big_complete,
             count(*) FILTER (WHERE files_count > 100)::int AS big
      FROM pull_requests`.execute(f.t.db)).rows[0];
    expect(v.undecided).toBe(0);
    expect(v.flagged).toBeGreaterThan(1000);
    expect(v.big).toBe(3);
    expect(v.big_complete).toBe(3); // REST files fallback past GraphQL's 100
    const speedUp = (await sql<any>`SELECT is_performance_commit_symbolic, symbolic_reason FROM pull_requests
      WHERE title ILIKE 'speed up%' LIMIT 1`.execute(f.t.db)).rows[0];
    expect(speedUp.is_performance_commit_symbolic).toBe(true);
    expect(speedUp.symbolic_reason.positive).toContain('speed');
    // Over 1000 results: the window was split, with few wasted probes.
    const searches = f.standin.stats.byRoute['graphql:search'];
    expect(searches).toBeLessThanOrEqual(Math.ceil(loaded / 100) + 12);

    const before = (await sql<any>`SELECT max(updated_at) AS u, count(*)::int AS n FROM pull_requests`.execute(f.t.db)).rows[0];
    await sql`UPDATE repositories SET last_scraped_at = NULL, scrape_cursor = NULL`.execute(f.t.db);
    await f.daemon!.whenIdle();
    const after = (await sql<any>`SELECT max(updated_at) AS u, count(*)::int AS n FROM pull_requests`.execute(f.t.db)).rows[0];
    expect(after).toEqual(before);
    const runs = (await sql<any>`SELECT cost FROM stage_runs WHERE stage = 'scrape_commits' ORDER BY id`.execute(f.t.db)).rows;
    expect(runs.map((r) => r.cost.inserted)).toEqual([loaded, 0]);
  }, 60_000);

  it('a re-scrape stores a changed title and its new verdict', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    f.standin.addPRs(syntheticPRs('acme/lib', 5));
    await startDaemon();
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon!.whenIdle();
    f.standin.addPRs([{ ...syntheticPRs('acme/lib', 1)[0], title: 'Bump version' }]);
    await sql`UPDATE repositories SET last_scraped_at = NULL, scrape_cursor = NULL`.execute(f.t.db);
    await f.daemon!.whenIdle();
    const pr = (await sql<any>`SELECT title, is_performance_commit_symbolic FROM pull_requests WHERE number = 1`.execute(f.t.db)).rows[0];
    expect(pr).toEqual({ title: 'Bump version', is_performance_commit_symbolic: false });
    expect(await prCount(f.t.db)).toBe(5);
  });

  it('discovery: code search -> repositories, filtered, and only good ones scraped', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'good', name: 'lib', stars: 800, files: { 'asv.conf.json': ASV } });
    f.standin.addRepo({ owner: 'forked', name: 'lib', stars: 900, fork: true, files: { 'asv.conf.json': ASV } });
    f.standin.addRepo({ owner: 'airspeed-velocity', name: 'asv', stars: 900, files: { 'asv.conf.json': ASV } });
    f.standin.addRepo({ owner: 'old', name: 'lib', stars: 900, archived: true, files: { 'asv.conf.json': ASV } });
    f.standin.addRepo({ owner: 'tiny', name: 'lib', stars: 12, files: { 'asv.conf.json': ASV } });
    f.standin.addRepo({ owner: 'nosuite', name: 'lib', stars: 5000 });
    f.standin.addPRs(syntheticPRs('good/lib', 7));
    f.standin.addPRs(syntheticPRs('tiny/lib', 3));
    await startDaemon();
    await sql`INSERT INTO discovery_runs (requested_by) VALUES ('sql')`.execute(f.t.db);
    await addRepo(f.t.db, 'nosuite/lib'); // by hand, but has no asv config
    await f.daemon!.whenIdle();
    const repos = (await sql<any>`SELECT full_name, ingest_enabled, ingest_reason FROM repositories ORDER BY full_name`.execute(f.t.db)).rows;
    expect(repos).toEqual([
      { full_name: 'good/lib', ingest_enabled: true, ingest_reason: 'has an asv suite' },
      { full_name: 'nosuite/lib', ingest_enabled: false, ingest_reason: 'no asv.conf.json found' },
      { full_name: 'old/lib', ingest_enabled: false, ingest_reason: 'archived' },
      { full_name: 'tiny/lib', ingest_enabled: false, ingest_reason: '12 stars, below the minimum of 500' },
    ]);
    expect(await prCount(f.t.db)).toBe(7);
    const run = (await sql<any>`SELECT found, inserted, finished_at FROM discovery_runs`.execute(f.t.db)).rows[0];
    expect(run).toMatchObject({ found: 5, inserted: 3 });
  });

  it('mines a local git clone with no API at all', async () => {
    f.standin = await GitHubStandin.start();
    const { dir } = makeGitRepo();
    try {
      await startDaemon({ PERFMINE_GITHUB_API_URL: 'http://127.0.0.1:9' }); // nothing listens there
      await addRepo(f.t.db, 'local/pkg', { gitPath: dir });
      await f.daemon!.whenIdle();
      const repo = (await sql<any>`SELECT ingest_enabled, benchmark_dir, default_branch FROM repositories`.execute(f.t.db)).rows[0];
      expect(repo).toEqual({ ingest_enabled: true, benchmark_dir: 'bench', default_branch: 'main' });
      const prs = (await sql<any>`SELECT number, title, is_performance_commit_symbolic, patch, files_count FROM pull_requests ORDER BY number`.execute(f.t.db)).rows;
      expect(prs.map((p) => [p.number, p.title, p.is_performance_commit_symbolic])).toEqual([
        [1, 'Speed up f with list()', true],
        [2, 'Fix typo in docs', false],
        [3, 'Add a cache for other', true],
      ]);
      expect(prs[0].patch).toContain('+    return list(xs)');
      expect(f.standin.stats.total).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('discover: GitHub errors and rate limits lose nothing', () => {
  const faults = [
    { kind: 'secondary-403', retryAfterSeconds: 1, match: 'graphql' },
    { kind: 'secondary-429', retryAfterSeconds: 1, match: 'graphql' },
    { kind: 'primary-403', retryAfterSeconds: 1, match: 'graphql' },
    { kind: 'graphql-rate-limited', retryAfterSeconds: 1, match: 'graphql' },
    { kind: 'http-502', match: 'graphql' },
    { kind: 'truncate', match: 'graphql' },
    { kind: 'secondary-403', retryAfterSeconds: 1, match: 'rest' },
  ] as const;
  for (const fault of faults) {
    it(`${fault.kind} on ${fault.match}: every PR stored once${'retryAfterSeconds' in fault ? ', the wait honoured' : ''}`, async () => {
      f.standin = await GitHubStandin.start();
      f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
      f.standin.addPRs(syntheticPRs('acme/lib', 250));
      await startDaemon();
      f.standin.inject({ ...fault });
      const t0 = Date.now();
      await addRepo(f.t.db, 'acme/lib');
      await f.daemon!.whenIdle();
      expect(await prCount(f.t.db)).toBe(250);
      if ('retryAfterSeconds' in fault) expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
      const failed = (await sql<any>`SELECT * FROM failures`.execute(f.t.db)).rows;
      expect(failed).toEqual([]);
      if (fault.kind === 'truncate') {
        const errors = (await sql<any>`SELECT error FROM stage_runs WHERE outcome = 'error'`.execute(f.t.db)).rows;
        expect(errors[0].error).toMatch(/short leaf: merged .* returned 249 of 250 PRs/);
      }
    }, 30_000);
  }

  it('a wait longer than the inline limit pauses the github group on the bus, visible in status, then resumes', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    f.standin.addPRs(syntheticPRs('acme/lib', 120));
    await startDaemon({ PERFMINE_GITHUB_MAX_INLINE_WAIT_S: '1' });
    f.standin.inject({ kind: 'primary-403', retryAfterSeconds: 4, match: 'graphql' });
    const t0 = Date.now();
    await addRepo(f.t.db, 'acme/lib');
    const deadline = Date.now() + 5000;
    let pause: any;
    while (!pause && Date.now() < deadline) {
      pause = (await sql<any>`SELECT until, reason FROM rate_limit_pauses WHERE group_name = 'github'`.execute(f.t.db)).rows[0];
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(pause).toBeDefined();
    expect(pause.until.getTime() - t0).toBeGreaterThan(3000);
    expect(pause.reason).toMatch(/rate limit/);
    const funnel = (await sql<any>`SELECT rate_limited_until FROM funnel WHERE stage = 'scrape_commits'`.execute(f.t.db)).rows[0];
    expect(funnel.rate_limited_until).not.toBeNull();
    expect(await prCount(f.t.db)).toBe(0);
    await f.daemon!.whenIdle();
    expect(await prCount(f.t.db)).toBe(120);
    expect(Date.now()).toBeGreaterThanOrEqual(pause.until.getTime());
    const runs = (await sql<any>`SELECT outcome FROM stage_runs WHERE stage = 'scrape_commits' ORDER BY id`.execute(f.t.db)).rows;
    expect(runs.map((r) => r.outcome)).toEqual(['rate_limited', 'succeeded']);
  }, 30_000);

  it('rotates to the next token when one is exhausted', async () => {
    f.standin = await GitHubStandin.start({ tokens: { first: 3, second: 1000 }, resetSeconds: 3600 });
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    f.standin.addPRs(syntheticPRs('acme/lib', 450));
    await startDaemon({ GITHUB_TOKENS: 'first,second', GITHUB_TOKEN: '' });
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon!.whenIdle();
    expect(await prCount(f.t.db)).toBe(450);
    expect(f.standin.stats.byToken.second).toBeGreaterThan(0);
    expect((await sql<any>`SELECT count(*)::int AS n FROM rate_limit_pauses`.execute(f.t.db)).rows[0].n).toBe(0);
    const logged = JSON.stringify((await sql<any>`SELECT * FROM stage_runs`.execute(f.t.db)).rows);
    expect(logged).not.toMatch(/first|second/); // tokens never reach the database
  });

  it('bad data is stored or rejected with a reason, never crashes', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    f.standin.addPRs([
      { repository: 'acme/lib', number: 1, title: 'Speed up \u0000groupby \ud800 😀 naïve', body: null, merged_at: '2024-02-01T00:00:00Z',
        merge_commit_sha: null, base_sha: null, changed_files: 2,
        files: [{ path: 'img/logo.png', additions: null, deletions: null }, { path: 'pkg/ünï.py', additions: 1, deletions: 0 }] },
      { repository: 'acme/lib', number: 2, title: '', merged_at: '2024-02-02T00:00:00Z', merge_commit_sha: 'x', base_sha: 'y', changed_files: 0, files: [] },
    ]);
    await startDaemon();
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon!.whenIdle();
    const prs = (await sql<any>`SELECT number, title, body, merge_commit_sha, files, additions FROM pull_requests ORDER BY number`.execute(f.t.db)).rows;
    expect(prs[0].title).toBe('Speed up groupby \ufffd 😀 naïve');
    expect(prs[0]).toMatchObject({ body: null, merge_commit_sha: null });
    // GraphQL reports binary files as 0/0; a source without counts (git, REST) stores NULL.
    expect(prs[0].files[0]).toEqual({ path: 'img/logo.png', additions: 0, deletions: 0 });
    const binary = normalizePRNode({ number: 9, mergedAt: '2024-01-01T00:00:00Z', files: { totalCount: 1, nodes: [{ path: 'a.bin', additions: null, deletions: null }] } });
    expect('pr' in binary && binary.pr.files).toEqual([{ path: 'a.bin', additions: null, deletions: null }]);
    expect(prs[1].title).toBe('');
    // What cannot be stored at all is rejected with the reason.
    expect(normalizePRNode({ number: 5, title: 'x', mergedAt: null })).toEqual({ reject: 'missing or invalid mergedAt (null)', number: 5 });
    expect(normalizePRNode({ title: 'no number', mergedAt: '2024-01-01T00:00:00Z' })).toEqual({ reject: 'missing PR number', number: null });
    expect(normalizePRNode(null)).toMatchObject({ reject: 'null node in search results' });
  });
});
