import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { cleanText, jsonb } from '../domain/clean.js';
import type { ScrapedPR } from '../domain/pr.js';
import { onePerNumber } from '../domain/pr-batch.js';
import type { SymbolicReason } from '../domain/symbolic.js';

export interface PRToStore { pr: ScrapedPR; symbolic: SymbolicReason }

/**
 * Inserts or updates scraped PRs of one repository, keyed on (repository, number).
 * A row is rewritten only when a scraped field or the symbolic verdict
 * changed, so a re-scrape of unchanged history writes nothing. Judgements of
 * later stages are never touched. A PR reported twice in the batch is stored
 * once (see onePerNumber), and every text passes through cleanText, so one
 * odd record cannot fail the batch. Returns how many rows were inserted and updated.
 */
export async function upsertPullRequests(
  db: Kysely<Database> | Transaction<Database>, repositoryId: number, items: PRToStore[],
): Promise<{ inserted: number; updated: number }> {
  if (!items.length) return { inserted: 0, updated: 0 };
  const rows = onePerNumber(items).map(({ pr, symbolic }) => ({
    number: pr.number, title: pr.title, body: pr.body, author: pr.author, labels: pr.labels,
    pr_created_at: pr.createdAt, merged_at: pr.mergedAt, closed_at: pr.closedAt,
    merge_commit_sha: pr.mergeCommitSha, base_sha: pr.baseSha, head_sha: pr.headSha,
    files: pr.files, files_count: pr.filesCount, additions: pr.additions, deletions: pr.deletions,
    patch: pr.patch ?? null, symbolic: symbolic.verdict, symbolic_reason: symbolic,
  }));
  const { rows: result } = await sql<{ inserted: boolean }>`
    INSERT INTO pull_requests AS p (repository_id, number, title, body, author, labels, pr_created_at, merged_at,
      closed_at, merge_commit_sha, base_sha, head_sha, files, files_count, additions, deletions, patch, scraped_at,
      is_performance_commit_symbolic, symbolic_reason)
    SELECT ${repositoryId}, r.number, r.title, r.body, r.author, r.labels, r.pr_created_at, r.merged_at,
      r.closed_at, r.merge_commit_sha, r.base_sha, r.head_sha, r.files, r.files_count, r.additions, r.deletions,
      r.patch, now(), r.symbolic, r.symbolic_reason
    FROM jsonb_to_recordset(${jsonb(rows)}::jsonb) AS r(
      number integer, title text, body text, author text, labels text[], pr_created_at timestamptz,
      merged_at timestamptz, closed_at timestamptz, merge_commit_sha text, base_sha text, head_sha text,
      files jsonb, files_count integer, additions integer, deletions integer, patch text,
      symbolic boolean, symbolic_reason jsonb)
    ORDER BY r.number
    ON CONFLICT (repository_id, number) DO UPDATE SET
      title = EXCLUDED.title, body = EXCLUDED.body, author = EXCLUDED.author, labels = EXCLUDED.labels,
      pr_created_at = EXCLUDED.pr_created_at, merged_at = EXCLUDED.merged_at, closed_at = EXCLUDED.closed_at,
      merge_commit_sha = EXCLUDED.merge_commit_sha, base_sha = EXCLUDED.base_sha, head_sha = EXCLUDED.head_sha,
      files = EXCLUDED.files, files_count = EXCLUDED.files_count, additions = EXCLUDED.additions,
      deletions = EXCLUDED.deletions, patch = coalesce(EXCLUDED.patch, p.patch),
      is_performance_commit_symbolic = EXCLUDED.is_performance_commit_symbolic,
      symbolic_reason = EXCLUDED.symbolic_reason, scraped_at = now(), updated_at = now()
    WHERE (p.title, p.body, p.author, p.labels, p.pr_created_at, p.merged_at, p.closed_at, p.merge_commit_sha,
           p.base_sha, p.head_sha, p.files, p.files_count, p.additions, p.deletions,
           p.is_performance_commit_symbolic, p.symbolic_reason)
      IS DISTINCT FROM
          (EXCLUDED.title, EXCLUDED.body, EXCLUDED.author, EXCLUDED.labels, EXCLUDED.pr_created_at, EXCLUDED.merged_at,
           EXCLUDED.closed_at, EXCLUDED.merge_commit_sha, EXCLUDED.base_sha, EXCLUDED.head_sha, EXCLUDED.files,
           EXCLUDED.files_count, EXCLUDED.additions, EXCLUDED.deletions,
           EXCLUDED.is_performance_commit_symbolic, EXCLUDED.symbolic_reason)
       OR (EXCLUDED.patch IS NOT NULL AND EXCLUDED.patch IS DISTINCT FROM p.patch)
    RETURNING (xmax = 0) AS inserted`.execute(db);
  const inserted = result.filter((r) => r.inserted).length;
  return { inserted, updated: result.length - inserted };
}

/** Records a PR a source reported that could not be stored, with the reason (once per reason). */
export async function recordReject(
  db: Kysely<Database> | Transaction<Database>, repositoryId: number, number: number | null, reason: string, raw: unknown,
): Promise<void> {
  await sql`
    INSERT INTO scrape_rejects (repository_id, number, reason, raw)
    VALUES (${repositoryId}, ${number}, ${cleanText(reason)}, ${jsonb(raw)}::jsonb)
    ON CONFLICT (repository_id, number, reason) DO UPDATE SET raw = EXCLUDED.raw, created_at = now()`.execute(db);
}
