import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { pgDriver } from '../src/bus/pg-driver.js';
import { RateLimitedError, PermanentError } from '../src/bus/stage.js';
import { count, insertWidgets, sleep, stageA, stageB, waitFor, widgetsFixture } from './helpers/widgets.js';

const widgetDb = widgetsFixture();
const { daemon } = widgetDb;

describe('reactor runtime', () => {
  it('advances a row through a chain of stages from one INSERT, and records each attempt', async () => {
    const d = daemon({ stages: [stageA(), stageB()], pollIntervalMs: 60_000 });
    await d.start();
    await insertWidgets(widgetDb.t.db, 25);
    await waitFor(() => count(widgetDb.t.db, 's.b IS NOT NULL'), (n) => n === 25, 5000, 'chain to finish');
    const { rows } = await sql<{ b: string; id: number }>`SELECT id, b FROM widgets ORDER BY id`.execute(widgetDb.t.db);
    expect(rows.every((r) => r.b === `a=${r.id * 2}`)).toBe(true);
    const runs = await sql<{ stage: string; n: number }>`
      SELECT stage, count(*)::int AS n FROM stage_runs WHERE outcome = 'succeeded' GROUP BY stage ORDER BY stage`.execute(widgetDb.t.db);
    expect(runs.rows).toEqual([{ stage: 'fill_a', n: 25 }, { stage: 'fill_b', n: 25 }]);
    const leases = await sql<{ n: number }>`SELECT count(*)::int AS n FROM leases`.execute(widgetDb.t.db);
    expect(leases.rows[0].n).toBe(0);
  });

  it('two daemons never process one row at once, and every row is processed exactly once', async () => {
    await insertWidgets(widgetDb.t.db, 300);
    const active = new Set<number>();
    const seen = new Map<number, number>();
    let overlaps = 0;
    const handle = async (row: { id: number }) => {
      if (active.has(row.id)) overlaps++;
      active.add(row.id);
      seen.set(row.id, (seen.get(row.id) ?? 0) + 1);
      await sleep(Math.random() * 5);
      active.delete(row.id);
      return { set: { a: 1 } };
    };
    const a = daemon({ stages: [stageA(handle, { concurrency: 8 })], workerId: 'A' });
    const b = daemon({ stages: [stageA(handle, { concurrency: 8 })], workerId: 'B' });
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 300, 15_000, 'all rows');
    expect(overlaps).toBe(0);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(seen.size).toBe(300);
    const byWorker = await sql<{ worker_id: string; n: number }>`
      SELECT worker_id, count(*)::int AS n FROM stage_runs GROUP BY worker_id`.execute(widgetDb.t.db);
    expect(byWorker.rows.length).toBe(2); // both shared the work
  });

  it('a worker that stops heartbeating loses its lease; another finishes the row and the late write is refused', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    let releaseStuck!: () => void;
    const stuckDone = new Promise<void>((r) => (releaseStuck = r));
    const stuck = daemon({
      workerId: 'stuck', heartbeat: false, sweepIntervalMs: 60_000,
      stages: [stageA(async () => { await stuckDone; return { set: { a: -1 } }; }, { leaseSeconds: 0.5, concurrency: 1 })],
    });
    await stuck.start();
    await waitFor(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM leases WHERE worker_id = 'stuck'`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 1);
    const rescuer = daemon({ workerId: 'rescuer', stages: [stageA(async () => ({ set: { a: 42 } }), { leaseSeconds: 5 })] });
    await rescuer.start();
    await waitFor(() => count(widgetDb.t.db, 's.a = 42'), (n) => n === 1, 5000, 'rescuer to finish the row');
    releaseStuck(); // the stuck worker wakes up and tries to write its stale result
    await sleep(300);
    expect(await count(widgetDb.t.db, 's.a = 42')).toBe(1);
    const runs = await sql<{ worker_id: string; outcome: string }>`SELECT worker_id, outcome FROM stage_runs ORDER BY id`.execute(widgetDb.t.db);
    expect(runs.rows).toEqual([
      { worker_id: 'stuck', outcome: 'lease_expired' },
      { worker_id: 'rescuer', outcome: 'succeeded' },
    ]);
  });

  it('the driver refuses a write whose fencing token is no longer current', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const driver = pgDriver(widgetDb.t.db);
    const stage = stageA();
    await driver.registerStages([stage]);
    const [claim] = await driver.claim(stage, 1, 'w1');
    expect(claim).toBeDefined();
    // Someone else took the row over in the meantime (a newer run id).
    await sql`UPDATE leases SET run_id = nextval('run_ids'), worker_id = 'w2'`.execute(widgetDb.t.db);
    const stale = await driver.complete([{ stage, claim, outcome: { kind: 'succeeded', set: { a: 7 } } }], 'w1');
    expect(stale).toEqual([claim.runId]);
    expect(await count(widgetDb.t.db, 's.a IS NULL')).toBe(1);
  });

  it('retries with backoff, then fails for good with the last error; perfmine retry re-queues', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const attempts: number[] = [];
    let healthy = false;
    const d = daemon({
      stages: [stageA(async () => {
        attempts.push(Date.now());
        if (!healthy) throw new Error(`boom ${attempts.length}`);
        return { set: { a: 5 } };
      }, { maxAttempts: 3, backoff: { baseMs: 200, maxMs: 1000 } })],
    });
    await d.start();
    const failed = await waitFor(
      async () => (await sql<any>`SELECT attempts, failed_at, last_error FROM leases`.execute(widgetDb.t.db)).rows[0],
      (r) => !!r?.failed_at, 8000, 'terminal failure');
    expect(failed.attempts).toBe(3);
    expect(failed.last_error).toBe('boom 3');
    expect(attempts.length).toBe(3);
    // Equal jitter: the n-th wait is at least half of base * 2^(n-1).
    expect(attempts[1] - attempts[0]).toBeGreaterThanOrEqual(95);
    expect(attempts[2] - attempts[1]).toBeGreaterThanOrEqual(195);
    const outcomes = await sql<{ outcome: string }>`SELECT outcome FROM stage_runs ORDER BY id`.execute(widgetDb.t.db);
    expect(outcomes.rows.map((r) => r.outcome)).toEqual(['error', 'error', 'failed']);
    const funnel = await sql<any>`SELECT pending, failed FROM funnel WHERE stage = 'fill_a'`.execute(widgetDb.t.db);
    expect(funnel.rows[0]).toMatchObject({ pending: 0, failed: 1 });
    await sleep(500);
    expect(attempts.length).toBe(3); // out of the pending set

    healthy = true;
    expect(await pgDriver(widgetDb.t.db).retryFailed('fill_a')).toBe(1);
    await waitFor(() => count(widgetDb.t.db, 's.a = 5'), (n) => n === 1, 3000, 'retried row');
  });

  it('a PermanentError fails the row at once', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const d = daemon({ stages: [stageA(async () => { throw new PermanentError('bad input: no title'); })] });
    await d.start();
    await waitFor(async () => (await sql<any>`SELECT * FROM failures`.execute(widgetDb.t.db)).rows, (r) => r.length === 1);
    const f = (await sql<any>`SELECT attempts, last_error FROM failures`.execute(widgetDb.t.db)).rows[0];
    expect(f).toMatchObject({ attempts: 1, last_error: 'bad input: no title' });
  });

  it('re-runs a row when its output column is set back to NULL', async () => {
    await insertWidgets(widgetDb.t.db, 3);
    let calls = 0;
    const d = daemon({ stages: [stageA(async (row) => { calls++; return { set: { a: row.id } }; })], pollIntervalMs: 60_000 });
    await d.start();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 3);
    expect(calls).toBe(3);
    await sql`UPDATE widgets SET a = NULL WHERE id = (SELECT min(id) FROM widgets)`.execute(widgetDb.t.db);
    await waitFor(async () => calls, (n) => n === 4, 3000, 're-run');
    expect(await count(widgetDb.t.db, 's.a IS NOT NULL')).toBe(3);
  });

  it('resumes within seconds after the listener connection is killed', async () => {
    const d = daemon({ stages: [stageA()], pollIntervalMs: 60_000, listenerCheckMs: 1000 });
    await d.start();
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name LIKE 'perfmine-listener%' AND datname = current_database()`.execute(widgetDb.t.db);
    // A row inserted while the listener is down is found by the catch-up scan after reconnecting.
    await insertWidgets(widgetDb.t.db, 1);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 5000, 'catch-up after reconnect');
    expect(d.listener!.connections).toBeGreaterThanOrEqual(2);
    // And the doorbell itself works again (the poll backstop is an hour away).
    const t0 = Date.now();
    await insertWidgets(widgetDb.t.db, 1);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 2, 3000, 'doorbell after reconnect');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('graceful shutdown lets running work finish', async () => {
    await insertWidgets(widgetDb.t.db, 2);
    const d = daemon({ stages: [stageA(async (row) => { await sleep(300); return { set: { a: row.id } }; })] });
    await d.start();
    await waitFor(async () => (await sql<any>`SELECT count(*)::int AS n FROM leases WHERE worker_id IS NOT NULL`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 2);
    await d.stop(5000);
    expect(await count(widgetDb.t.db, 's.a IS NOT NULL')).toBe(2);
    const w = await sql<any>`SELECT stopped_at FROM workers`.execute(widgetDb.t.db);
    expect(w.rows[0].stopped_at).not.toBeNull();
  });

  it('graceful shutdown past its timeout releases leases without counting an attempt', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    const slow = stageA(async (_row, ctx) => {
      await new Promise((resolve) => { ctx.signal.addEventListener('abort', resolve); setTimeout(resolve, 20_000); });
      return { set: { a: -1 } };
    });
    const d = daemon({ stages: [slow], workerId: 'leaving' });
    await d.start();
    await waitFor(async () => (await sql<any>`SELECT count(*)::int AS n FROM leases WHERE worker_id IS NOT NULL`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 1);
    const began = Date.now();
    await d.stop(200);
    expect(Date.now() - began).toBeLessThan(3000);
    const lease = (await sql<any>`SELECT worker_id, attempts, failed_at FROM leases`.execute(widgetDb.t.db)).rows[0];
    expect(lease).toMatchObject({ worker_id: null, attempts: 0, failed_at: null });
    expect(await count(widgetDb.t.db, 's.a IS NULL')).toBe(1); // the aborted result was not written
    const next = daemon({ stages: [stageA()], workerId: 'next' });
    await next.start();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 1, 3000, 'another daemon to take over');
    const runs = await sql<any>`SELECT worker_id, outcome, attempt FROM stage_runs ORDER BY id`.execute(widgetDb.t.db);
    expect(runs.rows).toEqual([
      { worker_id: 'leaving', outcome: 'released', attempt: 1 },
      { worker_id: 'next', outcome: 'succeeded', attempt: 1 },
    ]);
  });

  it('pauses and resumes a stage by SQL without a restart', async () => {
    await sql`INSERT INTO stage_settings (stage, paused) VALUES ('fill_a', true)`.execute(widgetDb.t.db);
    const d = daemon({ stages: [stageA()] });
    await d.start();
    await insertWidgets(widgetDb.t.db, 5);
    await sleep(600);
    expect(await count(widgetDb.t.db, 's.a IS NOT NULL')).toBe(0);
    await sql`UPDATE stage_settings SET paused = false WHERE stage = 'fill_a'`.execute(widgetDb.t.db);
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 5, 3000, 'resume');
  });

  it('a rate-limited handler pauses its whole group until the given time', async () => {
    await insertWidgets(widgetDb.t.db, 3);
    const until = new Date(Date.now() + 1500);
    let limited = false;
    const calls: number[] = [];
    const a = stageA(async (row) => {
      calls.push(Date.now());
      if (!limited) { limited = true; throw new RateLimitedError(until, 'service says wait'); }
      return { set: { a: row.id } };
    }, { concurrency: 1, rateLimitGroups: ['github'] });
    const d = daemon({ stages: [a] });
    await d.start();
    const pause = await waitFor(async () => (await sql<any>`SELECT * FROM rate_limit_pauses`.execute(widgetDb.t.db)).rows, (r) => r.length === 1);
    expect(pause[0]).toMatchObject({ group_name: 'github', reason: 'service says wait' });
    const funnel = (await sql<any>`SELECT rate_limited_until FROM funnel WHERE stage = 'fill_a'`.execute(widgetDb.t.db)).rows[0];
    expect(funnel.rate_limited_until).not.toBeNull();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 3, 5000, 'work after the pause');
    expect(calls[1]).toBeGreaterThanOrEqual(until.getTime() - 50); // nothing ran during the pause
    const runs = await sql<any>`SELECT outcome, attempt FROM stage_runs ORDER BY id`.execute(widgetDb.t.db);
    expect(runs.rows[0]).toEqual({ outcome: 'rate_limited', attempt: 1 });
  });

  it('a result that the database rejects becomes that row\'s error; the rest of the batch is written', async () => {
    await insertWidgets(widgetDb.t.db, 6);
    const d = daemon({
      stages: [stageA(async (row) => ({ set: { a: row.id, c: row.id % 3 === 0 ? -1 : 1 } }), { maxAttempts: 1, concurrency: 6 })],
    });
    await d.start();
    await waitFor(() => count(widgetDb.t.db, 's.a IS NOT NULL'), (n) => n === 4, 5000);
    await waitFor(async () => (await sql<any>`SELECT * FROM failures`.execute(widgetDb.t.db)).rows.length, (n) => n === 2);
    const f = (await sql<any>`SELECT last_error FROM failures`.execute(widgetDb.t.db)).rows[0];
    expect(f.last_error).toMatch(/writing the result failed: .*check constraint/);
  });

  it('the funnel view counts pending, running, done and failed per stage', async () => {
    await insertWidgets(widgetDb.t.db, 10);
    const driver = pgDriver(widgetDb.t.db);
    await driver.registerStages([stageA(), stageB()]);
    await sql`UPDATE widgets SET a = 1 WHERE id IN (SELECT id FROM widgets ORDER BY id LIMIT 4)`.execute(widgetDb.t.db);
    await driver.claim(stageA(), 2, 'w');
    const rows = (await sql<any>`SELECT stage, pending, running, done, failed FROM funnel ORDER BY ordinal`.execute(widgetDb.t.db)).rows;
    expect(rows).toEqual([
      { stage: 'fill_a', pending: 4, running: 2, done: 4, failed: 0 },
      { stage: 'fill_b', pending: 4, running: 0, done: 0, failed: 0 },
    ]);
  });

  it('whenIdle resolves once nothing is left, for --exit-when-idle', async () => {
    await insertWidgets(widgetDb.t.db, 20);
    const d = daemon({ stages: [stageA(), stageB()] });
    await d.start();
    await d.whenIdle();
    expect(await count(widgetDb.t.db, 's.b IS NOT NULL')).toBe(20);
  });
});
