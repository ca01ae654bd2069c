import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { Daemon } from '../src/bus/daemon.js';
import type { SubjectRow } from '../src/bus/stage.js';
import { connect } from '../src/db/connect.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { insertWidgets, sleep, stageA, stageB, waitFor, widgetsFixture } from './helpers/widgets.js';

const widgetDb = widgetsFixture({ defaults: { http: { port: 0 } } });
const { daemon } = widgetDb;

/** Parses Prometheus text exposition: `name{a="b"} value` lines into a list of samples (HELP/TYPE checked). */
function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) { typed.add(type[1]); continue; }
    if (line.startsWith('#')) { expect(line).toMatch(/^# HELP \S+ /); continue; }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `a sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const l of m![2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[l[1]] = l[2];
    const base = m![1].replace(/_(bucket|sum|count)$/, '');
    expect(typed.has(m![1]) || typed.has(base), `TYPE line before ${m![1]}`).toBe(true);
    samples.push({ name: m![1], labels, value: Number(m![3]) });
  }
  return samples;
}

async function scrape(d: Daemon) {
  const res = await fetch(`${d.httpUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/plain/);
  const samples = parseMetrics(await res.text());
  return (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('the HTTP listener', () => {
  it('/metrics counts claims, completions, durations, LLM use and doorbells, and reads the funnel and pauses from the database', async () => {
    const cost = async (row: { id: number }) => ({ set: { a: row.id * 2 }, cost: { llm_calls: 1, llm_prompt_tokens: 100, llm_completion_tokens: 10 } });
    let failOnce = true;
    const flaky = async (row: SubjectRow) => {
      if (failOnce) { failOnce = false; throw new Error('first try fails'); }
      return { set: { b: `a=${row.a}` } };
    };
    const d = daemon({ stages: [stageA(cost, { rateLimitGroups: ['llm'] }), stageB(flaky)], pools: [{ name: 'handlers', pool: widgetDb.t.pool }] });
    await d.start();
    expect(d.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const before = await scrape(d);
    expect(before('perfmine_stage_claims_total', { stage: 'fill_a' })).toBe(0);
    expect(before('perfmine_stage_pending', { stage: 'fill_a' })).toBe(0);
    expect(before('perfmine_up')).toBe(1);
    expect(before('process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0); // default process metrics

    await insertWidgets(widgetDb.t.db, 6);
    await waitFor(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM widgets WHERE b IS NOT NULL`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 6);
    // Pause fill_b and add rows: they wait as pending of fill_b once fill_a is done with them.
    await sql`UPDATE stage_settings SET paused = true WHERE stage = 'fill_b'`.execute(widgetDb.t.db);
    await sleep(300);
    await insertWidgets(widgetDb.t.db, 4);
    await waitFor(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM widgets WHERE a IS NULL`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 0);
    await sql`INSERT INTO rate_limit_pauses (group_name, until, reason, kind, trips) VALUES ('llm', now() + interval '10 minutes', 'test', 'breaker', 1)`.execute(widgetDb.t.db);
    await sleep(1600); // past the snapshot cache

    const after = await scrape(d);
    expect(after('perfmine_stage_claims_total', { stage: 'fill_a' })).toBe(10);
    expect(after('perfmine_stage_claims_total', { stage: 'fill_b' })).toBe(7); // one retry
    expect(after('perfmine_stage_completions_total', { stage: 'fill_a', outcome: 'ok' })).toBe(10);
    expect(after('perfmine_stage_completions_total', { stage: 'fill_b', outcome: 'error' })).toBe(1);
    expect(after('perfmine_stage_completions_total', { stage: 'fill_b', outcome: 'ok' })).toBe(6);
    expect(after('perfmine_stage_attempt_duration_seconds_count', { stage: 'fill_a' })).toBe(10);
    expect(after('perfmine_llm_calls_total', { group: 'llm' })).toBe(10);
    expect(after('perfmine_llm_tokens_total', { group: 'llm', kind: 'prompt' })).toBe(1000);
    expect(after('perfmine_notifications_total')).toBeGreaterThan(0);
    expect(after('perfmine_stage_pending', { stage: 'fill_b' })).toBe(4);
    expect(after('perfmine_stage_oldest_pending_age_seconds', { stage: 'fill_b' })).toBeGreaterThan(1);
    expect(after('perfmine_stage_running', { stage: 'fill_a' })).toBe(0);
    expect(after('perfmine_stage_failed', { stage: 'fill_a' })).toBe(0);
    expect(after('perfmine_breaker_open', { group: 'llm' })).toBe(1);
    expect(after('perfmine_group_paused', { group: 'llm' })).toBe(1);
    expect(after('perfmine_group_paused_until_seconds', { group: 'llm' })).toBeGreaterThan(Date.now() / 1000 + 500);
    expect(after('perfmine_db_pool_total', { pool: 'handlers' })).toBeGreaterThan(0);
    expect(after('perfmine_db_pool_waiting', { pool: 'handlers' })).toBeTypeOf('number');

    const other = await fetch(`${d.httpUrl}/nope`);
    expect(other.status).toBe(404);
  });

  it('a lease reclaimed from a stuck worker counts in perfmine_stage_lease_expiries_total of the daemon that swept it', async () => {
    await insertWidgets(widgetDb.t.db, 1);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const stuck = daemon({ workerId: 'stuck', heartbeat: false, sweepIntervalMs: 60_000, http: undefined,
      stages: [stageA(async () => { await held; return { set: { a: -1 } }; }, { leaseSeconds: 0.5, concurrency: 1 })] });
    await stuck.start();
    await waitFor(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM leases WHERE worker_id = 'stuck'`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 1);
    const rescuer = daemon({ workerId: 'rescuer', stages: [stageA(async () => ({ set: { a: 42 } }))] });
    await rescuer.start();
    await waitFor(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM widgets WHERE a = 42`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 1);
    release();
    const m = await scrape(rescuer);
    expect(m('perfmine_stage_lease_expiries_total', { stage: 'fill_a' })).toBe(1);
    expect(m('perfmine_stage_completions_total', { stage: 'fill_a', outcome: 'ok' })).toBe(1);
  });

  it('/healthz is 200 while the database and LISTEN answer and 503 naming what is down when they do not', async () => {
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(widgetDb.t.url).port || 5432));
    const viaProxy = proxy.urlFor(widgetDb.t.url);
    const bus = connect(viaProxy, { max: 2, connectionTimeoutMs: 1000 });
    try {
      const d = daemon({ stages: [stageA()], busDb: bus.db, connectionString: viaProxy, listenerCheckMs: 1000 });
      await d.start();
      const ok = await fetch(`${d.httpUrl}/healthz`);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ status: 'ok', down: [] });
      proxy.cut();
      const down = await waitFor(async () => {
        const res = await fetch(`${d.httpUrl}/healthz`);
        return { status: res.status, body: await res.json() as { down: string[] } };
      }, (r) => r.status === 503 && r.body.down.includes('database') && r.body.down.includes('listener'), 10_000, 'healthz 503');
      expect(down.body).toMatchObject({ status: 'down', checks: { database: { ok: false }, process: { ok: true } } });
      expect(JSON.stringify(down.body)).not.toContain(viaProxy); // no connection string in the answer
      const metrics = await scrape(d); // /metrics still answers, with perfmine_up 0 and no database gauges
      expect(metrics('perfmine_up')).toBe(0);
      proxy.restore();
      await waitFor(async () => (await fetch(`${d.httpUrl}/healthz`)).status, (s) => s === 200, 15_000, 'healthz back to 200');
    } finally {
      await widgetDb.stopDaemons();
      await bus.close();
      await proxy.close();
    }
  });

  it('/readyz is 503 while starting and stopping and 200 in between', async () => {
    let letStart!: () => void;
    const started = new Promise<void>((r) => (letStart = r));
    let letFinish!: () => void;
    const finish = new Promise<void>((r) => (letFinish = r));
    const d = daemon({
      stages: [stageA(async (row) => { await finish; return { set: { a: row.id } }; }, { rateLimitGroups: ['llm'] })],
      serviceChecks: [{ group: 'llm', check: async () => { await started; return { ok: true }; } }],
    });
    const starting = d.start();
    await waitFor(async () => d.httpUrl, (u) => !!u, 5000, 'the listener');
    const early = await fetch(`${d.httpUrl}/readyz`);
    expect(early.status).toBe(503);
    expect(await early.json()).toMatchObject({ reason: 'starting' });
    letStart();
    await starting;
    expect((await fetch(`${d.httpUrl}/readyz`)).status).toBe(200);
    await insertWidgets(widgetDb.t.db, 1);
    await waitFor(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM leases WHERE worker_id IS NOT NULL`.execute(widgetDb.t.db)).rows[0].n, (n) => n === 1);
    const stopping = d.stop(5000);
    const late = await fetch(`${d.httpUrl}/readyz`);
    expect(late.status).toBe(503);
    expect(await late.json()).toMatchObject({ reason: 'stopping' });
    letFinish();
    await stopping;
    await expect(fetch(`${d.httpUrl}/readyz`)).rejects.toThrow(); // closed with the daemon
  });
});
