import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';
import type { Claim } from '../driver.js';
import type { StageDefinition } from '../stage.js';

/**
 * Claims up to `limit` rows of the stage's pending set in one short statement:
 * candidates are locked with FOR UPDATE SKIP LOCKED (so concurrent claimers
 * pass each other by), and the lease row is the fence: its primary key and
 * the ON CONFLICT ... WHERE re-check make a second claim of the same row
 * impossible even across daemons. Nothing is claimed while the stage is paused
 * or its rate-limit group is waiting. Rows the stage gave up on carry its name
 * in `failed_stages`; the condition is a literal so a partial index that
 * leaves them out can serve the claim.
 */
export async function claim(db: Db, stage: StageDefinition, limit: number, workerId: string): Promise<Claim[]> {
  if (limit <= 0) return [];
  const table = sql.id(stage.subjectTable);
  const { rows } = await sql<Record<string, any>>`
    WITH gate AS (
      SELECT NOT EXISTS (SELECT 1 FROM stage_settings WHERE stage = ${stage.name} AND paused)
         AND NOT EXISTS (SELECT 1 FROM rate_limit_pauses
                          WHERE group_name = ANY(${stage.rateLimitGroups ?? []}::text[]) AND until > now()) AS open
    ), candidates AS (
      SELECT s.id FROM ${table} s
      WHERE (SELECT open FROM gate)
        AND (${sql.raw(stage.pending)})
        AND NOT (s.failed_stages @> ARRAY[${sql.lit(stage.name)}]::text[])
        AND NOT EXISTS (
          SELECT 1 FROM leases l
          WHERE l.stage = ${stage.name} AND l.subject_id = s.id
            AND (l.worker_id IS NOT NULL OR l.failed_at IS NOT NULL OR l.retry_at > now()))
      ORDER BY ${sql.raw(stage.order ?? 's.id')}
      LIMIT ${limit}
      FOR UPDATE OF s SKIP LOCKED
    ), claimed AS (
      INSERT INTO leases AS l (stage, subject_id, subject_table, run_id, worker_id, claimed_at,
                               expires_at, lease_seconds, attempts, max_attempts)
      SELECT ${stage.name}, c.id, ${stage.subjectTable}, nextval('run_ids'), ${workerId}, now(),
             now() + make_interval(secs => ${stage.leaseSeconds}), ${stage.leaseSeconds}, 1, ${stage.maxAttempts}
      FROM candidates c
      ON CONFLICT (stage, subject_id) DO UPDATE
        SET run_id = EXCLUDED.run_id, worker_id = EXCLUDED.worker_id, claimed_at = EXCLUDED.claimed_at,
            expires_at = EXCLUDED.expires_at, lease_seconds = EXCLUDED.lease_seconds,
            max_attempts = EXCLUDED.max_attempts, attempts = l.attempts + 1, retry_at = NULL
        WHERE l.worker_id IS NULL AND l.failed_at IS NULL AND (l.retry_at IS NULL OR l.retry_at <= now())
      RETURNING l.subject_id, l.run_id, l.attempts, l.claimed_at
    )
    SELECT c.run_id AS "__run_id", c.attempts AS "__attempt", c.claimed_at AS "__claimed_at", s.*
    FROM claimed c JOIN ${table} s ON s.id = c.subject_id
  `.execute(db);
  return rows.map(({ __run_id, __attempt, __claimed_at, ...row }) => ({
    stage: stage.name,
    runId: Number(__run_id),
    attempt: Number(__attempt),
    claimedAt: __claimed_at as Date,
    row: row as Claim['row'],
  }));
}
