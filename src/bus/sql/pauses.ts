import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';
import type { BreakerSettings } from '../driver.js';

/**
 * Pauses of service groups, in rate_limit_pauses: a service's own "wait
 * until" (kind rate_limit), or our circuit breaker for a service that is down
 * (kind breaker). Every stage of a paused group stops claiming, on every daemon.
 */

/** Rate limits pause their group; the latest "until" wins. */
export async function pauseGroups(db: Db, pauses: Map<string, { until: Date; reason: string }>, workerId: string): Promise<void> {
  for (const [group, p] of pauses) {
    await sql`
      INSERT INTO rate_limit_pauses AS p (group_name, until, reason, set_by, set_at, kind)
      VALUES (${group}, ${p.until.toISOString()}::timestamptz, ${p.reason}, ${workerId}, now(), 'rate_limit')
      ON CONFLICT (group_name) DO UPDATE
        SET until = GREATEST(p.until, EXCLUDED.until),
            reason = CASE WHEN EXCLUDED.until >= p.until THEN EXCLUDED.reason ELSE p.reason END,
            kind = CASE WHEN EXCLUDED.until >= p.until THEN 'rate_limit' ELSE p.kind END,
            set_by = EXCLUDED.set_by, set_at = now()`.execute(db);
  }
}

/**
 * The circuit breaker opens (or stays open) for a group whose service is
 * down. Failures while it is open belong to the same opening; a failure after
 * the pause ended (the probe) opens it for twice as long, up to the cap.
 */
export async function openBreakers(db: Db, downs: Map<string, { reason: string; breaker: BreakerSettings }>, workerId: string): Promise<void> {
  for (const [group, d] of downs) {
    const { baseSeconds: base, maxSeconds: max } = d.breaker;
    await sql`
      INSERT INTO rate_limit_pauses AS p (group_name, until, reason, set_by, set_at, kind, trips)
      VALUES (${group}, now() + make_interval(secs => ${base}), ${d.reason}, ${workerId}, now(), 'breaker', 1)
      ON CONFLICT (group_name) DO UPDATE SET
        trips = CASE WHEN p.until > now() AND p.kind = 'breaker' THEN p.trips ELSE p.trips + 1 END,
        until = GREATEST(p.until, now() + make_interval(secs => LEAST(${max}::float8,
                  ${base}::float8 * 2 ^ (CASE WHEN p.until > now() AND p.kind = 'breaker' THEN p.trips ELSE p.trips + 1 END - 1)))),
        kind = 'breaker', reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = now()`.execute(db);
  }
}

/** A service answered after its pause ended: it is back, and the next opening starts short again. */
export async function closeBreakers(db: Db, groups: string[]): Promise<void> {
  if (!groups.length) return;
  await sql`UPDATE rate_limit_pauses SET trips = 0
            WHERE group_name = ANY(${groups}::text[]) AND trips > 0 AND until <= now()`.execute(db);
}
