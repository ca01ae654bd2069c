import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';
import type { LocalResource } from '../stage.js';

export interface ResourceRequest { host: string; runId: number; stage: string; resource: LocalResource }

/**
 * One try at taking a host-local resource for an attempt. Holders are
 * attempts; a row whose lease is no longer held is cleared first (a crashed
 * daemon frees what it held once its lease is swept). An exclusive request
 * waits for every holder; a shared one for exclusive holders and for
 * exclusive requests already waiting (so a stream of builds cannot starve a
 * benchmark). Returns true when held; otherwise the request is recorded as
 * waiting and the caller tries again later.
 */
export async function tryAcquire(db: Db, r: ResourceRequest): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const lockKey = `${r.host}\u0000${r.resource.name}`;
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${lockKey}, 0))`.execute(trx);
    await sql`
      DELETE FROM host_resources h WHERE h.host = ${r.host} AND h.resource = ${r.resource.name}
        AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = h.run_id AND l.worker_id IS NOT NULL)`.execute(trx);
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM host_resources h
      WHERE h.host = ${r.host} AND h.resource = ${r.resource.name} AND h.run_id <> ${r.runId}
        AND (h.state = 'held' AND (${r.resource.mode} = 'exclusive' OR h.mode = 'exclusive')
          OR h.state = 'waiting' AND h.mode = 'exclusive' AND ${r.resource.mode} = 'shared'
             AND h.since < coalesce((SELECT since FROM host_resources WHERE run_id = ${r.runId} AND resource = ${r.resource.name}), now()))`.execute(trx);
    const free = rows[0].n === 0;
    await sql`
      INSERT INTO host_resources (host, resource, run_id, stage, mode, state)
      VALUES (${r.host}, ${r.resource.name}, ${r.runId}, ${r.stage}, ${r.resource.mode}, ${free ? 'held' : 'waiting'})
      ON CONFLICT (run_id, resource) DO UPDATE SET state = EXCLUDED.state`.execute(trx);
    return free;
  });
}

/** Lets go of everything an attempt holds or waits for. */
export async function releaseResources(db: Db, runId: number): Promise<void> {
  await sql`DELETE FROM host_resources WHERE run_id = ${runId}`.execute(db);
}
