import { sql } from 'kysely';
import type { HandlerContext, StageDefinition, SubjectRow } from '../bus/stage.js';
import { mineGitPRs } from '../adapters/git/git-source.js';
import { mergedWindows } from '../adapters/github/merged-windows.js';
import { needsFileFallback, normalizePRNode } from '../adapters/github/normalize.js';
import type { ScrapedPR } from '../domain/pr.js';
import { symbolicVerdict, type SymbolicSettings } from '../domain/symbolic.js';
import { recordReject, upsertPullRequests, type PRToStore } from '../store/upsert-pull-requests.js';
import type { StageDeps } from './deps.js';

/** Before GitHub had pull requests: "everything" starts here. */
const GITHUB_EPOCH = new Date('2008-01-01T00:00:00Z');

export interface ScrapeTotals { windows: number; prs: number; inserted: number; updated: number; rejected: number; api_calls: number }

/**
 * Stage 2, scrape_commits: every merged PR of an enabled repository, from its
 * cursor to now, stored with its symbolic verdict. Each window is stored and
 * the cursor advanced in one transaction, so a crash resumes where it stopped.
 * Setting last_scraped_at back to NULL asks for a new scrape from the cursor;
 * setting scrape_cursor to NULL too re-reads everything.
 */
export function scrapeCommits(deps: StageDeps): StageDefinition {
  const symbolic: SymbolicSettings = {
    rule: deps.config.PERFMINE_SYMBOLIC_RULE, maxFiles: deps.config.PERFMINE_MAX_FILES, maxLines: deps.config.PERFMINE_MAX_LINES,
  };
  const defaultSince = deps.config.PERFMINE_SCRAPE_SINCE ? new Date(deps.config.PERFMINE_SCRAPE_SINCE) : GITHUB_EPOCH;
  return {
    name: 'scrape_commits', ordinal: 2, subjectTable: 'repositories',
    description: 'merged PRs of a repository + symbolic perf verdict',
    pending: 's.ingest_enabled AND s.metadata_fetched_at IS NOT NULL AND s.last_scraped_at IS NULL',
    done: 's.last_scraped_at IS NOT NULL',
    since: 's.updated_at',
    wakeOn: ['repositories.metadata_fetched_at', 'repositories.ingest_enabled', 'repositories.last_scraped_at'],
    writes: ['last_scraped_at', 'updated_at'], outputs: ['last_scraped_at'],
    concurrency: deps.config.PERFMINE_SCRAPE_CONCURRENCY,
    leaseSeconds: 300, deadlineSeconds: 6 * 3600, maxAttempts: 8, backoff: { baseMs: 10_000, maxMs: 3_600_000 },
    rateLimitGroups: ['github'],
    async handle(repo: SubjectRow, ctx) {
      const from = repo.scrape_cursor ?? repo.scrape_since ?? defaultSince;
      const to = new Date(Math.floor(Date.now() / 1000) * 1000);
      const totals: ScrapeTotals = { windows: 0, prs: 0, inserted: 0, updated: 0, rejected: 0, api_calls: 0 };
      const store = (prs: ScrapedPR[], rejects: Array<{ number: number | null; reason: string; raw: unknown }>, cursor: Date | null) =>
        storeWindow(ctx, repo.id, prs.map((pr) => ({ pr, symbolic: symbolicVerdict(pr, symbolic) })), rejects, cursor, totals);
      try {
        if (repo.source === 'git') await scrapeGit(repo, from, to, ctx, store);
        else await scrapeGitHub(deps, repo, from, to, ctx, store, totals);
      } finally {
        ctx.addCost({ api_calls: totals.api_calls });
      }
      ctx.log.info({ repo: `${repo.owner}/${repo.name}`, ...totals }, 'scraped merged PRs');
      const now = new Date().toISOString();
      return { set: { last_scraped_at: now, updated_at: now }, cost: { windows: totals.windows, prs: totals.prs, inserted: totals.inserted } };
    },
  };
}

type Store = (prs: ScrapedPR[], rejects: Array<{ number: number | null; reason: string; raw: unknown }>, cursor: Date | null) => Promise<void>;

async function scrapeGitHub(deps: StageDeps, repo: SubjectRow, from: Date, to: Date, ctx: HandlerContext, store: Store, totals: ScrapeTotals) {
  const fetchPage = (a: Date, b: Date, after: string | null) => {
    totals.api_calls++;
    return deps.github.mergedPRsPage(repo.owner, repo.name, a, b, after);
  };
  for await (const window of mergedWindows(fetchPage, from, to, ctx.signal)) {
    const prs: ScrapedPR[] = [];
    const rejects: Array<{ number: number | null; reason: string; raw: unknown }> = [];
    for (const node of window.nodes) {
      const n = normalizePRNode(node);
      if ('reject' in n) {
        rejects.push({ number: n.number, reason: n.reject, raw: node });
        continue;
      }
      if (node && needsFileFallback(node)) {
        totals.api_calls++;
        const files = await deps.github.pullFiles(repo.owner, repo.name, n.pr.number);
        if (files.length > n.pr.files.length) n.pr.files = files;
      }
      prs.push(n.pr);
    }
    await store(prs, rejects, window.to);
  }
}

async function scrapeGit(repo: SubjectRow, from: Date, to: Date, ctx: HandlerContext, store: Store) {
  if (!repo.git_path) throw new Error('repository has source = git but no git_path');
  let batch: ScrapedPR[] = [];
  for await (const pr of mineGitPRs(repo.git_path, { since: from, until: to, signal: ctx.signal })) {
    batch.push(pr);
    if (batch.length >= 500) {
      await store(batch, [], null);
      batch = [];
    }
  }
  await store(batch, [], to); // git history is read newest first: the cursor moves only at the end
}

/** One window's PRs and rejects, and the cursor, in one transaction. */
async function storeWindow(
  ctx: HandlerContext, repositoryId: number, items: PRToStore[],
  rejects: Array<{ number: number | null; reason: string; raw: unknown }>, cursor: Date | null, totals: ScrapeTotals,
): Promise<void> {
  ctx.signal.throwIfAborted();
  await ctx.db.transaction().execute(async (trx) => {
    const r = await upsertPullRequests(trx, repositoryId, items);
    totals.inserted += r.inserted;
    totals.updated += r.updated;
    for (const j of rejects) await recordReject(trx, repositoryId, j.number, j.reason, j.raw);
    if (cursor) {
      await sql`UPDATE repositories SET scrape_cursor = ${cursor.toISOString()}::timestamptz, updated_at = now()
                WHERE id = ${repositoryId}`.execute(trx);
    }
  });
  totals.windows++;
  totals.prs += items.length;
  totals.rejected += rejects.length;
}
