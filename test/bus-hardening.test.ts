import { spawn } from 'node:child_process';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { pgDriver } from '../src/bus/pg-driver.js';
import { LeaseLostError, ServiceDownError, type StageDefinition } from '../src/bus/stage.js';
import { connect, type Connection } from '../src/db/connect.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { count, insertWidgets, sleep, stageA, stageB, waitFor, widgetsFixture } from './helpers/widgets.js';

const extraConnections: Connection[] = [];
const widgetDb = widgetsFixture({ cleanup: async () => { await Promise.all(extraConnections.splice(0).map((c) => c.close())); } });
const { daemon } = widgetDb;

const q = async <T = any>(text: string) => (await sql.raw<T>(text).execute(widgetDb.t.db)).rows;
const runs = (stage: string, outcome?: string) =>
  q<{ n: number }>(`SELECT count(*)::int AS n FROM stage_runs WHERE stage = '${stage}'${outcome ? ` AND outcome = '${outcome}'` : ''}`).then((r) => r[0].n);

describe('re-requests: setting an output back to NULL re-runs the row exactly once more', () => {
  it('a row that failed for good runs again when its output is set to NULL', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    let fail = true;
    let calls = 0;
    const d = daemon({ stages: [stageA(async (row) => {
      calls++;
      if (fail) throw new Error('broken input');
      return { set: { a: row.id } };
    }, { maxAttempts: 2 })] });
    await d.start();
    await waitFor(() => q(`SELECT failed_at FROM leases`), (r) => r.length === 1 && r[0].failed_at !== null, 5000, 'failed');
    expect((await q(`SELECT failed_stages FROM widgets`))[0].failed_stages).toEqual(['fill_a']);
    fail = false;
    const before = calls;
    await sql`UPDATE widgets SET a = NULL`.execute(widgetDb.t.db);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 5000, 're-run');
    expect(calls).toBe(before + 1);
    expect((await q(`SELECT failed_stages FROM widgets`))[0].failed_stages).toEqual([]);
    expect(await q(`SELECT * FROM leases`)).toEqual([]);
  });

  it('a row waiting for a retry runs now with a fresh budget', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    let calls = 0;
    const d = daemon({ stages: [stageA(async (row) => {
      if (++calls === 1) throw new Error('first try fails');
      return { set: { a: row.id } };
    }, { backoff: { baseMs: 600_000, maxMs: 600_000 } })] });
    await d.start();
    await waitFor(() => q(`SELECT retry_at FROM leases`), (r) => r.length === 1 && r[0].retry_at !== null, 5000, 'waiting');
    await sql`UPDATE widgets SET a = NULL`.execute(widgetDb.t.db);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 5000, 're-run');
    expect(calls).toBe(2);
  });

  it('a re-request while the row runs supersedes that run: its result is not written and the row runs once more', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    let calls = 0;
    let release!: () => void;
    const firstHeld = new Promise<void>((r) => (release = r));
    const d = daemon({ stages: [stageA(async () => {
      calls++;
      if (calls === 1) await firstHeld;
      return { set: { a: calls * 100 } };
    })] });
    await d.start();
    await waitFor(async () => calls, (n) => n === 1);
    await sql`UPDATE widgets SET a = NULL`.execute(widgetDb.t.db); // while the first run is in progress
    release();
    await waitFor(() => count(widgetDb.t.db, 's.a = 200'), (n) => n === 1, 5000, 'second run written');
    await sleep(300);
    expect(calls).toBe(2);
    expect(await runs('fill_a', 'superseded')).toBe(1);
    expect(await runs('fill_a', 'succeeded')).toBe(1);
  });

  it('a retrying lease whose row was deleted is not outstanding work: --exit-when-idle still exits', async () => {
    await insertWidgets(widgetDb.t.db, 2);
    const d = daemon({ stages: [stageA(async (row) => {
      if (row.id % 2 === 1) throw new Error('odd rows fail');
      return { set: { a: row.id } };
    }, { backoff: { baseMs: 600_000, maxMs: 600_000 } })] });
    await d.start();
    await waitFor(() => q(`SELECT 1 FROM leases WHERE retry_at IS NOT NULL`), (r) => r.length === 1);
    await sql`DELETE FROM widgets WHERE id % 2 = 1`.execute(widgetDb.t.db);
    await Promise.race([d.whenIdle(), sleep(5000).then(() => { throw new Error('never idle'); })]);
    await pgDriver(widgetDb.t.db).pruneLeases();
    expect(await q(`SELECT * FROM leases`)).toEqual([]);
  });
});

describe('circuit breaker: a service that is down pauses its group instead of failing rows', () => {
  const down = (over: Partial<StageDefinition> = {}) => stageA(async () => {
    throw new ServiceDownError('llm', 'LLM endpoint unreachable: ECONNREFUSED');
  }, { rateLimitGroups: ['llm'], maxAttempts: 2, ...over });

  it('uncounted attempts, a growing pause visible in the funnel, no failed rows', async () => {
    await insertWidgets(widgetDb.t.db, 20);
    const d = daemon({ stages: [down()], breaker: { baseSeconds: 0.3, maxSeconds: 10 } });
    await d.start();
    await waitFor(() => q(`SELECT trips FROM rate_limit_pauses WHERE group_name = 'llm'`), (r) => r.length === 1 && r[0].trips >= 3, 8000, 'three openings');
    const [pause] = await q(`SELECT kind, reason, until - set_at AS length FROM rate_limit_pauses`);
    expect(pause.kind).toBe('breaker');
    expect(pause.reason).toContain('ECONNREFUSED');
    const [f] = await q(`SELECT failed, pause_reason FROM funnel WHERE stage = 'fill_a'`);
    expect(f.failed).toBe(0);
    expect(f.pause_reason).toMatch(/^llm: service down/);
    expect(await runs('fill_a', 'failed')).toBe(0);
    expect((await q(`SELECT max(attempts)::int AS m FROM leases`))[0].m ?? 0).toBe(0);
    // Pauses grow: the breaker does not hammer a dead service at full concurrency.
    expect(await runs('fill_a', 'service_down')).toBeLessThan(20 * 3);
  });

  it('the service coming back closes the breaker and every row is processed', async () => {
    await insertWidgets(widgetDb.t.db, 10);
    let up = false;
    const d = daemon({
      stages: [stageA(async (row) => {
        if (!up) throw new ServiceDownError('llm', 'down');
        const { reportServiceOk } = await import('../src/bus/attempt-scope.js');
        reportServiceOk('llm');
        return { set: { a: row.id } };
      }, { rateLimitGroups: ['llm'] })],
      breaker: { baseSeconds: 0.2, maxSeconds: 1 },
    });
    await d.start();
    await waitFor(() => q(`SELECT trips FROM rate_limit_pauses`), (r) => r.length === 1 && r[0].trips >= 2, 5000);
    up = true;
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 10, 8000, 'all rows after recovery');
    await waitFor(() => q(`SELECT trips FROM rate_limit_pauses`), (r) => r[0].trips === 0, 3000, 'breaker closed');
    expect(await runs('fill_a', 'failed')).toBe(0);
  });

  it('a failing start-up check opens the breaker before any row is tried', async () => {
    await insertWidgets(widgetDb.t.db, 5);
    let calls = 0;
    const d = daemon({
      stages: [stageA(async (row) => { calls++; return { set: { a: row.id } }; }, { rateLimitGroups: ['llm'] })],
      breaker: { baseSeconds: 60, maxSeconds: 60 },
      serviceChecks: [{ group: 'llm', check: async () => ({ ok: false, reason: 'API key rejected (HTTP 401)' }) }],
    });
    await d.start();
    await sleep(500);
    expect(calls).toBe(0);
    const [f] = await q(`SELECT pending, failed, pause_reason FROM funnel WHERE stage = 'fill_a'`);
    expect(f).toEqual({ pending: 5, failed: 0, pause_reason: 'llm: service down (start-up check: API key rejected (HTTP 401))' });
  });
});

describe('deadlines, checkpoints and bad text', () => {
  it('an attempt past its deadline is aborted and recorded as an error', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const d = daemon({ stages: [stageA(async (_row, ctx) => {
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      return {};
    }, { deadlineSeconds: 0.3, maxAttempts: 1 })] });
    await d.start();
    await waitFor(() => q(`SELECT error, outcome FROM stage_runs`), (r) => r.length === 1, 5000);
    const [r] = await q(`SELECT error, outcome FROM stage_runs`);
    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(/deadline exceeded.*0\.3 s/);
  });

  it('a handler that ignores its abort does not hold its slot: the attempt is recorded after the grace period', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const d = daemon({ stages: [stageA(async () => { await sleep(60_000); return {}; }, { deadlineSeconds: 0.2 })], abortGraceMs: 200 });
    await d.start();
    await waitFor(() => runs('fill_a', 'error'), (n) => n === 1, 3000, 'recorded despite the handler');
    expect(d.reactor('fill_a')!.inFlight.size).toBeLessThanOrEqual(1); // the retry may be running again
  });

  it('checkpoint writes only while the lease is this attempt\'s', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    await sql`CREATE TABLE side (widget bigint, note text)`.execute(widgetDb.t.db);
    let lostError: unknown;
    let releaseStuck!: () => void;
    const stuck = new Promise<void>((r) => (releaseStuck = r));
    const stale = daemon({
      workerId: 'stale', heartbeat: false, sweepIntervalMs: 60_000,
      stages: [stageA(async (row, ctx) => {
        await ctx.checkpoint((trx) => sql`INSERT INTO side VALUES (${row.id}, 'before')`.execute(trx));
        await stuck;
        try {
          await ctx.checkpoint((trx) => sql`INSERT INTO side VALUES (${row.id}, 'after losing the lease')`.execute(trx));
        } catch (err) {
          lostError = err;
        }
        return { set: { a: -1 } };
      }, { leaseSeconds: 0.3, concurrency: 1 })],
    });
    await stale.start();
    await waitFor(() => q(`SELECT * FROM side`), (r) => r.length === 1);
    const rescuer = daemon({ workerId: 'rescuer', stages: [stageA(async () => ({ set: { a: 7 } }))] });
    await rescuer.start();
    await waitFor(() => count(widgetDb.t.db, 's.a = 7'), (n) => n === 1, 5000, 'rescuer finishes');
    releaseStuck();
    await waitFor(async () => lostError, (e) => e !== undefined, 3000);
    expect(lostError).toBeInstanceOf(LeaseLostError);
    expect((await q(`SELECT note FROM side`)).map((r) => r.note)).toEqual(['before']);
    expect(await count(widgetDb.t.db, 's.a = 7')).toBe(1);
  });

  it('NUL bytes and lone surrogates in results, errors and costs are stored, not fatal', async () => {
    await insertWidgets(widgetDb.t.db, 2);
    const d = daemon({ stages: [stageB(undefined), stageA(async (row) => {
      if (row.id % 2) throw new Error('bad \u0000 byte and \ud800 half');
      return { set: { a: row.id }, cost: { note: 'x\u0000y\udc00' } as never };
    }, { maxAttempts: 1 })] });
    await d.start();
    await waitFor(() => q(`SELECT * FROM stage_runs WHERE stage = 'fill_a'`), (r) => r.length === 2, 5000);
    const [err] = await q(`SELECT error FROM stage_runs WHERE outcome = 'failed'`);
    expect(err.error).toBe('bad  byte and \ufffd half');
    await waitFor(() => count(widgetDb.t.db, 's.b IS NOT NULL'), (n) => n === 1);
    const [cost] = await q(`SELECT cost->>'note' AS note FROM stage_runs WHERE outcome = 'succeeded' AND stage = 'fill_a'`);
    expect(cost.note).toBe('xy\ufffd');
  });
});

describe('database faults', () => {
  it('a write-back that meets a database outage is retried when it is back, and written once', async () => {
    await insertWidgets(widgetDb.t.db, 3);
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(widgetDb.t.url).port || 5432));
    const bus = connect(proxy.urlFor(widgetDb.t.url), { max: 2, connectionTimeoutMs: 500 });
    extraConnections.push(bus);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const d = daemon({ busDb: bus.db, stages: [stageA(async (row) => { await gate; return { set: { a: row.id } }; })] });
    await d.start();
    await waitFor(() => q(`SELECT 1 FROM leases WHERE worker_id IS NOT NULL`), (r) => r.length === 3);
    proxy.cut();
    release();
    await sleep(1500); // write-backs fail and are retried meanwhile
    expect(await count(widgetDb.t.db, 's.a IS NOT NULL')).toBe(0);
    proxy.restore();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 3, 10_000, 'written after the outage');
    expect(await runs('fill_a', 'succeeded')).toBe(3);
    expect(await runs('fill_a', 'error')).toBe(0);
    await d.stop(1000);
    await proxy.close();
  });

  it('the LISTEN connection survives a long outage without leaking a connection', async () => {
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(widgetDb.t.url).port || 5432));
    const d = daemon({ connectionString: proxy.urlFor(widgetDb.t.url), stages: [stageA()], pollIntervalMs: 60_000, listenerCheckMs: 500 });
    await d.start();
    const listeners = async () => (await q<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = 'perfmine-listener:${process.pid}' AND datname = current_database()`))[0].n;
    expect(await listeners()).toBe(1);
    proxy.cut();
    await sleep(4000); // eight check cycles while the server cannot be reached
    proxy.restore();
    await waitFor(() => listeners(), (n) => n === 1, 5000, 'one listener again');
    await sleep(1500); // long enough for any retired subscriber to get through
    expect(await listeners()).toBe(1);
    await insertWidgets(widgetDb.t.db, 1);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 3000, 'doorbell works again');
    await d.stop(1000);
    await proxy.close();
  });
});

describe('workers and leases', () => {
  it('a worker on this host whose process is gone loses its leases at once, not at lease expiry', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const child = spawn('sleep', ['30']);
    const pid = child.pid!;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await sql`INSERT INTO workers (id, hostname, pid, stages) VALUES ('ghost', ${os.hostname()}, ${pid}, '{fill_a}')`.execute(widgetDb.t.db);
    await sql`INSERT INTO leases (stage, subject_id, subject_table, run_id, worker_id, claimed_at, expires_at, lease_seconds, attempts, max_attempts)
              SELECT 'fill_a', id, 'widgets', nextval('run_ids'), 'ghost', now(), now() + interval '1 hour', 3600, 1, 3 FROM widgets`.execute(widgetDb.t.db);
    const d = daemon({ stages: [stageA()] });
    await d.start();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 3000, 'rescued');
    expect((await q(`SELECT outcome, error FROM stage_runs ORDER BY id`))[0]).toMatchObject({ outcome: 'lease_expired' });
    expect((await q(`SELECT stopped_at IS NOT NULL AS stopped FROM workers WHERE id = 'ghost'`))[0].stopped).toBe(true);
  });

  it('a lease this worker holds but does not know of (its claim answer was lost) is given back', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    await sql`INSERT INTO leases (stage, subject_id, subject_table, run_id, worker_id, claimed_at, expires_at, lease_seconds, attempts, max_attempts)
              SELECT 'fill_a', id, 'widgets', nextval('run_ids'), 'me', now() - interval '1 minute', now() + interval '1 hour', 3600, 1, 3 FROM widgets`.execute(widgetDb.t.db);
    const d = daemon({ workerId: 'me', stages: [stageA(undefined, { leaseSeconds: 0.3 })] });
    await d.start();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 3000, 'claimed again');
  });

  it('an exclusive host resource never runs beside a shared or another exclusive holder, across daemons', async () => {
    await insertWidgets(widgetDb.t.db, 12);
    const active = { exclusive: 0, shared: 0 };
    let violations = 0;
    const hold = (mode: 'exclusive' | 'shared') => async (row: { id: number }) => {
      active[mode]++;
      if (active.exclusive > 1 || (active.exclusive && active.shared)) violations++;
      await sleep(40);
      active[mode]--;
      return { set: mode === 'shared' ? { a: row.id } : { b: 'x' } };
    };
    const builds = (id: string) => daemon({ workerId: id, stages: [stageA(hold('shared'), { resources: [{ name: 'cpu', mode: 'shared' }], concurrency: 3 })] });
    const benches = (id: string) => daemon({ workerId: id, stages: [stageB(hold('exclusive'), { resources: [{ name: 'cpu', mode: 'exclusive' }], concurrency: 2 })] });
    const all = [builds('b1'), builds('b2'), benches('x1'), benches('x2')];
    await Promise.all(all.map((d) => d.start()));
    await waitFor(() => count(widgetDb.t.db, 's.b IS NOT NULL'), (n) => n === 12, 15_000, 'all benchmarked');
    expect(violations).toBe(0);
    expect(await q(`SELECT * FROM host_resources`)).toEqual([]);
  });
});

describe('declarations make their own triggers', () => {
  it('registering a stage on a table without doorbells creates them, and an INSERT wakes it', async () => {
    await sql`CREATE TABLE gadgets (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), v int)`.execute(widgetDb.t.db);
    const gadget: StageDefinition = {
      name: 'fill_v', ordinal: 1, subjectTable: 'gadgets', pending: 's.v IS NULL', done: 's.v IS NOT NULL',
      writes: ['v'], outputs: ['v'], concurrency: 2, leaseSeconds: 10, deadlineSeconds: 10, maxAttempts: 2,
      backoff: { baseMs: 10, maxMs: 10 }, async handle(row) { return { set: { v: row.id } }; },
    };
    const d = daemon({ stages: [gadget], pollIntervalMs: 60_000 });
    await d.start();
    const triggers = (await q(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'gadgets'::regclass ORDER BY 1`)).map((r) => r.tgname);
    expect(triggers).toEqual(['perfmine_rerequest_v', 'perfmine_rows', 'perfmine_v']);
    await sql`INSERT INTO gadgets (v) VALUES (NULL)`.execute(widgetDb.t.db);
    await waitFor(async () => (await q(`SELECT count(*)::int AS n FROM gadgets WHERE v IS NOT NULL`))[0].n, (n) => n === 1, 2000, 'doorbell');
    await sql`DROP TABLE gadgets`.execute(widgetDb.t.db);
  });
});
