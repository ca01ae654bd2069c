import { sql } from 'kysely';
import pg from 'pg';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { Daemon } from '../src/bus/daemon.js';
import type { StageDefinition } from '../src/bus/stage.js';
import { createThrowawayDatabase, providePostgres } from '../test/helpers/pg-provider.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000);
const STAGES = 8;
const POOL = Number(process.env.BENCH_POOL ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 250);
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 300);
const BASELINE_SECONDS = Number(process.env.BENCH_BASELINE_SECONDS ?? 5);
/** Rows that failed for good, present during the second run (spread over the stages, lowest ids). */
const FAILED_LEASES = Number(process.env.BENCH_FAILED_LEASES ?? 100_000);

const col = (k: number) => `c${k}`;

/** Stage k sets c_k once c_(k-1) is set: a chain of no-op stages. */
function chain(onStart: (stage: number, id: number) => void): StageDefinition[] {
  return Array.from({ length: STAGES }, (_, i) => {
    const k = i + 1;
    const prev = k === 1 ? 'TRUE' : `s.${col(k - 1)} IS NOT NULL`;
    return {
      name: `noop_${k}`, ordinal: k, subjectTable: 'bench_items',
      pending: `${prev} AND s.${col(k)} IS NULL`, done: `s.${col(k)} IS NOT NULL`,
      writes: [col(k)], outputs: [col(k)], wakeOn: k === 1 ? ['bench_items'] : [`bench_items.${col(k - 1)}`],
      concurrency: CONCURRENCY, leaseSeconds: 60, deadlineSeconds: 600, maxAttempts: 3, backoff: { baseMs: 100, maxMs: 1000 },
      async handle(row) {
        onStart(k, row.id);
        return { set: { [col(k)]: 1 } };
      },
    } satisfies StageDefinition;
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** The physical ceiling: single-row autocommit UPDATEs from POOL connections at once. */
async function baseline(url: string): Promise<number> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('CREATE TABLE bench_baseline (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0)');
  await setup.query(`INSERT INTO bench_baseline (id) SELECT g FROM generate_series(1, ${POOL}) g`);
  await setup.end();
  const clients = await Promise.all(Array.from({ length: POOL }, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  }));
  const deadline = performance.now() + BASELINE_SECONDS * 1000;
  const counts = await Promise.all(clients.map(async (c, i) => {
    let n = 0;
    while (performance.now() < deadline) {
      await c.query({ name: 'bump', text: 'UPDATE bench_baseline SET v = v + 1 WHERE id = $1', values: [i + 1] });
      n++;
    }
    return n;
  }));
  await Promise.all(clients.map((c) => c.end()));
  return counts.reduce((a, b) => a + b, 0) / BASELINE_SECONDS;
}

interface PipelineRun { seconds: number; transitionsPerS: number; latencies: number[]; failedAttempts: number }

/**
 * One pipeline run on its own database: the chain over ROWS rows from one
 * INSERT, then the idle-pipeline latency. With `failedLeases`, that many rows
 * that each stage gave up on are present first (lowest ids, the worst place
 * for an id-ordered claim), each stage holding an equal share.
 */
async function pipeline(adminUrl: string, failedLeases: number): Promise<PipelineRun> {
  const throwaway = await createThrowawayDatabase(adminUrl, 'perfmine_bench');
  const conn = connect(throwaway.url, POOL);
  let daemon: Daemon | undefined;
  try {
    await migrate(conn.pool);
    const cols = Array.from({ length: STAGES }, (_, i) => `${col(i + 1)} integer`).join(', ');
    await sql.raw(`CREATE TABLE bench_items (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),
      failed_stages text[] NOT NULL DEFAULT '{}', ${cols})`).execute(conn.db);
    for (let k = 1; k <= STAGES; k++) {
      const prev = k === 1 ? '' : `${col(k - 1)} IS NOT NULL AND `;
      await sql.raw(`CREATE INDEX ON bench_items (id) WHERE ${prev}${col(k)} IS NULL AND NOT (failed_stages @> ARRAY['noop_${k}']::text[])`).execute(conn.db);
    }
    await sql`SELECT perfmine_doorbells('bench_items', ${Array.from({ length: STAGES }, (_, i) => col(i + 1))}::text[])`.execute(conn.db);
    if (failedLeases > 0) {
      console.error(`  adding ${failedLeases} rows that failed for good`);
      const perStage = Math.ceil(failedLeases / STAGES);
      for (let k = 1; k <= STAGES; k++) {
        // Rows that reached stage k and failed there: c1..c(k-1) set, ck NULL.
        const done = Array.from({ length: k - 1 }, (_, i) => col(i + 1));
        await sql.raw(`INSERT INTO bench_items (failed_stages${done.map((c) => `, ${c}`).join('')})
          SELECT ARRAY['noop_${k}']${done.map(() => ', 1').join('')} FROM generate_series(1, ${perStage})`).execute(conn.db);
        await sql.raw(`INSERT INTO leases (stage, subject_id, subject_table, run_id, lease_seconds, attempts, max_attempts, failed_at, last_error)
          SELECT 'noop_${k}', id, 'bench_items', nextval('run_ids'), 60, 3, 3, now(), 'bench: failed for good'
          FROM bench_items WHERE failed_stages = ARRAY['noop_${k}']`).execute(conn.db);
      }
      await sql`ANALYZE bench_items`.execute(conn.db);
      await sql`ANALYZE leases`.execute(conn.db);
    }
    const failedIds = failedLeases > 0 ? Math.ceil(failedLeases / STAGES) * STAGES : 0;

    let probe: { id: number; resolve: (t: number) => void } | undefined;
    const stages = chain((stage, id) => {
      if (probe && stage === 1 && id === probe.id) probe.resolve(performance.now());
    });
    daemon = new Daemon({ db: conn.db, connectionString: throwaway.url, stages, pollIntervalMs: 1000 });
    await daemon.start();

    // Throughput: one INSERT of all rows, then wait for the last stage.
    const t0 = performance.now();
    await sql`INSERT INTO bench_items (c1) SELECT NULL FROM generate_series(1, ${ROWS})`.execute(conn.db);
    let last = -1;
    for (;;) {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM bench_items WHERE c8 IS NOT NULL AND id > ${failedIds}`.execute(conn.db);
      if (rows[0].n === ROWS) break;
      if (rows[0].n !== last) console.error(`  finished ${rows[0].n}/${ROWS}`);
      last = rows[0].n;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - t0) / 1000;
    const failures = await sql<{ n: number }>`SELECT count(*)::int AS n FROM stage_runs WHERE outcome <> 'succeeded'`.execute(conn.db);

    // Latency on an idle pipeline: commit that makes a row pending -> its handler starts.
    await daemon.whenIdle();
    const latencies: number[] = [];
    const client = new pg.Client({ connectionString: throwaway.url });
    await client.connect();
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const id = failedIds + 1 + Math.floor(Math.random() * ROWS);
      const started = new Promise<number>((resolve) => (probe = { id, resolve }));
      const before = performance.now();
      await client.query('UPDATE bench_items SET c1 = NULL WHERE id = $1', [id]); // autocommit
      latencies.push((await started) - before);
      probe = undefined;
      await daemon.whenIdle();
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
    }
    await client.end();
    await daemon.stop();
    daemon = undefined;
    return { seconds, transitionsPerS: (ROWS * STAGES) / seconds, latencies, failedAttempts: failures.rows[0].n };
  } finally {
    await daemon?.stop(1000);
    await conn.close();
    await throwaway.drop();
  }
}

export async function run(): Promise<void> {
  const server = await providePostgres();
  try {
    console.error(`bench bus: ${ROWS} rows x ${STAGES} stages, pool ${POOL}, concurrency ${CONCURRENCY}/stage, PostgreSQL: ${server.kind}`);
    const clean = await pipeline(server.adminUrl, 0);
    console.error(`  clean: ${Math.round(clean.transitionsPerS)} transitions/s`);
    const withFailed = FAILED_LEASES > 0 ? await pipeline(server.adminUrl, FAILED_LEASES) : undefined;
    if (withFailed) console.error(`  with ${FAILED_LEASES} failed leases: ${Math.round(withFailed.transitionsPerS)} transitions/s`);
    const baselineDb = await createThrowawayDatabase(server.adminUrl, 'perfmine_bench');
    const commits = await baseline(baselineDb.url).finally(() => baselineDb.drop());
    const result = {
      bench: 'bus',
      rows: ROWS,
      stages: STAGES,
      transitions: ROWS * STAGES,
      seconds: round(clean.seconds),
      transitions_per_s: Math.round(clean.transitionsPerS),
      claim_latency_p50_ms: round(pct(clean.latencies, 50)),
      claim_latency_p99_ms: round(pct(clean.latencies, 99)),
      claim_latency_max_ms: round(Math.max(...clean.latencies)),
      latency_samples: clean.latencies.length,
      pg_single_update_commits_per_s: Math.round(commits),
      ratio: round(clean.transitionsPerS / commits),
      failed_leases: withFailed ? FAILED_LEASES : 0,
      transitions_per_s_with_failed: withFailed ? Math.round(withFailed.transitionsPerS) : null,
      ratio_with_failed: withFailed ? round(withFailed.transitionsPerS / commits) : null,
      claim_latency_p99_ms_with_failed: withFailed ? round(pct(withFailed.latencies, 99)) : null,
      /** The issue's goal: within 20% of the clean run. */
      with_failed_vs_clean: withFailed ? round(withFailed.transitionsPerS / clean.transitionsPerS) : null,
      connections: POOL,
      failed_attempts: clean.failedAttempts + (withFailed?.failedAttempts ?? 0),
      postgres: server.kind,
    };
    console.log(JSON.stringify(result));
  } finally {
    await server.stop();
  }
}
