import os from 'node:os';
import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';
import type { StageDefinition } from '../stage.js';

/** Any constant works; it only has to be the same for every perfmine process. */
const REGISTER_LOCK_KEY = 7_245_047_510;

/** Doorbell payloads a stage listens to: its wakeOn list (default its table) and its own output columns. */
export function doorbellsOf(stage: StageDefinition): string[] {
  return [...new Set([...(stage.wakeOn ?? [stage.subjectTable]), ...stage.writes.map((c) => `${stage.subjectTable}.${c}`)])];
}

/**
 * Records the stage declarations so the funnel view can evaluate them, gives
 * each a settings row people can edit (existing settings are kept), and makes
 * what the declarations need on their subject tables where it is missing: the
 * `failed_stages` column, a doorbell trigger for every payload the stage
 * wakes on, and a re-request trigger for every output column. Serialized by
 * an advisory lock, so daemons starting together do not race on DDL.
 */
export async function registerStages(db: Db, stages: StageDefinition[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${REGISTER_LOCK_KEY})`.execute(trx);
    for (const table of new Set(stages.map((s) => s.subjectTable))) {
      const { rows } = await sql`SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ${table} AND column_name = 'failed_stages'`.execute(trx);
      if (!rows.length) await sql`ALTER TABLE ${sql.id(table)} ADD COLUMN failed_stages text[] NOT NULL DEFAULT '{}'`.execute(trx);
    }
    for (const s of stages) {
      for (const payload of doorbellsOf(s)) {
        const [table, column] = payload.split('.');
        await sql`SELECT perfmine_ensure_doorbell(${table}, ${column ?? null})`.execute(trx);
      }
      for (const column of s.outputs) await sql`SELECT perfmine_ensure_rerequest(${s.subjectTable}, ${column})`.execute(trx);
      await sql`
        INSERT INTO stages (name, ordinal, subject_table, pending_sql, done_sql, since_sql, rate_limit_groups, description,
                            outputs, wake_on, order_sql)
        VALUES (${s.name}, ${s.ordinal}, ${s.subjectTable}, ${s.pending}, ${s.done}, ${s.since ?? 's.created_at'},
                ${s.rateLimitGroups ?? []}::text[], ${s.description ?? null}, ${s.outputs}::text[], ${doorbellsOf(s)}::text[],
                ${s.order ?? 's.id'})
        ON CONFLICT (name) DO UPDATE SET ordinal = EXCLUDED.ordinal, subject_table = EXCLUDED.subject_table,
          pending_sql = EXCLUDED.pending_sql, done_sql = EXCLUDED.done_sql, since_sql = EXCLUDED.since_sql,
          rate_limit_groups = EXCLUDED.rate_limit_groups, description = EXCLUDED.description,
          outputs = EXCLUDED.outputs, wake_on = EXCLUDED.wake_on, order_sql = EXCLUDED.order_sql, registered_at = now()`.execute(trx);
      await sql`INSERT INTO stage_settings (stage) VALUES (${s.name}) ON CONFLICT DO NOTHING`.execute(trx);
    }
  });
}

export async function registerWorker(db: Db, workerId: string, stages: string[]): Promise<void> {
  await sql`
    INSERT INTO workers (id, hostname, pid, stages) VALUES (${workerId}, ${os.hostname()}, ${process.pid}, ${stages})
    ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, stages = EXCLUDED.stages,
      started_at = now(), last_seen_at = now(), stopped_at = NULL`.execute(db);
}

export async function markWorkerStopped(db: Db, workerId: string): Promise<void> {
  await sql`UPDATE workers SET stopped_at = now() WHERE id = ${workerId}`.execute(db);
}
