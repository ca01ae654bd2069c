import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';

/**
 * Extends this worker's leases; returns the run ids it no longer holds. A
 * lease this worker holds but does not know of (a claim that committed while
 * its answer was lost to a dropped connection) is given back, uncounted, once
 * it is older than any claim still in flight could be.
 */
export async function heartbeat(db: Db, workerId: string, runIds: number[]): Promise<number[]> {
  const { rows } = await sql<{ run_id: number; kept: boolean }>`
    WITH seen AS (
      UPDATE workers SET last_seen_at = now() WHERE id = ${workerId}
    ), extended AS (
      UPDATE leases SET expires_at = now() + make_interval(secs => lease_seconds)
      WHERE worker_id = ${workerId} AND run_id = ANY(${runIds}::bigint[])
      RETURNING run_id
    ), unknown AS (
      UPDATE leases SET worker_id = NULL, expires_at = NULL, retry_at = NULL, attempts = GREATEST(attempts - 1, 0),
        last_error = 'claim answer lost by ' || ${workerId} || '; given back'
      WHERE worker_id = ${workerId} AND NOT (run_id = ANY(${runIds}::bigint[])) AND claimed_at < now() - interval '30 seconds'
      RETURNING run_id
    )
    SELECT run_id, true AS kept FROM extended
    UNION ALL SELECT run_id, false FROM unknown`.execute(db);
  const held = new Set(rows.filter((r) => r.kept).map((r) => Number(r.run_id)));
  return runIds.filter((id) => !held.has(id));
}
