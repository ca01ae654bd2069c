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

export async function run(): Promise<void> {
  const server = await providePostgres();
  const throwaway = await createThrowawayDatabase(server.adminUrl, 'perfmine_bench');
  const conn = connect(throwaway.url, POOL);
  let daemon: Daemon | undefined;
  try {
    console.error(`bench bus: ${ROWS} rows x ${STAGES} stages, pool ${POOL}, concurrency ${CONCURRENCY}/stage, PostgreSQL: ${server.kind}`);
    await migrate(conn.pool);
    const cols = Array.from({ length: STAGES }, (_, i) => `${col(i + 1)} integer`).join(', ');
    await sql.raw(`CREATE TABLE bench_items (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), ${cols})`).execute(conn.db);
    for (let k = 1; k <= STAGES; k++) {
      const prev = k === 1 ? '' : `${col(k - 1)} IS NOT NULL AND `;
      await sql.raw(`CREATE INDEX ON bench_items (id) WHERE ${prev}${col(k)} IS NULL`).execute(conn.db);
    }
    await sql`SELECT perfmine_doorbells('bench_items', ${Array.from({ length: STAGES }, (_, i) => col(i + 1))}::text[])`.execute(conn.db);

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
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM bench_items WHERE c8 IS NOT NULL`.execute(conn.db);
      if (rows[0].n === ROWS) break;
      if (rows[0].n !== last) console.error(`  finished ${rows[0].n}/${ROWS}`);
      last = rows[0].n;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - t0) / 1000;
    const transitions = ROWS * STAGES;
    const failures = await sql<{ n: number }>`SELECT count(*)::int AS n FROM stage_runs WHERE outcome <> 'succeeded'`.execute(conn.db);

    // Latency on an idle pipeline: commit that makes a row pending -> its handler starts.
    await daemon.whenIdle();
    const latencies: number[] = [];
    const client = new pg.Client({ connectionString: throwaway.url });
    await client.connect();
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const id = 1 + Math.floor(Math.random() * ROWS);
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

    const commits = await baseline(throwaway.url);
    const transitionsPerS = transitions / seconds;
    const result = {
      bench: 'bus',
      rows: ROWS,
      stages: STAGES,
      transitions,
      seconds: round(seconds),
      transitions_per_s: Math.round(transitionsPerS),
      claim_latency_p50_ms: round(pct(latencies, 50)),
      claim_latency_p99_ms: round(pct(latencies, 99)),
      claim_latency_max_ms: round(Math.max(...latencies)),
      latency_samples: latencies.length,
      pg_single_update_commits_per_s: Math.round(commits),
      ratio: round(transitionsPerS / commits),
      connections: POOL,
      failed_attempts: failures.rows[0].n,
      postgres: server.kind,
    };
    console.log(JSON.stringify(result));
  } finally {
    await daemon?.stop(1000);
    await conn.close();
    await throwaway.drop();
    await server.stop();
  }
}
