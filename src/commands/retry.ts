import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

export interface RetryFilters {
  /** Only the row with this id (of the stage's subject table). */
  id?: number;
  /** Only rows whose last error contains this text (case-insensitive, taken literally). */
  errorLike?: string;
}

/** `perfmine retry STAGE [--id N] [--error-like TEXT]`: failed rows become ready again with a fresh attempt budget. */
export async function retryFailedWhere(db: Db, stage: string, f: RetryFilters = {}): Promise<number> {
  const pattern = f.errorLike === undefined ? null : `%${f.errorLike.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const { rows } = await sql<{ n: number }>`
    WITH retried AS (
      UPDATE leases SET failed_at = NULL, retry_at = NULL, attempts = 0
      WHERE stage = ${stage} AND failed_at IS NOT NULL
        AND (${f.id ?? null}::bigint IS NULL OR subject_id = ${f.id ?? null}::bigint)
        AND (${pattern}::text IS NULL OR last_error ILIKE ${pattern}::text)
      RETURNING 1)
    SELECT count(*)::int AS n, pg_notify('perfmine', 'stage:' || ${stage}::text) IS NULL AS bell FROM retried`.execute(db);
  return rows[0]?.n ?? 0;
}
