import pg from 'pg';
import { CONNECTIONS_SQL, overBudget, type ConnectionPeak, type MonitorOptions } from './monitor.js';

export interface AuditInput {
  url: string;
  expected: Array<{ owner: string; name: string; number: number }>;
  budget: Pick<MonitorOptions, 'liveLabels' | 'deathOf' | 'connectionBudget'>;
  now: number;
  /** Each stage's maxAttempts, from its declaration. */
  maxAttempts: Record<string, number>;
}

export interface Audit {
  prs_expected: number;
  prs_lost: number;
  duplicate_effects: number;
  failed_rows: number;
  leaked_connections: number;
  /** Symbolic candidates still without a verdict (not failed): judged work the run did not finish. */
  prs_unjudged: number;
  evidence: {
    lost_by_repository: Array<Record<string, unknown>>;
    duplicates: Array<Record<string, unknown>>;
    failed_by_error: Array<{ stage: string; error: string; rows: number; example_subjects: number[] }>;
    outstanding: Array<Record<string, unknown>>;
    connections: ConnectionPeak;
    connections_all: Array<Record<string, unknown>>;
    /** Unsuccessful attempts recorded per stage, by outcome and error (digits folded). */
    attempt_errors: Array<{ stage: string; outcome: string; error: string; n: number }>;
    /** Per stage: the most attempts one row spent on errors, and how many rows came within one attempt of failing. */
    attempts_burned: Array<{ stage: string; max_attempts: number; max_errors_per_row: number; rows_one_short: number; rows: number }>;
  };
}

/**
 * The database against the stand-ins' truth, once the run has settled:
 * PRs served but not stored, stage results written twice, rows given up on,
 * and connections beyond what the live daemons may hold.
 */
export async function audit(input: AuditInput): Promise<Audit> {
  const client = new pg.Client({ connectionString: input.url, application_name: 'chaos-harness-audit' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const q = async <T = any>(text: string, values: unknown[] = []) => (await client.query(text, values)).rows as T[];
    // Evidence only: a failing query must not cost the run its result line.
    const maybe = async <T = any>(text: string, values: unknown[] = []): Promise<T[]> => {
      try {
        return await q<T>(text, values);
      } catch (err) {
        console.error(`bench chaos: evidence query failed: ${(err as Error).message}`);
        return [];
      }
    };
    const expected = JSON.stringify(input.expected);

    const lost = await q<{ lost: number } & Record<string, unknown>>(`
      WITH e AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS e(owner text, name text, number int))
      SELECT e.owner || '/' || e.name AS repository, count(*)::int AS lost,
             min(e.number) AS lowest, max(e.number) AS highest,
             (SELECT json_build_object('metadata_fetched_at', r.metadata_fetched_at, 'ingest_enabled', r.ingest_enabled,
                 'ingest_reason', r.ingest_reason, 'scrape_cursor', r.scrape_cursor, 'last_scraped_at', r.last_scraped_at)
                FROM repositories r WHERE lower(r.owner) = lower(e.owner) AND lower(r.name) = lower(e.name)) AS repository_row,
             (SELECT json_agg(json_build_object('stage', l.stage, 'attempts', l.attempts, 'worker', l.worker_id,
                 'claimed_at', l.claimed_at, 'expires_at', l.expires_at, 'expires_in_s', round(extract(epoch FROM l.expires_at - now())),
                 'retry_at', l.retry_at, 'failed_at', l.failed_at, 'last_error', left(l.last_error, 300)))
                FROM leases l JOIN repositories r ON l.subject_table = 'repositories' AND l.subject_id = r.id
               WHERE lower(r.owner) = lower(e.owner) AND lower(r.name) = lower(e.name)) AS leases
      FROM e
      WHERE NOT EXISTS (
        SELECT 1 FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
        WHERE lower(r.owner) = lower(e.owner) AND lower(r.name) = lower(e.name) AND p.number = e.number)
      GROUP BY e.owner, e.name ORDER BY 1`, [expected]);

    // Nothing in this run re-requests a row (no output is set back to NULL), so any
    // second success for one (stage, subject) is a result written twice.
    const twice = await q(`
      SELECT 'stage_runs' AS source, stage AS what, subject_id AS subject, count(*)::int AS n,
             array_agg(worker_id ORDER BY finished_at) AS workers
      FROM stage_runs WHERE outcome = 'succeeded' GROUP BY stage, subject_id HAVING count(*) > 1`);
    const sideTables = await q(`
      SELECT 'pull_requests' AS source, lower(r.owner || '/' || r.name) || '#' || p.number AS what, count(*)::int AS n
        FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
        GROUP BY lower(r.owner || '/' || r.name), p.number HAVING count(*) > 1
      UNION ALL
      SELECT 'repositories', lower(owner || '/' || name), count(*)::int FROM repositories
        GROUP BY lower(owner || '/' || name) HAVING count(*) > 1
      UNION ALL
      SELECT 'scrape_rejects', repository_id || '#' || coalesce(number::text, '-') || ':' || reason, count(*)::int
        FROM scrape_rejects GROUP BY repository_id, number, reason HAVING count(*) > 1`);
    const duplicates = [...twice, ...sideTables];
    const duplicateEffects = duplicates.reduce((n, d) => n + d.n - 1, 0);

    const failed = await q<{ stage: string; error: string; rows: number; example_subjects: number[] }>(`
      SELECT stage, regexp_replace(left(coalesce(last_error, '(none)'), 240), '\\d{3,}', 'N', 'g') AS error,
             count(*)::int AS rows, (array_agg(subject_id ORDER BY subject_id))[1:5] AS example_subjects
      FROM leases WHERE failed_at IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC`);
    const failedRows = failed.reduce((n, f) => n + f.rows, 0);

    const outstanding = await maybe(`
      SELECT f.stage, f.pending, f.running, f.retrying, f.failed, f.done, f.rate_limited_until,
             (SELECT json_agg(x) FROM (
                SELECT l.subject_id, l.attempts, l.worker_id, l.retry_at, left(l.last_error, 200) AS last_error
                FROM leases l WHERE l.stage = f.stage AND l.failed_at IS NULL ORDER BY l.retry_at NULLS FIRST LIMIT 3) x) AS examples
      FROM funnel f WHERE f.pending + f.running + f.retrying > 0 ORDER BY f.ordinal`);

    const [{ n: unjudged }] = await q<{ n: number }>(`
      SELECT count(*)::int AS n FROM pull_requests p
      WHERE p.is_performance_commit_symbolic AND p.is_performance_commit IS NULL
        AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.stage = 'classify_prs' AND l.subject_id = p.id AND l.failed_at IS NOT NULL)`);

    const attemptErrors = await maybe(`
      SELECT stage, outcome, regexp_replace(left(coalesce(error, ''), 160), '\\d+', 'N', 'g') AS error, count(*)::int AS n
      FROM stage_runs WHERE outcome <> 'succeeded' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 12`);
    // Counted attempts that did not succeed (rate-limited ones are not counted by the bus).
    const burned = await maybe(`
      SELECT x.stage, m.n AS max_attempts, max(x.n)::int AS max_errors_per_row,
             count(*) FILTER (WHERE x.n >= m.n - 1)::int AS rows_one_short, count(*)::int AS rows
      FROM (SELECT stage, subject_id, count(*) FILTER (WHERE outcome IN ('error', 'failed', 'lease_expired')) AS n
            FROM stage_runs GROUP BY 1, 2) x
      JOIN (SELECT key AS stage, value::int AS n FROM jsonb_each_text($1::jsonb)) m ON m.stage = x.stage
      GROUP BY x.stage, m.n ORDER BY x.stage`, [JSON.stringify(input.maxAttempts)]);

    const connections = overBudget(await q(CONNECTIONS_SQL), input.now, input.budget);
    const connectionsAll = await maybe(`
      SELECT application_name, state, backend_type, left(query, 80) AS last_query, count(*)::int AS n
      FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
      GROUP BY 1, 2, 3, 4 ORDER BY 1, 2`);

    return {
      prs_expected: input.expected.length,
      prs_lost: lost.reduce((n, l) => n + l.lost, 0),
      duplicate_effects: duplicateEffects,
      failed_rows: failedRows,
      leaked_connections: connections.overBudget,
      prs_unjudged: unjudged,
      evidence: {
        lost_by_repository: lost,
        duplicates: duplicates.slice(0, 20),
        failed_by_error: failed,
        outstanding,
        connections,
        connections_all: connectionsAll,
        attempt_errors: attemptErrors,
        attempts_burned: burned,
      },
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
