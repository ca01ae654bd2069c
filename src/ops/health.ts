import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

export interface HealthReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

export interface HealthSources {
  db: Db;
  /** Whether the LISTEN connection is up; absent when the daemon runs without one. */
  listenerLive?: () => boolean;
  /** How long `SELECT 1` may take before the database counts as down. */
  timeoutMs?: number;
}

/** Process alive (we answer), the database answers `SELECT 1` in time, and the LISTEN connection is live. */
export async function checkHealth(s: HealthSources): Promise<HealthReport> {
  const checks: HealthReport['checks'] = { process: { ok: true } };
  const timeoutMs = s.timeoutMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      sql`SELECT 1`.execute(s.db),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); }),
    ]);
    checks.database = { ok: true };
  } catch (err) {
    checks.database = { ok: false, error: (err as Error).message.replace(/postgres(ql)?:\/\/\S+/gi, '(database)') };
  } finally {
    clearTimeout(timer);
  }
  if (s.listenerLive) {
    const live = s.listenerLive();
    checks.listener = live ? { ok: true } : { ok: false, error: 'the LISTEN connection is down (reconnecting)' };
  }
  return { ok: Object.values(checks).every((c) => c.ok), checks };
}
