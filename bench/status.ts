/**
 * `npm run bench -- status [--prs N] [--explain]`: a throwaway database with N
 * PRs (default 1,000,000) spread over the stages the way a long-running
 * funnel spreads them (most rejected early, a few at each later stage, some
 * failed or running), then the time of the `funnel` view, of `status --json`'s
 * query path, and of a `/metrics` scrape (uncached). Each is the median of
 * several runs after a warm-up. --explain prints the plans of the funnel's
 * per-stage queries; --keep leaves the database behind. Last line: one JSON object.
 */
import { sql } from 'kysely';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { registerStages } from '../src/bus/sql/register.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps, builtinStages } from '../src/stages/index.js';
import { readStatus } from '../src/commands/status.js';
import { PerfmineMetrics } from '../src/ops/metrics.js';
import { startOpsServer } from '../src/ops/server.js';
import { createThrowawayDatabase, providePostgres } from '../test/helpers/pg-provider.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const PRS = Number(arg('--prs') ?? process.env.BENCH_PRS ?? 1_000_000);
const EXPLAIN = process.argv.includes('--explain');
/** Leave the database behind (its URL is printed) to look at plans with psql. */
const KEEP = process.argv.includes('--keep');
const RUNS = 7;

async function median(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(times.length / 2)] * 10) / 10;
}

export async function run(): Promise<void> {
  const started = performance.now();
  const server = await providePostgres();
  const throwaway = await createThrowawayDatabase(server.adminUrl, 'perfmine_bench_status');
  const conn = connect(throwaway.url, 4);
  try {
    await migrate(conn.pool);
    const config = loadConfig({ PERFMINE_SCHEDULE: 'false' });
    await registerStages(conn.db, builtinStages(buildStageDeps(config, silentLogger)));
    console.error(`bench status: generating ${PRS} PRs (PostgreSQL: ${server.kind})`);
    const t0 = performance.now();
    await generate(conn.db, PRS);
    console.error(`bench status: generated in ${Math.round((performance.now() - t0) / 1000)} s`);
    if (EXPLAIN) await explainFunnel(conn.db);

    const funnelMs = await median(() => sql`SELECT * FROM funnel`.execute(conn.db));
    const statusMs = await median(() => readStatus(conn.db).then((s) => JSON.stringify(s)));
    const metrics = new PerfmineMetrics({ db: conn.db, pools: [{ name: 'bus', pool: conn.pool }], cacheMs: 0 });
    const http = await startOpsServer({ port: 0, metrics, health: async () => ({ ok: true, checks: {} }), notReady: () => null, log: silentLogger });
    let lines = 0;
    const metricsMs = await median(async () => {
      const body = await (await fetch(`${http.url}/metrics`)).text();
      lines = body.split('\n').length;
    });
    await http.close();
    const counts = await sql<{ stage: string; pending: number; done: number; failed: number }>`SELECT stage, pending, done, failed FROM funnel`.execute(conn.db);
    console.error(counts.rows.map((r) => `  ${r.stage}: pending ${r.pending}, done ${r.done}, failed ${r.failed}`).join('\n'));
    console.error(`bench status: /metrics has ${lines} lines`);
    console.log(JSON.stringify({
      bench: 'status', prs: PRS, funnel_ms: funnelMs, status_ms: statusMs, metrics_ms: metricsMs,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    }));
  } finally {
    await conn.close();
    if (KEEP) console.error(`bench status: database kept: ${throwaway.url}`);
    else await throwaway.drop();
    await server.stop();
  }
}

/**
 * N PRs over N/1000 repositories. Per 1000 PRs: 700 rejected by the symbolic
 * filter, 20 waiting for the judge, 130 judged not a performance change, and
 * 150 performance changes spread over resolve, render, build, benchmark and
 * publish (pending, rejected and done at each). 1% of each pending set has
 * failed, a few rows are running, and every decided row has an attempt in
 * stage_runs over the last 30 days.
 */
async function generate(db: Parameters<typeof readStatus>[0], n: number): Promise<void> {
  const repos = Math.max(1, Math.ceil(n / 1000));
  await sql`INSERT INTO repositories (owner, name, metadata_fetched_at, last_scraped_at, scrape_cursor)
            SELECT 'owner' || i, 'repo', now(), now(), now() FROM generate_series(1, ${repos}) i`.execute(db);
  const chunk = 250_000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await sql`
      INSERT INTO pull_requests (repository_id, number, title, merged_at, created_at, is_performance_commit_symbolic,
        is_performance_commit, judged_at, judge_prompt_hash, env_resolved_at, can_install, problem_rendered_at, rendered_problem,
        env_built_at, container_name, benchmarked_at, benchmark_decision, publish_decided_at, published_at)
      SELECT 1 + (i - 1) / 1000, i::int, 'PR ' || i, t, t, b >= 700,
        CASE WHEN b >= 850 THEN true WHEN b >= 720 THEN false END,
        CASE WHEN b >= 720 THEN t + interval '1 hour' END,
        CASE WHEN b >= 720 THEN 'h1' END,
        CASE WHEN b >= 860 THEN t + interval '2 hours' END,
        CASE WHEN b >= 900 THEN true WHEN b >= 860 THEN false END,
        CASE WHEN b >= 910 THEN t + interval '3 hours' END,
        CASE WHEN b >= 940 THEN 'problem ' || i END,
        CASE WHEN b >= 950 THEN t + interval '4 hours' END,
        CASE WHEN b >= 980 THEN 'env-' || i END,
        CASE WHEN b >= 985 THEN t + interval '5 hours' END,
        CASE WHEN b >= 995 THEN 'faster' WHEN b >= 985 THEN 'no change' END,
        CASE WHEN b >= 997 THEN t + interval '6 hours' END,
        CASE WHEN b >= 997 THEN t + interval '6 hours' END
      FROM (SELECT i, (i * 7919) % 1000 AS b, now() - make_interval(secs => (${n} - i) * 2.5) AS t
            FROM generate_series(${from}::bigint, ${to}::bigint) i) x`.execute(db);
  }
  // Attempts: one per decided row and stage, over the last 30 days.
  await sql`
    INSERT INTO stage_runs (id, stage, subject_table, subject_id, attempt, worker_id, started_at, finished_at, outcome)
    SELECT nextval('run_ids'), st, 'pull_requests', p.id, 1, 'bench', f - interval '1 s', f, 'succeeded'
    FROM pull_requests p,
         LATERAL (VALUES ('classify_prs', p.judged_at), ('resolve_packages', p.env_resolved_at), ('render_problems', p.problem_rendered_at),
                         ('synthesize_images', p.env_built_at), ('publish', p.publish_decided_at)) v(st, at),
         LATERAL (SELECT now() - make_interval(secs => (p.id % 2592000)) AS f) ff
    WHERE v.at IS NOT NULL`.execute(db);
  // 1% of each PR stage's pending rows failed; a few running.
  for (const s of (await sql<{ name: string; pending_sql: string }>`SELECT name, pending_sql FROM stages WHERE subject_table = 'pull_requests'`.execute(db)).rows) {
    await sql`
      INSERT INTO leases (stage, subject_id, subject_table, run_id, worker_id, claimed_at, expires_at, lease_seconds, attempts, max_attempts, failed_at, last_error)
      SELECT ${s.name}, s.id, 'pull_requests', nextval('run_ids'),
             CASE WHEN s.id % 1000 < 5 THEN 'bench' END, now(), CASE WHEN s.id % 1000 < 5 THEN now() + interval '1 hour' END, 3600, 3, 3,
             CASE WHEN s.id % 1000 >= 5 THEN now() END, CASE WHEN s.id % 1000 >= 5 THEN 'bench failure' END
      FROM pull_requests s WHERE (${sql.raw(s.pending_sql)}) AND s.id % 97 = 0`.execute(db);
  }
  await sql`VACUUM ANALYZE`.execute(db);
}

/** The plans of the funnel's per-stage statements, as perfmine_funnel() builds them. */
async function explainFunnel(db: Parameters<typeof readStatus>[0]): Promise<void> {
  const { rows } = await sql<{ name: string; subject_table: string; pending_sql: string; done_sql: string; since_sql: string }>`
    SELECT name, subject_table, pending_sql, done_sql, since_sql FROM stages ORDER BY ordinal`.execute(db);
  for (const s of rows) {
    const queries = [
      `SELECT count(*), now() - min(${s.since_sql}) FROM ${s.subject_table} s WHERE (${s.pending_sql}) AND NOT (s.failed_stages @> ARRAY['${s.name}']) AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.stage = '${s.name}' AND l.subject_id = s.id)`,
      `SELECT count(*) FROM ${s.subject_table} s WHERE (${s.done_sql})`,
    ];
    for (const q of queries) {
      const plan = await sql.raw<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) ${q}`).execute(db);
      console.error(`-- ${s.name}: ${q.slice(0, 120)}\n${plan.rows.map((r) => `   ${r['QUERY PLAN']}`).join('\n')}`);
    }
  }
}
