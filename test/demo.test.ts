import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { HISTORY } from '../src/demo/generated-repo/history.js';
import { parquetReadObjects } from 'hyparquet';
import { createThrowawayDatabase } from './helpers/pg-provider.js';

// `perfmine demo` with DATABASE_URL set must leave that database alone and
// print no secret; the repository it generates goes through stages 1-3 as
// its PRs' expectations say.

const run = promisify(execFile);
const role = `perfmine_demo_tester_${randomBytes(3).toString('hex')}`;
const password = `Demo-Secret-${randomBytes(6).toString('hex')}`;
let throwaway: Awaited<ReturnType<typeof createThrowawayDatabase>>;
let dataDir: string;

async function onAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const demoDatabases = () => onAdmin(async (c) => (await c.query<{ datname: string }>(
  `SELECT datname FROM pg_database WHERE datname LIKE 'perfmine\\_demo\\_%' ORDER BY 1`)).rows.map((r) => r.datname));

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'perfmine-demo-data-'));
  throwaway = await createThrowawayDatabase(inject('adminUrl'));
  const conn = connect(throwaway.url, 2);
  try {
    await migrate(conn.pool);
    await conn.pool.query(`INSERT INTO repositories (owner, name) VALUES ('keep', 'me')`);
  } finally {
    await conn.close();
  }
  await onAdmin((c) => c.query(`CREATE ROLE ${role} LOGIN CREATEDB PASSWORD '${password}'`));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
  await throwaway.drop();
  await onAdmin(async (c) => {
    for (const { datname } of (await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1`, [role])).rows) {
      await c.query(`DROP DATABASE ${datname} WITH (FORCE)`);
    }
    await c.query(`DROP ROLE IF EXISTS ${role}`);
  });
});

describe('perfmine demo with DATABASE_URL', () => {
  it('works in a new database of its own, drops it, leaves the existing data alone and prints no password', async () => {
    const url = new URL(throwaway.url);
    url.username = role;
    url.password = password;
    const before = await demoDatabases();
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'demo', '--exit-when-idle', '--json', '--prs', '30'], {
      env: { ...process.env, DATABASE_URL: url.toString(), PERFMINE_DATA_DIR: dataDir, PERFMINE_LOG_LEVEL: 'info' }, maxBuffer: 64 * 1024 * 1024,
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(summary.database).toMatch(/^perfmine_demo_[0-9a-f]{8}$/);
    expect(summary.kept).toBe(false);
    const generatedPRs = HISTORY.filter((s) => s.kind === 'pr');
    expect(summary.pull_requests).toBe(30 + generatedPRs.length);
    expect(summary.judged).toBeGreaterThan(0);

    // The generated repository: its row cloned from the bare repository it wrote, every PR
    // stored and judged by stages 1-3 as expected (performance work YES, the rest NO or never judged).
    const g = summary.generated;
    expect(g.repository).toBe('perfmine-demo/fastlib');
    expect(g.clone_url).toBe(path.join(dataDir, 'demo', summary.database, 'fastlib.git'));
    expect(g.prs.map((p: { number: number; is_performance_commit_symbolic: boolean | null; is_performance_commit: boolean | null }) =>
      [p.number, p.is_performance_commit_symbolic, p.is_performance_commit]))
      .toEqual(generatedPRs.map((p) => [p.number, p.expected.symbolic, p.expected.judgedPerf]));
    expect(g.as_expected).toBe(true);
    expect(g.prs.filter((p: { is_performance_commit: boolean | null }) => p.is_performance_commit).map((p: { expected: string }) => p.expected).sort())
      .toEqual(['build fails', 'no change', 'no change', 'no change', 'published', 'published', 'published', 'tests fail']);
    // Stages 4 and 5: every generated performance PR got an installable environment (cloned from
    // the bare repository, resolved against the demo's index stand-in) and a problem statement.
    const perf = g.prs.filter((p: { is_performance_commit: boolean | null }) => p.is_performance_commit);
    expect(perf.map((p: { can_install: boolean | null }) => p.can_install)).toEqual(perf.map(() => true));
    expect(perf.map((p: { rendered: boolean | null; render_reason: string | null }) => [p.rendered, p.render_reason]))
      .toEqual(perf.map(() => [true, null]));
    // Stage 6: each of them got a verified environment at its base commit (PR #18 does not build only after its
    // patch, which stage 6 checks applies, never builds): the first with the default template, the others with it
    // again as a neighbour's verified script.
    expect(perf.map((p: { number: number; built: boolean | null; build_reason: string | null }) => [p.number, p.built, p.build_reason]))
      .toEqual(perf.map((p: { number: number }) => [p.number, true, null]));
    expect(new Set(perf.map((p: { build_strategy: string | null }) => p.build_strategy))).toEqual(new Set(['default', 'similar']));
    expect(summary.built).toBe(perf.length);
    // Stages 7 and 8: each reached the outcome its expectation names. The real optimizations are faster by the
    // PR-level gate and published; the others stopped at stage 7 with the reason.
    type Perf = { number: number; expected: string; reached: string | null; published: boolean; benchmark_decision: string | null;
      benchmark_reason: string | null; max_speedup_lower_bound: number | null; stopped: string | null };
    const perfPRs = perf as Perf[];
    expect(perfPRs.map((p) => [p.number, p.reached])).toEqual(perfPRs.map((p) => [p.number, p.expected]));
    const expectedPublished = generatedPRs.filter((p) => p.expected.outcome === 'published').map((p) => p.number);
    expect(perfPRs.filter((p) => p.published).map((p) => p.number)).toEqual(expectedPublished);
    expect(summary.published).toBe(expectedPublished.length);
    for (const p of perfPRs.filter((x) => x.published)) expect(p.max_speedup_lower_bound).toBeGreaterThanOrEqual(1.05);
    expect(perfPRs.find((p) => p.expected === 'tests fail')!.benchmark_reason).toMatch(/test_rejects_inverted_bounds/);
    expect(perfPRs.find((p) => p.expected === 'build fails')!.stopped).toMatch(/^stage 7: failed \(the patch does not build/);
    // The dataset: one Parquet file per month of merge dates, kept after the demo, holding exactly the published PRs.
    expect(summary.publish_dir).toBe(path.join(dataDir, 'demo-published', summary.database));
    expect(summary.parquet.length).toBeGreaterThan(0);
    const numbers: number[] = [];
    for (const file of summary.parquet as string[]) {
      expect(path.basename(file)).toMatch(/^perfmine@2024-\d\d\.parquet$/);
      const buf = readFileSync(file);
      const rows = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer });
      numbers.push(...rows.map((r) => Number(r.number)));
    }
    expect(numbers.sort((a, b) => a - b)).toEqual(expectedPublished);
    expect(summary.funnel.map((f: { stage: string }) => f.stage)).toEqual(expect.arrayContaining(['resolve_packages', 'render_problems', 'synthesize_images']));
    expect(existsSync(path.join(dataDir, 'envs', 'builds')) ? readdirSync(path.join(dataDir, 'envs', 'builds')) : []).toEqual([]); // discarded with the database
    expect(summary.funnel.every((f: { failed: number }) => f.failed === 0)).toBe(true);
    expect(existsSync(path.join(dataDir, 'demo', summary.database))).toBe(false); // removed with the database
    expect(summary.report).toBe(path.join(dataDir, 'demo', `${summary.database}-report.html`)); // the report stays
    expect(readFileSync(summary.report, 'utf8')).toContain(`perfmine report: ${summary.database}`);

    expect(stdout + stderr).not.toContain(password);
    const conn = connect(throwaway.url, 2);
    try {
      const { rows } = await conn.pool.query('SELECT owner, name FROM repositories');
      expect(rows).toEqual([{ owner: 'keep', name: 'me' }]); // not truncated, nothing added
      expect((await conn.pool.query('SELECT count(*)::int AS n FROM pull_requests')).rows[0].n).toBe(0);
    } finally {
      await conn.close();
    }
    // Its own database is gone again (other demo databases may come and go: the server is shared).
    expect(await demoDatabases()).not.toContain(summary.database);
    expect(before).not.toContain(summary.database);
  }, 600_000); // stages 6 to 8 build, test, measure and publish the generated PRs for real
});
