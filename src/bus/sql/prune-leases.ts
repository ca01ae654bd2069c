import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';

/**
 * Leases that no longer stand for work: a retry or failure of a row that was
 * deleted, or that no longer needs the stage (someone set its output by
 * hand). Held leases are left alone (their attempt is still running).
 * Returns how many were removed.
 */
export async function pruneLeases(db: Db): Promise<number> {
  const { rows: stages } = await sql<{ name: string; subject_table: string; pending_sql: string }>`
    SELECT name, subject_table, pending_sql FROM stages WHERE to_regclass(quote_ident(subject_table)) IS NOT NULL`.execute(db);
  let removed = 0;
  for (const s of stages) {
    const { rows } = await sql<{ n: number }>`
      WITH gone AS (
        DELETE FROM leases l WHERE l.stage = ${s.name} AND l.worker_id IS NULL
          AND NOT EXISTS (SELECT 1 FROM ${sql.id(s.subject_table)} s WHERE s.id = l.subject_id AND (${sql.raw(s.pending_sql)}))
        RETURNING 1
      ) SELECT count(*)::int AS n FROM gone`.execute(db);
    removed += rows[0]?.n ?? 0;
  }
  return removed;
}
