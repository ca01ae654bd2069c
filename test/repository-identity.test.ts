import { describe, expect, it, inject } from 'vitest';
import { sql } from 'kysely';
import { readdirSync, readFileSync } from 'node:fs';
import { addRepo } from '../src/commands/add-repo.js';
import { connect } from '../src/db/connect.js';
import { GitHubStandin } from '../src/standins/github/server.js';
import { discoverFixture, discoverStages, handlerContext, hourlyPRs, prCount, startDiscoverDaemon } from './helpers/discover.js';
import { createThrowawayDatabase } from './helpers/pg-provider.js';

const f = discoverFixture();

const ASV = { 'asv.conf.json': '{}' };
const repositories = async () =>
  (await sql<any>`SELECT id, full_name, github_id, ingest_enabled, ingest_reason FROM repositories ORDER BY id`.execute(f.t.db)).rows;
/** The id GitHub (the stand-in) reports for a repository. */
async function githubId(s: GitHubStandin, fullName: string): Promise<number> {
  return ((await (await fetch(`${s.url}/repos/${fullName}`)).json()) as { id: number }).id;
}

describe('repository names are case-insensitive, as on GitHub', () => {
  it('add-repo with another spelling finds the existing row, and a second spelling cannot be inserted', async () => {
    const first = await addRepo(f.t.db, 'pydata/xarray');
    const again = await addRepo(f.t.db, 'PyData/XArray');
    expect(again).toEqual({ id: first.id, created: false });
    expect((await repositories()).map((r) => r.full_name)).toEqual(['pydata/xarray']);
    await expect(sql`INSERT INTO repositories (owner, name) VALUES ('PYDATA', 'xarray')`.execute(f.t.db))
      .rejects.toMatchObject({ code: '23505' });
  });
});

describe('add-repo asks again', () => {
  it('a repository a stage gave up on runs again after add-repo', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: ASV });
    f.standin.addPRs(hourlyPRs('acme/lib', 3, '2024-01-01T00:00:00Z'));
    // Every search page comes back short (the row's own error, not an outage): scrape_commits
    // gives up on the repository after its 8 attempts.
    f.standin.inject({ kind: 'truncate', times: 8 });
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    const failed = await sql<any>`SELECT stage FROM leases WHERE failed_at IS NOT NULL`.execute(f.t.db);
    expect(failed.rows).toEqual([{ stage: 'scrape_commits' }]);
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    expect(await prCount(f.t.db)).toBe(3);
    expect((await sql<any>`SELECT count(*)::int AS n FROM leases`.execute(f.t.db)).rows[0].n).toBe(0);
  });
});

describe("GitHub's repository id", () => {
  it('is kept by scrape_repos', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'other', name: 'first', files: ASV }); // so acme/lib's id is not 1, like row ids
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: ASV });
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    expect((await repositories())[0]).toMatchObject({ full_name: 'acme/lib', github_id: await githubId(f.standin, 'acme/lib'), ingest_enabled: true });
  });

  it('a renamed repository added under its new name is disabled, naming the row that has its PRs, and not scraped twice', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'oldlib', stars: 900, files: ASV });
    f.standin.addPRs(hourlyPRs('acme/oldlib', 20, '2024-01-01T00:00:00Z'));
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/oldlib');
    await f.daemon.whenIdle();
    expect(await prCount(f.t.db)).toBe(20);

    f.standin.renameRepo('acme/oldlib', 'acme/lib');
    const searchesBefore = f.standin.stats.byRoute['graphql:search'];
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    const [old, renamed] = await repositories();
    expect(old).toMatchObject({ full_name: 'acme/oldlib', ingest_enabled: true });
    expect(renamed).toMatchObject({ full_name: 'acme/lib', github_id: null, ingest_enabled: false });
    expect(renamed.ingest_reason).toBe(`same GitHub repository (id ${old.github_id}, now acme/lib) as acme/oldlib (row ${old.id}); not scraped twice`);
    expect(await prCount(f.t.db)).toBe(20);
    expect(f.standin.stats.byRoute['graphql:search']).toBe(searchesBefore);
  });

  it('discovery skips a repository present under another spelling or a former name', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: ASV });
    f.standin.addRepo({ owner: 'other', name: 'oldtool', stars: 900, files: ASV });
    f.standin.addRepo({ owner: 'brand', name: 'new', stars: 900, files: ASV });
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'ACME/Lib');
    await addRepo(f.t.db, 'other/oldtool');
    await f.daemon.whenIdle();
    f.standin.renameRepo('other/oldtool', 'other/tool');
    await sql`INSERT INTO discovery_runs (requested_by) VALUES ('sql')`.execute(f.t.db);
    await f.daemon.whenIdle();
    expect((await sql<any>`SELECT found, inserted FROM discovery_runs`.execute(f.t.db)).rows[0]).toEqual({ found: 3, inserted: 1 });
    expect((await repositories()).map((r) => r.full_name)).toEqual(['ACME/Lib', 'other/oldtool', 'brand/new']);
  });

  it('discovery inserts its repositories only in its fenced write-back', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: ASV });
    const run = (await sql<any>`INSERT INTO discovery_runs (requested_by) VALUES ('sql') RETURNING *`.execute(f.t.db)).rows[0];
    const discover = discoverStages(f.standin.url).find((s) => s.name === 'discover_repos')!;
    const lease = { stage: 'discover_repos', subjectId: run.id, runId: 7, workerId: 'w' };
    const result = await discover.handle(run, handlerContext(f.t.db, lease));
    expect(await repositories()).toEqual([]); // a worker that loses its lease now has written nothing
    await f.t.db.transaction().execute((trx) => result.write!(trx)); // what the completer does once the lease is confirmed
    expect((await repositories()).map((r) => [r.full_name, r.github_id])).toEqual([['acme/lib', await githubId(f.standin, 'acme/lib')]]);
    expect((await sql<any>`SELECT inserted FROM discovery_runs`.execute(f.t.db)).rows[0].inserted).toBe(1);
  });
});

describe('migration 007 on rows spelled twice before it', () => {
  it('keeps the oldest row of each name, and disables the other spellings without losing their PRs', async () => {
    const scratch = await createThrowawayDatabase(inject('adminUrl'), 'perfmine_007');
    const conn = connect(scratch.url, 2);
    const pool = conn.pool;
    f.standin = await GitHubStandin.start();
    try {
      const before007 = readdirSync('sql').filter((name) => name.endsWith('.sql') && name < '007').sort();
      for (const file of before007) await pool.query(readFileSync(`sql/${file}`, 'utf8'));
      await pool.query(`INSERT INTO repositories (owner, name, metadata_fetched_at) VALUES
        ('pydata', 'xarray', now()), ('PyData', 'XArray', NULL), ('acme', 'lib', now())`);
      await pool.query(`INSERT INTO pull_requests (repository_id, number) VALUES (1, 10), (2, 10), (2, 11)`);
      await pool.query(readFileSync('sql/007_repository_identity.sql', 'utf8'));

      const { rows } = await pool.query('SELECT id, full_name, spelling_of, ingest_enabled, ingest_reason FROM repositories ORDER BY id');
      expect(rows).toEqual([
        { id: 1, full_name: 'pydata/xarray', spelling_of: null, ingest_enabled: true, ingest_reason: null },
        { id: 2, full_name: 'PyData/XArray', spelling_of: 1, ingest_enabled: false, ingest_reason: 'another spelling of pydata/xarray (row 1), the row that is scraped' },
        { id: 3, full_name: 'acme/lib', spelling_of: null, ingest_enabled: true, ingest_reason: null },
      ]);
      expect((await pool.query('SELECT count(*)::int AS n FROM pull_requests')).rows[0].n).toBe(3);
      expect(await addRepo(conn.db, 'PYDATA/XARRAY')).toEqual({ id: 1, created: false });

      // scrape_repos leaves such a row disabled, without asking GitHub.
      const legacy = (await pool.query('SELECT * FROM repositories WHERE id = 2')).rows[0];
      const scrapeRepos = discoverStages(f.standin.url).find((s) => s.name === 'scrape_repos')!;
      const lease = { stage: 'scrape_repos', subjectId: 2, runId: 1, workerId: 'w' };
      const result = await scrapeRepos.handle(legacy, handlerContext(conn.db, lease));
      expect(result.set).toMatchObject({ ingest_enabled: false });
      expect(f.standin.stats.total).toBe(0);
    } finally {
      await conn.close();
      await scratch.drop();
    }
  });
});
