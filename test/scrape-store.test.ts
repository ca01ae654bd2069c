import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addRepo } from '../src/commands/add-repo.js';
import { distinctResults } from '../src/adapters/github/merged-windows.js';
import type { ScrapedPR } from '../src/domain/pr.js';
import { symbolicVerdict } from '../src/domain/symbolic.js';
import { recordReject, upsertPullRequests } from '../src/store/upsert-pull-requests.js';
import { GitHubStandin } from '../src/standins/github/server.js';
import { discoverFixture, hourlyPRs, prCount, rescrape, startDiscoverDaemon } from './helpers/discover.js';
import { makeGitRepo } from './helpers/git-repo.js';

const f = discoverFixture();

const symbolic = { rule: 'loose' as const, maxFiles: 500, maxLines: 40_000 };
const item = (pr: ScrapedPR) => ({ pr, symbolic: symbolicVerdict(pr, symbolic) });
function scraped(number: number, over: Partial<ScrapedPR> = {}): ScrapedPR {
  return {
    number, title: `Speed up ${number}`, body: null, author: 'dev', labels: [], createdAt: null,
    mergedAt: '2024-03-01T00:00:00.000Z', closedAt: null, mergeCommitSha: `m${number}`, baseSha: null, headSha: null,
    files: [{ path: 'pkg/a.py', additions: 1, deletions: 1 }], filesCount: 1, additions: 1, deletions: 1, ...over,
  };
}
async function newRepository(): Promise<number> {
  return (await sql<{ id: number }>`INSERT INTO repositories (owner, name) VALUES ('acme', 'lib') RETURNING id`.execute(f.t.db)).rows[0].id;
}
const stageErrors = async () =>
  (await sql<{ error: string }>`SELECT error FROM stage_runs WHERE outcome = 'error' ORDER BY id`.execute(f.t.db)).rows.map((r) => r.error);

describe('a PR reported twice in one batch', () => {
  it('is stored once, the newest merge winning', async () => {
    const repo = await newRepository();
    const result = await upsertPullRequests(f.t.db, repo, [
      item(scraped(7, { title: 'first read' })),
      item(scraped(8)),
      item(scraped(7, { title: 'merged again later', mergedAt: '2024-03-05T00:00:00.000Z' })),
      item(scraped(7, { title: 'older copy', mergedAt: '2024-02-01T00:00:00.000Z' })),
    ]);
    expect(result).toEqual({ inserted: 2, updated: 0 });
    const rows = (await sql<any>`SELECT number, title FROM pull_requests ORDER BY number`.execute(f.t.db)).rows;
    expect(rows).toEqual([{ number: 7, title: 'merged again later' }, { number: 8, title: 'Speed up 8' }]);
  });

  it('served twice beside all the others by GitHub search: the scrape succeeds and stores each PR once', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    const prs = hourlyPRs('acme/lib', 150, '2024-01-01T00:00:00Z');
    prs[40].search_duplicate = 'extra';
    f.standin.addPRs(prs);
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    expect(await prCount(f.t.db)).toBe(150);
    expect(await stageErrors()).toEqual([]);
  }, 30_000);

  it('served in place of another PR: the window is an error naming the duplicate, never a silent loss', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    const prs = hourlyPRs('acme/lib', 150, '2024-01-01T00:00:00Z');
    f.standin.addPRs([...prs.slice(0, 40), { ...prs[40], search_duplicate: 'displaces_next' }, ...prs.slice(41)]);
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/lib');
    // Let the first attempt fail, then let the search index heal.
    const deadline = Date.now() + 10_000;
    while (!(await stageErrors()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    f.standin.addPRs([prs[40]]);
    await f.daemon.whenIdle();
    expect((await stageErrors())[0]).toMatch(/short leaf: .* returned 149 of 150 PRs \(1 served twice\)/);
    expect(await prCount(f.t.db)).toBe(150);
    expect((await sql`SELECT * FROM failures`.execute(f.t.db)).rows).toEqual([]);
  }, 30_000);

  it('counts distinct results: a duplicate cannot stand in for a missing PR', () => {
    expect(distinctResults([{ number: 1 }, { number: 2 }, { number: 2 }])).toBe(2);
    expect(distinctResults([{ number: 1 }, null, { title: 'no number' }])).toBe(3);
  });

  it('squash-merged twice in a git history (reverted and merged again): stored once, as its latest merge', async () => {
    const { dir, git } = makeGitRepo();
    try {
      writeFileSync(path.join(dir, 'pkg/core.py'), 'def f(xs):\n    return sorted(xs)\n');
      git('commit', '-qam', 'Speed up f by sorting (#9)');
      git('revert', '--no-edit', 'HEAD');
      writeFileSync(path.join(dir, 'pkg/core.py'), 'def f(xs):\n    return sorted(xs, key=id)\n');
      git('commit', '-qam', 'Speed up f by sorting (#9)');
      const latest = git('log', '-1', '--format=%H').trim();
      f.daemon = await startDiscoverDaemon(f.t, 'http://127.0.0.1:9');
      await addRepo(f.t.db, 'local/pkg', { gitPath: dir });
      await f.daemon.whenIdle();
      const rows = (await sql<any>`SELECT merge_commit_sha FROM pull_requests WHERE number = 9`.execute(f.t.db)).rows;
      expect(rows).toEqual([{ merge_commit_sha: latest }]);
      expect(await stageErrors()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('text PostgreSQL would refuse (NUL, lone surrogates) is cleaned, never fails a write', () => {
  const bad = 'a\u0000b \ud800 c\udfff';
  const cleaned = 'ab \ufffd c\ufffd';

  it('in a PR from any source', async () => {
    const repo = await newRepository();
    await upsertPullRequests(f.t.db, repo, [item(scraped(1, {
      title: `Speed up ${bad}`, body: bad, author: bad, labels: [bad],
      files: [{ path: `pkg/${bad}.py`, additions: 1, deletions: 0 }],
    }))]);
    const pr = (await sql<any>`SELECT title, body, author, labels, files FROM pull_requests`.execute(f.t.db)).rows[0];
    expect(pr).toEqual({
      title: `Speed up ${cleaned}`, body: cleaned, author: cleaned, labels: [cleaned],
      files: [{ path: `pkg/${cleaned}.py`, additions: 1, deletions: 0 }],
    });
  });

  it('in the raw JSON of a rejected PR', async () => {
    const repo = await newRepository();
    await recordReject(f.t.db, repo, 3, `missing merge time ${bad}`, { number: 3, title: bad, [`key${bad}`]: [bad] });
    const reject = (await sql<any>`SELECT reason, raw FROM scrape_rejects`.execute(f.t.db)).rows[0];
    expect(reject).toEqual({ reason: `missing merge time ${cleaned}`, raw: { number: 3, title: cleaned, [`key${cleaned}`]: [cleaned] } });
  });

  it('in a repository description and topics, and a PR body, from GitHub', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, description: `Fast ${bad}`, topics: [bad], files: { 'asv.conf.json': '{}' } });
    f.standin.addPRs([{ ...hourlyPRs('acme/lib', 1, '2024-01-01T00:00:00Z')[0], title: `Speed up ${bad}`, body: bad }]);
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    const repo = (await sql<any>`SELECT description, topics, ingest_enabled FROM repositories`.execute(f.t.db)).rows[0];
    expect(repo).toEqual({ description: `Fast ${cleaned}`, topics: [cleaned], ingest_enabled: true });
    const pr = (await sql<any>`SELECT title, body FROM pull_requests`.execute(f.t.db)).rows[0];
    expect(pr).toEqual({ title: `Speed up ${cleaned}`, body: cleaned });
    await rescrape(f.t.db, f.daemon); // and a re-scrape finds nothing changed
    expect(await stageErrors()).toEqual([]);
  }, 30_000);
});
