import { sql, type Transaction } from 'kysely';
import type { Db } from '../../db/connect.js';
import type { Database } from '../../db/schema.js';
import { LeaseLostError } from '../stage.js';

export interface LeaseKey { stage: string; subjectId: number; runId: number; workerId: string }

/**
 * A handler's own writes, fenced: the transaction first locks this attempt's
 * lease row FOR SHARE. Completion, sweeping and takeover all update or delete
 * that row, so they wait for the checkpoint to commit, and a checkpoint that
 * starts after the lease moved on finds no row and writes nothing.
 */
export async function checkpoint<T>(db: Db, lease: LeaseKey, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql`
      SELECT 1 FROM leases
      WHERE stage = ${lease.stage} AND subject_id = ${lease.subjectId} AND run_id = ${lease.runId} AND worker_id = ${lease.workerId}
      FOR SHARE`.execute(trx);
    if (!rows.length) throw new LeaseLostError();
    return fn(trx);
  });
}
