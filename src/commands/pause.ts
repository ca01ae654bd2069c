import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * `perfmine pause STAGE` / `perfmine resume STAGE`: the stage's settings row,
 * which every daemon reloads at once (its doorbell) and on every poll. A
 * paused stage claims nothing; running attempts finish.
 */
export async function setPaused(db: Db, stage: string, paused: boolean, note?: string): Promise<{ changed: boolean }> {
  const { rows } = await sql<{ was: boolean | null }>`
    WITH old AS (SELECT paused FROM stage_settings WHERE stage = ${stage})
    INSERT INTO stage_settings AS s (stage, paused, note, updated_at) VALUES (${stage}, ${paused}, ${note ?? null}, now())
    ON CONFLICT (stage) DO UPDATE SET paused = EXCLUDED.paused, note = coalesce(EXCLUDED.note, s.note), updated_at = now()
    RETURNING (SELECT paused FROM old) AS was`.execute(db);
  return { changed: (rows[0]?.was ?? false) !== paused };
}
