import pg from 'pg';
import type { Timeline } from './timeline.js';

export interface StageState {
  stage: string;
  pending: number;
  running: number;
  retrying: number;
  failed: number;
  done: number;
  /** A rate-limit pause (or circuit breaker) of one of its groups is on. */
  limited: boolean;
}

export interface Stall {
  seconds: number;
  from: number;
  to: number;
  /** It began when PostgreSQL came back. */
  afterRestart: boolean;
  /** Work nobody was doing, per stage and cause, when the stall ended (see ReadyCause). */
  ready: Record<string, Partial<Record<ReadyCause, number>>>;
}

/**
 * Why a row counts as work someone should be doing now: pending with no lease,
 * a retry that is due, a lease past expiry not yet swept, a lease held by a
 * daemon that is dead, or one its live holder stopped heartbeating.
 */
export type ReadyCause = 'pending' | 'retry_due' | 'expired' | 'held_by_dead' | 'held_silent';

export interface LeaseSilence {
  seconds: number;
  worker: string;
  workerAlive: boolean;
  stage: string;
  subject: number;
  at: number;
}

export interface ConnectionPeak {
  t: number;
  overBudget: number;
  detail: Array<{ application_name: string; state: string | null; n: number; budget: number; dead_for_s?: number }>;
}

export interface MonitorOptions {
  url: string;
  timeline: Timeline;
  /** Work of this stage is not expected to move now (the benchmark has its service down on purpose). */
  excused(stage: string): boolean;
  /** When PostgreSQL last came back (timeline seconds), or null. */
  databaseBackAt(): number | null;
  /** Timeline seconds when a daemon (by worker id / application_name) died, if it did. */
  deathOf(label: string): number | undefined;
  /** Labels of the daemons running now. */
  liveLabels(): string[];
  /** Connections a live daemon may hold: its pool plus the LISTEN connection. */
  connectionBudget: number;
  /** A live holder's lease unextended for longer than this is no longer being worked on (heartbeats come every 20 s here). */
  silentAfterSeconds: number;
}

const SAMPLE_MS = 250;
/** Connections of a killed daemon may take a moment to be noticed by the server. */
const DEATH_GRACE_S = 5;

/**
 * Samples the funnel every 250 ms on its own connection (reconnecting across
 * PostgreSQL restarts) and measures:
 * - stalls: time with work nobody is doing (see ReadyCause) and no progress
 *   at all (no new stage_runs row, no PR stored, no cursor moved, no stage
 *   done), counted from PostgreSQL's return when it follows a restart. Stages
 *   in a rate-limit pause, or whose service the benchmark has down on
 *   purpose, do not count;
 * - the longest a held lease went without a heartbeat (a dead holder, or a
 *   live one that dropped the row without giving it back);
 * - connections per daemon over its budget (every ~1 s).
 */
export class Monitor {
  stages: StageState[] = [];
  readonly stalls: Stall[] = [];
  maxStall: Stall | null = null;
  /** The longest a held lease went without a heartbeat (healthy: up to the heartbeat period). */
  maxLeaseSilence: LeaseSilence | null = null;
  connectionPeak: ConnectionPeak | null = null;
  samples = 0;
  failedSamples = 0;
  private client?: pg.Client;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private signature: string | null = null;
  private stallSince: number | null = null;
  private stallAfterRestart = false;
  private prevAt = 0;
  private lastOk = false;
  private outstandingZeroStreak = 0;

  constructor(private o: MonitorOptions) {}

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.end().catch(() => undefined);
  }

  /** Nothing pending, running or waiting to retry in two samples in a row (failed rows wait for a person). */
  get idle(): boolean {
    return this.outstandingZeroStreak >= 2;
  }

  outstanding(): number {
    return this.stages.reduce((n, s) => n + s.pending + s.running + s.retrying, 0);
  }

  /** Resolves true when idle, false at the timeout. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.idle) return true;
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
    return this.idle;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.sample().finally(() => this.schedule()), SAMPLE_MS);
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({ connectionString: this.o.url, connectionTimeoutMillis: 1000, application_name: 'chaos-monitor' });
    client.on('error', () => undefined); // a restart ends the session; the next sample reconnects
    await client.connect();
    await client.query('SET statement_timeout = 2000');
    this.client = client;
    return client;
  }

  private async sample(): Promise<void> {
    const t = this.o.timeline.now();
    let row: any;
    try {
      const client = await this.connection();
      ({ rows: [row] } = await client.query(SAMPLE_SQL));
      if (++this.samples % 4 === 0) await this.sampleConnections(client, t);
    } catch {
      this.failedSamples++;
      const dead = this.client;
      this.client = undefined;
      await dead?.end().catch(() => undefined);
      // No sample, no verdict: the stall clock restarts from PostgreSQL's return.
      this.lastOk = false;
      this.stallSince = null;
      return;
    }
    this.stages = (row.funnel as StageState[]).map((s) => ({ ...s, pending: +s.pending, running: +s.running, retrying: +s.retrying, failed: +s.failed, done: +s.done }));
    this.outstandingZeroStreak = this.outstanding() === 0 ? this.outstandingZeroStreak + 1 : 0;
    const ready = this.readyWork(row, t);
    const signature = `${row.runs}|${row.prs}|${row.cursors}|${this.stages.map((s) => s.done).join(',')}`;
    const resumed = !this.lastOk;
    this.lastOk = true;
    const progressed = signature !== this.signature;
    this.signature = signature;

    if (!Object.keys(ready).length) {
      this.stallSince = null;
    } else if (resumed) {
      // First sample after an outage of ours or PostgreSQL's: measure from when the server came back.
      const back = this.o.databaseBackAt();
      this.stallAfterRestart = back !== null && t - back < 10;
      this.stallSince = this.stallAfterRestart ? back! : t;
    } else if (progressed) {
      this.stallSince = null;
    } else {
      if (this.stallSince === null) this.stallAfterRestart = false;
      this.stallSince ??= this.prevAt;
      const stall: Stall = {
        seconds: Math.round((t - this.stallSince) * 100) / 100,
        from: Math.round(this.stallSince * 10) / 10,
        to: Math.round(t * 10) / 10,
        afterRestart: this.stallAfterRestart,
        ready,
      };
      const last = this.stalls.at(-1);
      if (last && last.from === stall.from) this.stalls[this.stalls.length - 1] = stall;
      else this.stalls.push(stall);
      if (!this.maxStall || stall.seconds > this.maxStall.seconds) this.maxStall = stall;
    }
    this.prevAt = t;
  }

  /** Work nobody is doing now, by stage and cause; stages paused by a rate limit or excused are left out. */
  private readyWork(row: any, t: number): Stall['ready'] {
    const ready: Stall['ready'] = {};
    const add = (stage: string, cause: ReadyCause, n: number) => {
      const st = this.stages.find((s) => s.stage === stage);
      if (!n || !st || st.limited || this.o.excused(stage)) return;
      const r = (ready[stage] ??= {});
      r[cause] = (r[cause] ?? 0) + n;
    };
    for (const s of this.stages) add(s.stage, 'pending', s.pending);
    for (const [stage, n] of Object.entries(row.due as Record<string, number>)) add(stage, 'retry_due', Number(n));
    for (const h of row.held as Array<{ worker: string; stage: string; subject: number; expired: boolean; silence: number }>) {
      const died = this.o.deathOf(h.worker);
      const silence = Math.round(Number(h.silence) * 10) / 10;
      if (!this.maxLeaseSilence || silence > this.maxLeaseSilence.seconds) {
        this.maxLeaseSilence = { seconds: silence, worker: h.worker, workerAlive: died === undefined, stage: h.stage, subject: Number(h.subject), at: Math.round(t) };
      }
      if (h.expired) add(h.stage, 'expired', 1);
      else if (died !== undefined) add(h.stage, 'held_by_dead', 1);
      else if (silence > this.o.silentAfterSeconds) add(h.stage, 'held_silent', 1);
    }
    return ready;
  }

  private async sampleConnections(client: pg.Client, t: number): Promise<void> {
    const { rows } = await client.query(CONNECTIONS_SQL);
    const peak = overBudget(rows, t, this.o);
    if (peak.overBudget > 0 && (!this.connectionPeak || peak.overBudget > this.connectionPeak.overBudget)) this.connectionPeak = peak;
  }
}

/** Connections beyond what each daemon may hold; every connection of a daemon dead for a while, or of no daemon, is over. */
export function overBudget(
  rows: Array<{ application_name: string; state: string | null; n: number | string }>,
  t: number,
  o: Pick<MonitorOptions, 'liveLabels' | 'deathOf' | 'connectionBudget'>,
): ConnectionPeak {
  const live = new Set(o.liveLabels());
  const perLabel = new Map<string, number>();
  for (const r of rows) perLabel.set(r.application_name, (perLabel.get(r.application_name) ?? 0) + Number(r.n));
  const budgetOf = (label: string): number => {
    if (live.has(label)) return o.connectionBudget;
    const died = o.deathOf(label);
    return died !== undefined && t - died < DEATH_GRACE_S ? Number.POSITIVE_INFINITY : 0;
  };
  let over = 0;
  for (const [label, n] of perLabel) over += Math.max(0, n - budgetOf(label));
  const detail = rows
    .filter((r) => (perLabel.get(r.application_name) ?? 0) > budgetOf(r.application_name))
    .map((r) => {
      const died = o.deathOf(r.application_name);
      const dead = died !== undefined ? { dead_for_s: Math.round((t - died) * 10) / 10 } : {};
      return { application_name: r.application_name, state: r.state, n: Number(r.n), budget: budgetOf(r.application_name), ...dead };
    });
  return { t: Math.round(t), overBudget: over, detail };
}

/** Client connections to the benchmark database except the benchmark's own. */
export const CONNECTIONS_SQL = `
  SELECT coalesce(nullif(application_name, ''), '(none)') AS application_name, state, count(*) AS n
  FROM pg_stat_activity
  WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
    AND application_name NOT LIKE 'chaos-harness%' AND application_name <> 'chaos-monitor'
  GROUP BY 1, 2 ORDER BY 1, 2`;

const SAMPLE_SQL = `
  SELECT
    (SELECT coalesce(json_agg(json_build_object(
        'stage', f.stage, 'pending', f.pending, 'running', f.running, 'retrying', f.retrying,
        'failed', f.failed, 'done', f.done, 'limited', coalesce(f.rate_limited_until > now(), false))
        ORDER BY f.ordinal), '[]') FROM funnel f) AS funnel,
    (SELECT coalesce(json_object_agg(stage, n), '{}') FROM (
        SELECT stage, count(*) AS n FROM leases
        WHERE failed_at IS NULL AND worker_id IS NULL AND retry_at <= now()
        GROUP BY stage) x) AS due,
    (SELECT count(*) FROM stage_runs) AS runs,
    (SELECT count(*) FROM pull_requests) AS prs,
    (SELECT coalesce(sum(extract(epoch FROM scrape_cursor)), 0) FROM repositories) AS cursors,
    (SELECT coalesce(json_agg(json_build_object('worker', worker_id, 'stage', stage, 'subject', subject_id,
        'expired', expires_at < now(),
        -- since the claim or the last heartbeat, which set expires_at to now + lease_seconds (an
        -- expired lease says nothing: the sweeper may have expired it early, its worker being gone)
        'silence', CASE WHEN expires_at < now() THEN 0
                        ELSE extract(epoch FROM now() - (expires_at - make_interval(secs => lease_seconds))) END)), '[]')
       FROM leases WHERE worker_id IS NOT NULL) AS held`;
