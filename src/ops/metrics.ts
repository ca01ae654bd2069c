import client from 'prom-client';
import type pg from 'pg';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * perfmine's Prometheus metrics, in a registry of their own (never the
 * global one), plus the default process metrics. Labels stay bounded: stage,
 * group, outcome, pool; never a PR or a repository.
 *
 * Counters come from in-process events (the daemon calls the `on*` methods);
 * gauges are read from the database at scrape time with one query, cached
 * for `cacheMs` so several scrapes (or several gauges of one scrape) share it.
 */

/** How an attempt ended, as counted by perfmine_stage_completions_total. */
export type CompletionOutcome = 'ok' | 'error' | 'failed' | 'rate_limited' | 'aborted' | 'released';

/** Everything a scrape reads from the database. */
export interface OpsSnapshot {
  stages: Array<{ stage: string; pending: number; running: number; retrying: number; failed: number; done: number; paused: boolean; oldest_pending_age_s: number | null }>;
  groups: Array<{ group: string; paused: boolean; until_s: number | null; breaker_open: boolean }>;
}

/** The metric names perfmine exports (the dashboard and alert test checks against this). */
export const METRIC_NAMES = [
  'perfmine_stage_claims_total', 'perfmine_stage_completions_total', 'perfmine_stage_attempt_duration_seconds',
  'perfmine_stage_pending', 'perfmine_stage_retrying', 'perfmine_stage_running', 'perfmine_stage_failed',
  'perfmine_stage_done', 'perfmine_stage_paused',
  'perfmine_stage_oldest_pending_age_seconds', 'perfmine_stage_lease_expiries_total',
  'perfmine_group_paused', 'perfmine_group_paused_until_seconds', 'perfmine_github_quota_remaining',
  'perfmine_llm_tokens_total', 'perfmine_llm_calls_total', 'perfmine_breaker_open',
  'perfmine_db_pool_total', 'perfmine_db_pool_idle', 'perfmine_db_pool_waiting',
  'perfmine_notifications_total', 'perfmine_poll_catchups_total', 'perfmine_up', 'perfmine_scrape_errors_total',
] as const;

/** One statement: the funnel's live columns and every known service group's pause. */
export async function readOpsSnapshot(db: Db): Promise<OpsSnapshot> {
  const { rows } = await sql<{ stages: OpsSnapshot['stages'] | null; groups: OpsSnapshot['groups'] | null }>`
    SELECT
      (SELECT json_agg(json_build_object('stage', f.stage, 'pending', f.pending, 'running', f.running, 'retrying', f.retrying,
              'failed', f.failed, 'done', f.done, 'paused', f.paused, 'oldest_pending_age_s', extract(epoch FROM f.oldest_pending_age)::float8))
         FROM perfmine_funnel() f) AS stages,
      (SELECT json_agg(json_build_object('group', g.group_name, 'paused', p.until > now(),
              'until_s', CASE WHEN p.until > now() THEN extract(epoch FROM p.until)::float8 END,
              'breaker_open', coalesce(p.until > now() AND p.kind = 'breaker', false)))
         FROM (SELECT DISTINCT unnest(rate_limit_groups) AS group_name FROM stages
               UNION SELECT group_name FROM rate_limit_pauses) g
         LEFT JOIN rate_limit_pauses p ON p.group_name = g.group_name) AS groups`.execute(db);
  return { stages: rows[0]?.stages ?? [], groups: rows[0]?.groups ?? [] };
}

export interface MetricsSources {
  /** The database the gauges are read from (the bus's pool). */
  db?: Db;
  /** Pools whose use is exported, by a short fixed name ("handlers", "bus"). */
  pools?: Array<{ name: string; pool: pg.Pool }>;
  /** GitHub requests left in the current window, summed over the tokens (undefined: not known yet). */
  githubQuota?: () => number | undefined;
  /** How long a database snapshot is reused. */
  cacheMs?: number;
}

export class PerfmineMetrics {
  readonly registry = new client.Registry();
  private readonly claims: client.Counter<'stage'>;
  private readonly completions: client.Counter<'stage' | 'outcome'>;
  private readonly duration: client.Histogram<'stage'>;
  private readonly leaseExpiries: client.Counter<'stage'>;
  private readonly llmTokens: client.Counter<'group' | 'kind'>;
  private readonly llmCalls: client.Counter<'group'>;
  private readonly notifications: client.Counter;
  private readonly catchups: client.Counter;
  private readonly scrapeErrors: client.Counter;
  private cached?: { at: number; value: Promise<OpsSnapshot | undefined> };
  /** The snapshot of the scrape in progress. */
  private scrape?: Promise<OpsSnapshot | undefined>;

  constructor(private sources: MetricsSources = {}) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    this.claims = new client.Counter({ name: 'perfmine_stage_claims_total', help: 'Rows claimed, per stage', labelNames: ['stage'], registers });
    this.completions = new client.Counter({
      name: 'perfmine_stage_completions_total', labelNames: ['stage', 'outcome'], registers,
      help: 'Attempts ended, per stage and outcome (ok, error: will retry, failed: given up, rate_limited: uncounted wait, aborted: lease lost, released: given back at shutdown)',
    });
    this.duration = new client.Histogram({
      name: 'perfmine_stage_attempt_duration_seconds', help: 'Wall time of attempts, per stage', labelNames: ['stage'], registers,
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400],
    });
    this.leaseExpiries = new client.Counter({ name: 'perfmine_stage_lease_expiries_total', help: 'Leases of dead or stuck workers this daemon reclaimed, per stage', labelNames: ['stage'], registers });
    this.llmTokens = new client.Counter({ name: 'perfmine_llm_tokens_total', help: 'LLM tokens spent by this daemon\'s attempts (kind: prompt, completion)', labelNames: ['group', 'kind'], registers });
    this.llmCalls = new client.Counter({ name: 'perfmine_llm_calls_total', help: 'LLM calls made by this daemon\'s attempts', labelNames: ['group'], registers });
    this.notifications = new client.Counter({ name: 'perfmine_notifications_total', help: 'Doorbell notifications received (pings excluded)', registers });
    this.catchups = new client.Counter({ name: 'perfmine_poll_catchups_total', help: 'Claims of rows found by the poll backstop or a reconnect scan rather than a doorbell', registers });
    this.scrapeErrors = new client.Counter({ name: 'perfmine_scrape_errors_total', help: 'Scrapes whose database snapshot failed (the gauges were left out)', registers });
    const self = this;
    new client.Gauge({ name: 'perfmine_up', help: '1 when the database answered this scrape\'s query', registers,
      async collect() { this.set((await self.snapshot()) ? 1 : 0); } });
    const stageGauge = (name: string, help: string, pick: (s: OpsSnapshot['stages'][number]) => number | null) =>
      new client.Gauge({
        name, help, labelNames: ['stage'], registers,
        async collect() {
          this.reset();
          for (const s of (await self.snapshot())?.stages ?? []) {
            const v = pick(s);
            if (v !== null) this.set({ stage: s.stage }, v);
          }
        },
      });
    stageGauge('perfmine_stage_pending', 'Rows ready for the stage and not claimed', (s) => s.pending);
    stageGauge('perfmine_stage_retrying', 'Rows waiting for a retry', (s) => s.retrying);
    stageGauge('perfmine_stage_running', 'Rows held by a running attempt', (s) => s.running);
    stageGauge('perfmine_stage_failed', 'Rows the stage gave up on (until `perfmine retry`)', (s) => s.failed);
    stageGauge('perfmine_stage_done', 'Rows the stage has decided (its done predicate holds)', (s) => s.done);
    stageGauge('perfmine_stage_paused', '1 while the stage is paused by a person (`perfmine pause`)', (s) => (s.paused ? 1 : 0));
    stageGauge('perfmine_stage_oldest_pending_age_seconds', 'Age of the oldest pending row (0 when none)', (s) => s.oldest_pending_age_s ?? 0);
    const groupGauge = (name: string, help: string, pick: (g: OpsSnapshot['groups'][number]) => number) =>
      new client.Gauge({
        name, help, labelNames: ['group'], registers,
        async collect() {
          this.reset();
          for (const g of (await self.snapshot())?.groups ?? []) this.set({ group: g.group }, pick(g));
        },
      });
    groupGauge('perfmine_group_paused', '1 while the service group is paused (rate limit or open breaker)', (g) => (g.paused ? 1 : 0));
    groupGauge('perfmine_group_paused_until_seconds', 'Unix time the group\'s pause ends (0 when not paused)', (g) => g.until_s ?? 0);
    groupGauge('perfmine_breaker_open', '1 while the group\'s circuit breaker is open (its service is down)', (g) => (g.breaker_open ? 1 : 0));
    new client.Gauge({
      name: 'perfmine_github_quota_remaining', help: 'GitHub requests left in the current rate-limit window (summed over tokens)', labelNames: ['group'], registers,
      collect() {
        this.reset();
        const left = sources.githubQuota?.();
        if (left !== undefined) this.set({ group: 'github' }, left);
      },
    });
    const poolGauge = (name: string, help: string, pick: (p: pg.Pool) => number) =>
      new client.Gauge({
        name, help, labelNames: ['pool'], registers,
        collect() { for (const p of sources.pools ?? []) this.set({ pool: p.name }, pick(p.pool)); },
      });
    poolGauge('perfmine_db_pool_total', 'Connections open in the pool', (p) => p.totalCount);
    poolGauge('perfmine_db_pool_idle', 'Idle connections in the pool', (p) => p.idleCount);
    poolGauge('perfmine_db_pool_waiting', 'Queries waiting for a connection', (p) => p.waitingCount);
  }

  /** Makes the per-stage series exist at 0 from the start, so rate() and absent() behave. */
  declareStages(stages: string[]): void {
    for (const stage of stages) {
      this.claims.inc({ stage }, 0);
      this.leaseExpiries.inc({ stage }, 0);
      for (const outcome of ['ok', 'error', 'failed'] as const) this.completions.inc({ stage, outcome }, 0);
    }
    this.llmCalls.inc({ group: 'llm' }, 0);
  }

  onClaims(stage: string, n: number, viaCatchup: boolean): void {
    this.claims.inc({ stage }, n);
    if (viaCatchup) this.catchups.inc(n);
  }

  onAttemptEnd(stage: string, outcome: CompletionOutcome, durationMs: number, cost?: Record<string, unknown>): void {
    this.completions.inc({ stage, outcome });
    if (outcome !== 'released') this.duration.observe({ stage }, durationMs / 1000);
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    if (cost && num(cost.llm_calls) > 0) {
      this.llmCalls.inc({ group: 'llm' }, num(cost.llm_calls));
      this.llmTokens.inc({ group: 'llm', kind: 'prompt' }, num(cost.llm_prompt_tokens));
      this.llmTokens.inc({ group: 'llm', kind: 'completion' }, num(cost.llm_completion_tokens));
    }
  }

  onLeaseExpiries(stage: string, n: number): void {
    this.leaseExpiries.inc({ stage }, n);
  }

  onNotification(): void {
    this.notifications.inc();
  }

  /** The database snapshot, shared by every gauge of a scrape and cached briefly; undefined when the query failed. */
  snapshot(): Promise<OpsSnapshot | undefined> {
    if (this.scrape) return this.scrape;
    const db = this.sources.db;
    if (!db) return Promise.resolve(undefined);
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.sources.cacheMs ?? 1500)) return this.cached.value;
    const value = readOpsSnapshot(db).catch(() => {
      this.scrapeErrors.inc();
      return undefined;
    });
    this.cached = { at: now, value };
    return value;
  }

  /** The text exposition of every metric; the gauges of one scrape share one snapshot. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.scrape = this.snapshot();
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.scrape = undefined;
    }
  }
}
