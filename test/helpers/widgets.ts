import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { sql } from 'kysely';
import { Daemon, type DaemonOptions } from '../../src/bus/daemon.js';
import type { Db } from '../../src/db/connect.js';
import type { StageDefinition, SubjectRow, HandlerContext, StageResult } from '../../src/bus/stage.js';
import { createTestDb, type TestDb } from './db.js';

/** A small subject table with two spine columns and doorbells, for bus tests. */
export async function createWidgets(db: Db, rows = 0): Promise<void> {
  await sql`CREATE TABLE widgets (
    id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),
    a integer, b text, c integer CHECK (c IS NULL OR c >= 0))`.execute(db);
  await sql`SELECT perfmine_doorbells('widgets', ARRAY['a', 'b', 'c'])`.execute(db);
  if (rows) await insertWidgets(db, rows);
}

export async function insertWidgets(db: Db, n: number): Promise<void> {
  await sql`INSERT INTO widgets (a) SELECT NULL FROM generate_series(1, ${n})`.execute(db);
}

type Handler = (row: SubjectRow, ctx: HandlerContext) => Promise<StageResult>;

/** Stage `fill_a`: sets a = id * 2 unless a handler says otherwise. */
export function stageA(handle?: Handler, over: Partial<StageDefinition> = {}): StageDefinition {
  return {
    name: 'fill_a', ordinal: 1, subjectTable: 'widgets',
    pending: 's.a IS NULL', done: 's.a IS NOT NULL', writes: ['a', 'c'], outputs: ['a'],
    concurrency: 4, leaseSeconds: 30, deadlineSeconds: 60, maxAttempts: 3, backoff: { baseMs: 50, maxMs: 200 },
    handle: handle ?? (async (row) => ({ set: { a: row.id * 2 } })),
    ...over,
  };
}

/** Stage `fill_b`: follows fill_a, sets b from a. */
export function stageB(handle?: Handler, over: Partial<StageDefinition> = {}): StageDefinition {
  return {
    name: 'fill_b', ordinal: 2, subjectTable: 'widgets',
    pending: 's.a IS NOT NULL AND s.b IS NULL', done: 's.b IS NOT NULL', writes: ['b'], outputs: ['b'],
    wakeOn: ['widgets.a'],
    concurrency: 4, leaseSeconds: 30, deadlineSeconds: 60, maxAttempts: 3, backoff: { baseMs: 50, maxMs: 200 },
    handle: handle ?? (async (row) => ({ set: { b: `a=${row.a}` } })),
    ...over,
  };
}

export async function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last value ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 25));
    last = await probe();
  }
  return last;
}

export async function count(db: Db, where: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM widgets s WHERE ${sql.raw(where)}`.execute(db);
  return rows[0].n;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WidgetsFixture {
  t: TestDb;
  /** A daemon over the test database (short poll and sweep intervals, `defaults`, then `opts`), stopped after the test. */
  daemon(opts: Partial<DaemonOptions> & Pick<DaemonOptions, 'stages'>): Daemon;
  /** Stops the test's daemons now (the fixture does after each test). */
  stopDaemons(): Promise<void>;
}

/**
 * The hooks of a bus test file: one throwaway database for the file; before
 * each test the bus tables emptied and a fresh widgets table; after it, the
 * test's daemons stopped, then `cleanup` (what else the test opened).
 */
export function widgetsFixture(o: { defaults?: Partial<DaemonOptions>; cleanup?: () => Promise<void> } = {}): WidgetsFixture {
  const daemons: Daemon[] = [];
  const f = {
    daemon(opts: Partial<DaemonOptions> & Pick<DaemonOptions, 'stages'>): Daemon {
      const d = new Daemon({ db: f.t.db, connectionString: f.t.url, pollIntervalMs: 200, sweepIntervalMs: 200, ...o.defaults, ...opts });
      daemons.push(d);
      return d;
    },
    async stopDaemons() {
      await Promise.all(daemons.splice(0).map((d) => d.stop(1000)));
    },
  } as WidgetsFixture;
  beforeAll(async () => { f.t = await createTestDb(); });
  afterAll(async () => { await f.t.destroy(); });
  beforeEach(async () => {
    await sql`DROP TABLE IF EXISTS widgets`.execute(f.t.db);
    await sql`TRUNCATE leases, stage_runs, rate_limit_pauses, stage_settings, stages, workers, host_resources`.execute(f.t.db);
    await createWidgets(f.t.db);
  });
  afterEach(async () => {
    await f.stopDaemons();
    await o.cleanup?.();
  });
  return f;
}
