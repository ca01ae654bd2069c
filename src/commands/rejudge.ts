import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

export interface RejudgeFilters {
  /** Only PRs judged with other prompts than the ones in use now (prompts.judge). */
  promptChanged?: boolean;
  /** Only this repository's PRs. */
  repositoryId?: number;
  /** Only PRs merged at or after this time. */
  since?: Date;
}

/**
 * `perfmine rejudge`: re-requests the judge stage (classify_prs) for the PRs
 * that pass stage 2's symbolic filter and match the filters, by setting its
 * output `is_performance_commit` back to NULL: the re-request trigger gives
 * each a fresh attempt budget (a failed lease too), and the doorbell wakes
 * the daemons. Later stages keep what they already did. Returns how many.
 */
export async function rejudge(db: Db, f: RejudgeFilters): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    WITH hit AS (
      UPDATE pull_requests p SET is_performance_commit = NULL, updated_at = now()
      WHERE p.is_performance_commit_symbolic
        AND (${!f.promptChanged}::boolean OR p.judge_prompt_hash IS DISTINCT FROM (SELECT hash FROM prompts WHERE name = 'judge'))
        AND (${f.repositoryId ?? null}::bigint IS NULL OR p.repository_id = ${f.repositoryId ?? null}::bigint)
        AND (${f.since?.toISOString() ?? null}::timestamptz IS NULL OR p.merged_at >= ${f.since?.toISOString() ?? null}::timestamptz)
      RETURNING 1)
    SELECT count(*)::int AS n FROM hit`.execute(db);
  return rows[0]?.n ?? 0;
}
