import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { markUnreusable } from './candidate-containers.js';

type Q = Kysely<Database> | Transaction<Database>;

/** What a stage records in its attempt's cost when it sent a PR back for a new environment. */
export const ENVIRONMENT_GONE_COST = 'environment_gone';

/**
 * Sends a PR back to stage 6 because its verified environment is gone: the
 * environment is never offered from the cache again, the PR's environment
 * columns are cleared and stage 6's output (`env_built_at`) is set back to
 * NULL: the bus's re-request, so stage 6 builds it once more.
 */
export async function requestRebuild(db: Q, prId: number, envRef: string | null, reason: string): Promise<void> {
  if (envRef) await markUnreusable(db, envRef);
  await sql`
    UPDATE pull_requests SET container_name = NULL, environment_digest = NULL, executor = NULL,
      env_built_at = NULL, build_reason = ${reason}, updated_at = now()
    WHERE id = ${prId}`.execute(db);
}

/** How many times stage `stage` already sent this PR back because its environment was gone (its successful attempts that say so). */
export async function rebuildsRequested(db: Q, stage: string, prId: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM stage_runs
    WHERE subject_table = 'pull_requests' AND subject_id = ${prId} AND stage = ${stage}
      AND outcome = 'succeeded' AND cost ? ${ENVIRONMENT_GONE_COST}`.execute(db);
  return rows[0].n;
}
