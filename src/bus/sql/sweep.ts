import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';

/**
 * The rescuer: leases whose worker stopped heartbeating go back to the pending
 * set (or to failed, past max attempts). The lost attempt is recorded, and
 * the stages concerned are woken on every daemon.
 */
export async function sweepExpired(db: Db, onExpired?: (stage: string, n: number) => void): Promise<number> {
  const { rows } = await sql<{ n: number; by_stage: Record<string, number> | null }>`
    WITH doomed AS (
      SELECT stage, subject_id, worker_id FROM leases
      WHERE worker_id IS NOT NULL AND expires_at < now()
      FOR UPDATE SKIP LOCKED
    ), swept AS (
      UPDATE leases l SET
        worker_id = NULL, expires_at = NULL,
        last_error = 'lease expired: worker ' || d.worker_id || ' stopped heartbeating',
        failed_at = CASE WHEN l.attempts >= l.max_attempts THEN now() END,
        retry_at = CASE WHEN l.attempts >= l.max_attempts THEN NULL ELSE now() END
      FROM doomed d WHERE l.stage = d.stage AND l.subject_id = d.subject_id
      RETURNING l.*, d.worker_id AS lost_worker
    ), recorded AS (
      INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, outcome, error)
      SELECT run_id, stage, subject_table, subject_id, attempts, lost_worker, claimed_at, 'lease_expired', last_error
      FROM swept ON CONFLICT (id) DO NOTHING
    ), rung AS (
      SELECT pg_notify('perfmine', 'stage:' || stage) FROM (SELECT DISTINCT stage FROM swept) x
    )
    SELECT (SELECT count(*) FROM swept) AS n, (SELECT count(*) FROM rung) AS bells,
           (SELECT json_object_agg(stage, k) FROM (SELECT stage, count(*) AS k FROM swept GROUP BY stage) x) AS by_stage`.execute(db);
  for (const [stage, k] of Object.entries(rows[0]?.by_stage ?? {})) onExpired?.(stage, Number(k));
  return Number(rows[0]?.n ?? 0);
}
