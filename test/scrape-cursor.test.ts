import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LeaseLostError } from '../src/bus/stage.js';
import { addRepo } from '../src/commands/add-repo.js';
import { scrapeWindow } from '../src/domain/scrape-window.js';
import { GitHubStandin } from '../src/standins/github/server.js';
import { discoverFixture, discoverStages, handlerContext, hourlyPRs, prCount, rescrape, startDiscoverDaemon } from './helpers/discover.js';
import { makeGitRepo } from './helpers/git-repo.js';

const f = discoverFixture();

const numbers = async () =>
  (await sql<{ number: number }>`SELECT number FROM pull_requests ORDER BY number`.execute(f.t.db)).rows.map((r) => r.number);
const cursor = async (): Promise<Date | null> =>
  (await sql<{ scrape_cursor: Date | null }>`SELECT scrape_cursor FROM repositories`.execute(f.t.db)).rows[0].scrape_cursor;

describe('scrapeWindow', () => {
  const settings = { lagSeconds: 900, overlapSeconds: 3600 };
  const since = new Date('2008-01-01T00:00:00Z');
  const now = new Date('2026-05-01T12:00:00.750Z');

  it('reads from the start up to now minus the lag, at whole seconds', () => {
    expect(scrapeWindow({ cursor: null, since, now }, settings)).toEqual({ from: since, to: new Date('2026-05-01T11:45:00Z') });
  });

  it('starts again an overlap before the cursor, but never before since', () => {
    const cursor = new Date('2026-04-01T00:00:00Z');
    expect(scrapeWindow({ cursor, since, now }, settings).from).toEqual(new Date('2026-03-31T23:00:00Z'));
    const lateSince = new Date('2026-03-31T23:30:00Z');
    expect(scrapeWindow({ cursor, since: lateSince, now }, settings).from).toEqual(lateSince);
  });
});

describe('scrape cursor: only what the source really showed', () => {
  it('a PR that GitHub search shows late is stored by the next scrape', async () => {
    // Search shows a merge only 20 minutes after it happened: longer than the lag (15 min).
    f.standin = await GitHubStandin.start({ searchVisibilityDelayS: 1200 });
    f.standin.addRepo({ owner: 'acme', name: 'lib', stars: 900, files: { 'asv.conf.json': '{}' } });
    const now = Date.now();
    f.standin.addPRs([
      ...hourlyPRs('acme/lib', 3, now - 10 * 3_600_000),
      ...hourlyPRs('acme/lib', 1, now - 1_000_000, 4), // merged 1000 s ago: past the lag, not yet in the index
    ]);
    f.daemon = await startDiscoverDaemon(f.t, f.standin.url);
    await addRepo(f.t.db, 'acme/lib');
    await f.daemon.whenIdle();
    expect(await numbers()).toEqual([1, 2, 3]);
    // The cursor stops at the window's end, the lag before now, not at now.
    expect((await cursor())!.getTime()).toBeLessThanOrEqual(Date.now() - 900_000);

    f.standin.searchVisibilityDelayS = 0; // time passed: the index has caught up
    await rescrape(f.t.db, f.daemon);
    expect(await numbers()).toEqual([1, 2, 3, 4]);
    const failures = (await sql`SELECT * FROM failures`.execute(f.t.db)).rows;
    expect(failures).toEqual([]);
  }, 30_000);

  it('a stale clone that later gets new history is read in full, and the cursor stays at the newest merge seen', async () => {
    const { dir, git } = makeGitRepo(); // PRs 1-3, merged in January 2024
    try {
      f.daemon = await startDiscoverDaemon(f.t, 'http://127.0.0.1:9'); // no GitHub at all
      await addRepo(f.t.db, 'local/pkg', { gitPath: dir });
      await f.daemon.whenIdle();
      expect(await numbers()).toEqual([1, 2, 3]);
      const newestMerge = (await sql<{ m: Date }>`SELECT max(merged_at) AS m FROM pull_requests`.execute(f.t.db)).rows[0].m;
      expect(await cursor()).toEqual(newestMerge);

      // Nothing new in the clone: the cursor does not move.
      await rescrape(f.t.db, f.daemon);
      expect(await cursor()).toEqual(newestMerge);

      // The clone is fetched: PRs merged since its last fetch, long before today.
      writeFileSync(path.join(dir, 'pkg/core.py'), 'def f(xs):\n    return xs\n');
      git('commit', '-qam', 'Avoid copying xs (#4)');
      await rescrape(f.t.db, f.daemon);
      expect(await numbers()).toEqual([1, 2, 3, 4]);
      expect((await cursor())!.getTime()).toBeGreaterThan(newestMerge.getTime());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('scrape_commits writes only while it holds the row', () => {
  it('a worker whose lease was taken over stores no window and leaves the cursor', async () => {
    f.standin = await GitHubStandin.start();
    f.standin.addPRs(hourlyPRs('acme/lib', 5, '2024-01-01T00:00:00Z'));
    const repo = (await sql<any>`INSERT INTO repositories (owner, name, metadata_fetched_at) VALUES ('acme', 'lib', now())
                                 RETURNING *`.execute(f.t.db)).rows[0];
    const scrape = discoverStages(f.standin.url).find((s) => s.name === 'scrape_commits')!;
    const lost = { stage: 'scrape_commits', subjectId: repo.id, runId: 41, workerId: 'a-worker-that-lost-its-lease' };
    await expect(scrape.handle(repo, handlerContext(f.t.db, lost))).rejects.toBeInstanceOf(LeaseLostError);
    expect(await prCount(f.t.db)).toBe(0);
    expect(await cursor()).toBeNull();
  });

  it('stops promptly when its attempt is aborted mid-request', async () => {
    f.standin = await GitHubStandin.start({ latencyMs: 5_000 });
    f.standin.addPRs(hourlyPRs('acme/lib', 5, '2024-01-01T00:00:00Z'));
    const repo = (await sql<any>`INSERT INTO repositories (owner, name, metadata_fetched_at) VALUES ('acme', 'lib', now())
                                 RETURNING *`.execute(f.t.db)).rows[0];
    const scrape = discoverStages(f.standin.url).find((s) => s.name === 'scrape_commits')!;
    const controller = new AbortController();
    const lease = { stage: 'scrape_commits', subjectId: repo.id, runId: 42, workerId: 'w' };
    setTimeout(() => controller.abort(new Error('lease lost')), 200);
    const t0 = Date.now();
    await expect(scrape.handle(repo, handlerContext(f.t.db, lease, controller.signal))).rejects.toThrow('lease lost');
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});
