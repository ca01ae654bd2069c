import { sql } from 'kysely';
import type { HandlerContext, StageDefinition, SubjectRow } from '../bus/stage.js';
import { mineGitPRs } from '../adapters/git/git-source.js';
import { mergedWindows } from '../adapters/github/merged-windows.js';
import { needsFileFallback, normalizePRNode } from '../adapters/github/normalize.js';
import type { ScrapedPR } from '../domain/pr.js';
import { cursorAfterSeen, scrapeWindow, type ScrapeWindowSettings } from '../domain/scrape-window.js';
import { symbolicVerdict, type SymbolicSettings } from '../domain/symbolic.js';
import { recordReject, upsertPullRequests, type PRToStore } from '../store/upsert-pull-requests.js';
import type { StageDeps } from './deps.js';

/** Before GitHub had pull requests: "everything" starts here. */
const GITHUB_EPOCH = new Date('2008-01-01T00:00:00Z');
/** PRs of a git source stored per checkpoint. */
const GIT_BATCH = 500;

export interface ScrapeTotals { windows: number; prs: number; inserted: number; updated: number; rejected: number; api_calls: number }

interface Reject { number: number | null; reason: string; raw: unknown }
/** Stores one batch and, when given, moves the cursor forward to `cursor` (never back). */
type Store = (prs: ScrapedPR[], rejects: Reject[], cursor: Date | null) => Promise<void>;

/**
 * Stage 2, scrape_commits: every merged PR of an enabled repository, from its
 * cursor on, stored with its symbolic verdict. The cursor only moves to what
 * the source really showed: for GitHub, the end of each window read, which
 * stops PERFMINE_SCRAPE_LAG_S before now (search indexes new merges late), and
 * each scrape reads PERFMINE_SCRAPE_OVERLAP_S before the cursor again; for a
 * git clone, the newest merge it holds. Each window is stored with
 * ctx.checkpoint, together with the cursor, so a crash resumes where it
 * stopped and a worker that lost its lease writes nothing.
 * Setting last_scraped_at back to NULL asks for a new scrape from the cursor;
 * setting scrape_cursor to NULL too re-reads everything.
 */
export function scrapeCommits(deps: StageDeps): StageDefinition {
  const { config } = deps;
  const symbolic: SymbolicSettings = { rule: config.PERFMINE_SYMBOLIC_RULE, maxFiles: config.PERFMINE_MAX_FILES, maxLines: config.PERFMINE_MAX_LINES };
  const defaultSince = config.PERFMINE_SCRAPE_SINCE ? new Date(config.PERFMINE_SCRAPE_SINCE) : GITHUB_EPOCH;
  const github: ScrapeWindowSettings = { lagSeconds: config.PERFMINE_SCRAPE_LAG_S, overlapSeconds: config.PERFMINE_SCRAPE_OVERLAP_S };
  // A clone is consistent with itself: no lag, but the same overlap (git commit dates are not monotonic).
  const git: ScrapeWindowSettings = { lagSeconds: 0, overlapSeconds: config.PERFMINE_SCRAPE_OVERLAP_S };
  return {
    name: 'scrape_commits', ordinal: 2, subjectTable: 'repositories',
    description: 'merged PRs of a repository + symbolic perf verdict',
    pending: 's.ingest_enabled AND s.metadata_fetched_at IS NOT NULL AND s.last_scraped_at IS NULL',
    done: 's.last_scraped_at IS NOT NULL',
    since: 's.updated_at',
    wakeOn: ['repositories.metadata_fetched_at', 'repositories.ingest_enabled', 'repositories.last_scraped_at'],
    writes: ['last_scraped_at', 'updated_at'], outputs: ['last_scraped_at'],
    concurrency: config.PERFMINE_SCRAPE_CONCURRENCY,
    leaseSeconds: 300, deadlineSeconds: 6 * 3600, maxAttempts: 8, backoff: { baseMs: 10_000, maxMs: 3_600_000 },
    rateLimitGroups: ['github'],
    async handle(repo: SubjectRow, ctx) {
      const isGit = repo.source === 'git';
      const { from, to } = scrapeWindow(
        { cursor: repo.scrape_cursor ?? null, since: repo.scrape_since ?? defaultSince, now: new Date() }, isGit ? git : github);
      const totals: ScrapeTotals = { windows: 0, prs: 0, inserted: 0, updated: 0, rejected: 0, api_calls: 0 };
      const store: Store = (prs, rejects, cursor) =>
        storeWindow(ctx, repo.id, prs.map((pr) => ({ pr, symbolic: symbolicVerdict(pr, symbolic) })), rejects, cursor, totals);
      try {
        if (isGit) await scrapeGit(repo, from, to, ctx, store);
        else await scrapeGitHub(deps, repo, from, to, ctx, store, totals);
      } finally {
        ctx.addCost({ api_calls: totals.api_calls });
      }
      ctx.log.info({ repo: `${repo.owner}/${repo.name}`, from, to, ...totals }, 'scraped merged PRs');
      const now = new Date().toISOString();
      return { set: { last_scraped_at: now, updated_at: now }, cost: { windows: totals.windows, prs: totals.prs, inserted: totals.inserted } };
    },
  };
}

async function scrapeGitHub(deps: StageDeps, repo: SubjectRow, from: Date, to: Date, ctx: HandlerContext, store: Store, totals: ScrapeTotals) {
  const fetchPage = (a: Date, b: Date, after: string | null) => {
    totals.api_calls++;
    return deps.github.mergedPRsPage(repo.owner, repo.name, a, b, after, ctx.signal);
  };
  for await (const window of mergedWindows(fetchPage, from, to, ctx.signal)) {
    const prs: ScrapedPR[] = [];
    const rejects: Reject[] = [];
    for (const node of window.nodes) {
      const n = normalizePRNode(node);
      if ('reject' in n) {
        rejects.push({ number: n.number, reason: n.reject, raw: node });
        continue;
      }
      if (node && needsFileFallback(node)) {
        totals.api_calls++;
        const files = await deps.github.pullFiles(repo.owner, repo.name, n.pr.number, ctx.signal);
        if (files.length > n.pr.files.length) n.pr.files = files;
      }
      prs.push(n.pr);
    }
    // The window was read whole: everything merged before its end has been seen.
    await store(prs, rejects, window.to);
  }
}

/**
 * A clone yields its PRs newest first, so the cursor can move only once all
 * are stored, and only to the newest merge the clone holds: a clone fetched
 * long ago must not move it past history it has not seen yet.
 */
async function scrapeGit(repo: SubjectRow, from: Date, to: Date, ctx: HandlerContext, store: Store) {
  if (!repo.git_path) throw new Error('repository has source = git but no git_path');
  let newest: Date | null = null;
  let batch: ScrapedPR[] = [];
  for await (const pr of mineGitPRs(repo.git_path, { since: from, until: to, signal: ctx.signal })) {
    batch.push(pr);
    newest = cursorAfterSeen(newest, [pr.mergedAt]);
    if (batch.length >= GIT_BATCH) {
      await store(batch, [], null);
      batch = [];
    }
  }
  await store(batch, [], newest);
}

/** One window's PRs and rejects, and the cursor, in one fenced transaction. */
async function storeWindow(
  ctx: HandlerContext, repositoryId: number, items: PRToStore[], rejects: Reject[], cursor: Date | null, totals: ScrapeTotals,
): Promise<void> {
  ctx.signal.throwIfAborted();
  if (!items.length && !rejects.length && !cursor) return;
  await ctx.checkpoint(async (trx) => {
    const r = await upsertPullRequests(trx, repositoryId, items);
    totals.inserted += r.inserted;
    totals.updated += r.updated;
    for (const j of rejects) await recordReject(trx, repositoryId, j.number, j.reason, j.raw);
    if (cursor) {
      // GREATEST: an overlapping re-read ends its first windows before the cursor it started from.
      await sql`UPDATE repositories SET scrape_cursor = GREATEST(scrape_cursor, ${cursor.toISOString()}::timestamptz), updated_at = now()
                WHERE id = ${repositoryId}`.execute(trx);
    }
  });
  totals.windows++;
  totals.prs += items.length;
  totals.rejected += rejects.length;
}
