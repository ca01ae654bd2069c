import { sql } from 'kysely';
import { connect } from './src/db/connect.js';
import { migrate } from './src/db/migrate.js';
import { createThrowawayDatabase } from './test/helpers/pg-provider.js';
const failed = Number(process.argv[2]);
const t = await createThrowawayDatabase('postgres://postgres@127.0.0.1:5432/postgres', 'perfmine_plan');
const c = connect(t.url, 2);
try {
  await migrate(c.pool);
  await sql.raw(`CREATE TABLE bench_items (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), failed_stages text[] NOT NULL DEFAULT '{}', c1 int, c2 int)`).execute(c.db);
  await sql.raw(`CREATE INDEX ON bench_items (id) WHERE c1 IS NOT NULL AND c2 IS NULL AND NOT (failed_stages @> ARRAY['noop_2']::text[])`).execute(c.db);
  if (failed) {
  await sql.raw(`INSERT INTO bench_items (failed_stages, c1) SELECT ARRAY['noop_2'], 1 FROM generate_series(1,${failed})`).execute(c.db);
  await sql.raw(`INSERT INTO leases (stage, subject_id, subject_table, run_id, lease_seconds, attempts, max_attempts, failed_at) SELECT 'noop_2', id, 'bench_items', nextval('run_ids'), 60, 3, 3, now() FROM bench_items`).execute(c.db);
  }
  await sql.raw(`INSERT INTO bench_items (c1) SELECT 1 FROM generate_series(1,10000)`).execute(c.db);
  await sql`ANALYZE`.execute(c.db);
  const q = `EXPLAIN (ANALYZE, BUFFERS) WITH gate AS (SELECT NOT EXISTS (SELECT 1 FROM stage_settings WHERE stage = 'noop_2' AND paused) AND NOT EXISTS (SELECT 1 FROM rate_limit_pauses WHERE group_name = ANY('{}'::text[]) AND until > now()) AS open),
  candidates AS (SELECT s.id FROM bench_items s WHERE (SELECT open FROM gate) AND (s.c1 IS NOT NULL AND s.c2 IS NULL) AND NOT (s.failed_stages @> ARRAY['noop_2']::text[])
   AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.stage = 'noop_2' AND l.subject_id = s.id AND (l.worker_id IS NOT NULL OR l.failed_at IS NOT NULL OR l.retry_at > now())) ORDER BY s.id LIMIT 250 FOR UPDATE OF s SKIP LOCKED),
  claimed AS (INSERT INTO leases AS l (stage, subject_id, subject_table, run_id, worker_id, claimed_at, expires_at, lease_seconds, attempts, max_attempts)
   SELECT 'noop_2', c.id, 'bench_items', nextval('run_ids'), 'w', now(), now() + interval '60 s', 60, 1, 3 FROM candidates c
   ON CONFLICT (stage, subject_id) DO UPDATE SET run_id = EXCLUDED.run_id WHERE l.worker_id IS NULL RETURNING l.subject_id, l.run_id)
  SELECT count(*) FROM claimed c JOIN bench_items s ON s.id = c.subject_id`;
  const p = await sql.raw(q).execute(c.db);
  console.log(p.rows.map((r: any) => r['QUERY PLAN']).join('\n'));
} finally { await c.close(); await t.drop(); }
