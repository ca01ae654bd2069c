import os from 'node:os';
import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';

/** Whether a process with this pid exists on this host. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Workers on this host whose process is gone (killed, crashed) are marked
 * stopped and their leases expire now, so the sweeper hands their rows to a
 * live daemon at once instead of after a lease period that may be an hour.
 * Workers on other hosts are left to lease expiry. Returns how many leases.
 */
export async function expireLeasesOfDeadWorkers(db: Db, selfId: string): Promise<number> {
  const { rows } = await sql<{ id: string; pid: number }>`
    SELECT id, pid FROM workers WHERE hostname = ${os.hostname()} AND stopped_at IS NULL AND id <> ${selfId} AND pid IS NOT NULL`.execute(db);
  const dead = rows.filter((w) => w.pid !== process.pid && !alive(w.pid)).map((w) => w.id);
  if (!dead.length) return 0;
  const { rows: expired } = await sql<{ n: number }>`
    WITH stopped AS (
      UPDATE workers SET stopped_at = now() WHERE id = ANY(${dead}::text[])
    ), expired AS (
      UPDATE leases SET expires_at = now() - interval '1 millisecond'
      WHERE worker_id = ANY(${dead}::text[]) RETURNING 1
    )
    SELECT count(*)::int AS n FROM expired`.execute(db);
  return expired[0]?.n ?? 0;
}
