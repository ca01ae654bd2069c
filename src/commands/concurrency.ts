import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * `perfmine concurrency STAGE N`: how many rows of the stage each daemon runs
 * at once, overriding the stage's declared concurrency (0 stops new claims
 * like a pause; `default` goes back to the declaration). Daemons apply it
 * without a restart.
 */
export async function setConcurrency(db: Db, stage: string, n: number | null): Promise<void> {
  await sql`
    INSERT INTO stage_settings AS s (stage, concurrency, updated_at) VALUES (${stage}, ${n}, now())
    ON CONFLICT (stage) DO UPDATE SET concurrency = EXCLUDED.concurrency, updated_at = now()`.execute(db);
}
