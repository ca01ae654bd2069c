import { sql } from 'kysely';
import type { Db } from '../../db/connect.js';

export interface PruneSettings {
  /** Attempts (stage_runs) older than this many days go, except every row's last attempt of each stage; 0 keeps all. */
  stageRunsDays: number;
  /** Scrape rejects older than this go, except each repository's newest; 0 keeps all. */
  scrapeRejectsDays: number;
  /** Build logs (candidate_containers.build_log) older than this are cleared, except each PR's last build's; 0 keeps all. */
  buildLogsDays: number;
  /** Rows per statement, so pruning never holds locks for long. */
  batch?: number;
}

export interface PruneResult { stageRuns: number; scrapeRejects: number; buildLogs: number }

/** Repeats a batched statement until it touches nothing more; returns the total. */
async function drain(run: () => Promise<number>, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await run();
    total += n;
    if (n < batch) return total;
  }
}

/** Housekeeping: prunes old attempts, scrape rejects and build logs by age (see PruneSettings). */
export async function pruneHistory(db: Db, s: PruneSettings): Promise<PruneResult> {
  const batch = s.batch ?? 5000;
  const count = async (q: ReturnType<typeof sql<{ n: number }>>) => Number((await q.execute(db)).rows[0]?.n ?? 0);
  const stageRuns = s.stageRunsDays <= 0 ? 0 : await drain(() => count(sql<{ n: number }>`
    WITH gone AS (
      DELETE FROM stage_runs WHERE id IN (
        SELECT r.id FROM stage_runs r
        WHERE r.finished_at < now() - make_interval(days => ${s.stageRunsDays})
          AND EXISTS (SELECT 1 FROM stage_runs later
                      WHERE later.subject_table = r.subject_table AND later.subject_id = r.subject_id
                        AND later.stage = r.stage AND later.id > r.id)
        LIMIT ${batch})
      RETURNING 1)
    SELECT count(*)::int AS n FROM gone`), batch);
  const scrapeRejects = s.scrapeRejectsDays <= 0 ? 0 : await drain(() => count(sql<{ n: number }>`
    WITH gone AS (
      DELETE FROM scrape_rejects WHERE id IN (
        SELECT x.id FROM scrape_rejects x
        WHERE x.created_at < now() - make_interval(days => ${s.scrapeRejectsDays})
          AND EXISTS (SELECT 1 FROM scrape_rejects later WHERE later.repository_id = x.repository_id AND later.id > x.id)
        LIMIT ${batch})
      RETURNING 1)
    SELECT count(*)::int AS n FROM gone`), batch);
  const buildLogs = s.buildLogsDays <= 0 ? 0 : await drain(() => count(sql<{ n: number }>`
    WITH cleared AS (
      UPDATE candidate_containers SET build_log = NULL WHERE id IN (
        SELECT c.id FROM candidate_containers c
        WHERE c.build_log IS NOT NULL AND c.created_at < now() - make_interval(days => ${s.buildLogsDays})
          AND EXISTS (SELECT 1 FROM candidate_containers later WHERE later.pull_request_id = c.pull_request_id AND later.id > c.id)
        LIMIT ${batch})
      RETURNING 1)
    SELECT count(*)::int AS n FROM cleared`), batch);
  return { stageRuns, scrapeRejects, buildLogs };
}
