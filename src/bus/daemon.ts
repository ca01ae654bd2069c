import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Db } from '../db/connect.js';
import { scrubSecrets, silentLogger, type Logger } from '../log.js';
import { Completer } from './completer.js';
import type { BreakerSettings, BusDriver } from './driver.js';
import { Listener } from './listener.js';
import { Heartbeater } from './maintenance/heartbeater.js';
import { Sweeper } from './maintenance/sweeper.js';
import { Scheduler, type ScheduledJob } from './maintenance/scheduler.js';
import { Housekeeper, type HousekeepingJob } from './maintenance/housekeeper.js';
import { pgDriver } from './pg-driver.js';
import { Reactor } from './reactor.js';
import { doorbellsOf } from './sql/register.js';
import { validateStage, type StageDefinition } from './stage.js';
import type pg from 'pg';
import { PerfmineMetrics } from '../ops/metrics.js';
import { checkHealth, type HealthReport } from '../ops/health.js';
import { startOpsServer, type OpsServer } from '../ops/server.js';

/** A start-up check of a service's credentials and reachability. */
export interface ServiceCheck {
  group: string;
  check(signal: AbortSignal): Promise<{ ok: true } | { ok: false; reason: string }>;
}

export interface DaemonOptions {
  /** Handlers' database (ctx.db, checkpoints). */
  db: Db;
  /**
   * The bus's own database: claims, write-backs, heartbeats, sweeps. A pool of
   * its own so handler queries can never starve a heartbeat (default: db).
   */
  busDb?: Db;
  /** For the dedicated LISTEN connection. */
  connectionString: string;
  stages: StageDefinition[];
  /** Cron jobs that feed the funnel (e.g. the monthly discovery). */
  schedule?: ScheduledJob[];
  /** Chores run at start and then periodically (reaping orphaned processes, pruning). */
  housekeeping?: HousekeepingJob[];
  workerId?: string;
  log?: Logger;
  pollIntervalMs?: number;
  sweepIntervalMs?: number;
  shutdownTimeoutMs?: number;
  listenerCheckMs?: number;
  /** Write-back batching: largest batch and number of concurrent flushers. */
  maxWriteBatch?: number;
  writeFlushers?: number;
  /** Circuit breaker pauses for a service that is down (default 5 s, doubling, at most 300 s). */
  breaker?: BreakerSettings;
  /** Checked at start; a failing one opens its group's breaker with the reason. */
  serviceChecks?: ServiceCheck[];
  /** This host's name for host-local resources (default os.hostname()). */
  host?: string;
  /** How long a handler may ignore its abort before the attempt is recorded without it. */
  abortGraceMs?: number;
  /** Tests turn these off to play a stuck worker or a daemon without doorbell. */
  heartbeat?: boolean;
  listen?: boolean;
  driver?: BusDriver;
  /** The HTTP listener (/metrics, /healthz, /readyz); off when absent. Port 0 picks a free port. */
  http?: { port: number; host?: string };
  /** Pools whose use /metrics exports, by a short name ("handlers", "bus"). */
  pools?: Array<{ name: string; pool: pg.Pool }>;
  /** GitHub requests left in the current window (for perfmine_github_quota_remaining). */
  githubQuota?: () => number | undefined;
}

export function defaultWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * One daemon: a reactor per stage, the doorbell listener, a poll backstop,
 * the heartbeater and the sweeper. Several daemons may share a database.
 */
export class Daemon {
  readonly workerId: string;
  readonly reactors: Reactor[];
  readonly listener?: Listener;
  private driver: BusDriver;
  private completer: Completer;
  private heartbeater: Heartbeater;
  private sweeper: Sweeper;
  private scheduler: Scheduler;
  private housekeeper: Housekeeper;
  private log: Logger;
  private pollTimer?: NodeJS.Timeout;
  private routes = new Map<string, Reactor[]>();
  private stopping?: Promise<void>;
  private idleWaiters: Array<() => void> = [];
  private checkingIdle = false;
  private recheckIdle = false;
  readonly metrics: PerfmineMetrics;
  private http?: OpsServer;
  private phase: 'new' | 'starting' | 'running' | 'stopping' = 'new';

  constructor(private opts: DaemonOptions) {
    opts.stages.forEach(validateStage);
    this.workerId = opts.workerId ?? defaultWorkerId();
    this.log = (opts.log ?? silentLogger).child({ worker: this.workerId });
    this.driver = opts.driver ?? pgDriver(opts.busDb ?? opts.db);
    this.completer = new Completer(this.driver, this.workerId, this.log, {
      maxBatch: opts.maxWriteBatch ?? 500,
      flushers: opts.writeFlushers ?? 2,
      // A write-back may have been the last piece of work someone is waiting for.
      afterFlush: () => { if (this.idleWaiters.length) setImmediate(() => void this.checkIdle()); },
    });
    const groupPauses = new Map<string, number>();
    const reactorOptions = { breaker: this.breaker, host: opts.host ?? os.hostname(), abortGraceMs: opts.abortGraceMs };
    this.reactors = opts.stages.map((s) => new Reactor(s, this.driver, this.completer, opts.db, this.workerId, this.log, groupPauses, reactorOptions));
    this.metrics = new PerfmineMetrics({ db: opts.busDb ?? opts.db, pools: opts.pools, githubQuota: opts.githubQuota });
    this.metrics.declareStages(opts.stages.map((s) => s.name));
    for (const r of this.reactors) {
      const name = r.stage.name;
      r.onClaims = (n, viaCatchup) => this.metrics.onClaims(name, n, viaCatchup);
      r.onAttemptEnd = (outcome, ms, cost) => this.metrics.onAttemptEnd(name, outcome, ms, cost);
    }
    for (const r of this.reactors) {
      const { stage } = r;
      // A stage also wakes on its own output columns, so NULLing one re-runs the row at once.
      const payloads = new Set([...doorbellsOf(stage), `stage:${stage.name}`]);
      for (const payload of payloads) {
        this.routes.set(payload, [...(this.routes.get(payload) ?? []), r]);
      }
    }
    this.heartbeater = new Heartbeater(this.driver, this.workerId, this.reactors, this.log);
    this.sweeper = new Sweeper(this.driver, this.workerId, opts.sweepIntervalMs ?? 5000, this.log);
    this.sweeper.onExpired = (stage, n) => this.metrics.onLeaseExpiries(stage, n);
    this.scheduler = new Scheduler(opts.db, opts.schedule ?? [], this.log);
    this.housekeeper = new Housekeeper(opts.housekeeping ?? [], this.log);
    if (opts.listen !== false) {
      this.listener = new Listener(opts.connectionString, this.log, {
        onPayload: (p) => this.onDoorbell(p),
        onConnected: () => this.wakeAll(),
        onNotification: () => this.metrics.onNotification(),
      }, opts.listenerCheckMs ?? 10_000);
    }
  }

  get breaker(): BreakerSettings {
    return this.opts.breaker ?? { baseSeconds: 5, maxSeconds: 300 };
  }

  reactor(stage: string): Reactor | undefined {
    return this.reactors.find((r) => r.stage.name === stage);
  }

  /** The HTTP listener's base URL, when it runs. */
  get httpUrl(): string | undefined {
    return this.http?.url;
  }

  /** /healthz: the process answers, the database answers in time, the LISTEN connection is live. */
  health(): Promise<HealthReport> {
    const listener = this.listener;
    return checkHealth({ db: this.opts.busDb ?? this.opts.db, listenerLive: listener ? () => listener.live : undefined });
  }

  async start(): Promise<void> {
    this.phase = 'starting';
    try {
      await this.startParts();
    } catch (err) {
      await this.http?.close();
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    if (this.opts.http) {
      this.http = await startOpsServer({
        ...this.opts.http, metrics: this.metrics, log: this.log, health: () => this.health(),
        notReady: () => (this.phase === 'running' ? null : this.phase === 'stopping' ? 'stopping' : 'starting'),
      });
      this.log.info({ url: this.http.url }, 'HTTP listener: /metrics /healthz /readyz');
    }
    await this.driver.registerStages(this.opts.stages);
    for (const s of this.opts.stages) await s.prepare?.(this.opts.db);
    await this.driver.registerWorker(this.workerId, this.opts.stages.map((s) => s.name));
    await this.checkServices();
    await this.applySettings();
    await this.sweeper.sweep();
    await this.housekeeper.start();
    if (this.opts.heartbeat !== false) this.heartbeater.start();
    this.sweeper.start();
    this.scheduler.start();
    await this.listener?.start();
    this.pollTimer = setInterval(() => void this.poll(), this.opts.pollIntervalMs ?? 1000);
    this.log.info({ stages: this.opts.stages.map((s) => s.name) }, 'daemon started');
    if (this.phase === 'starting') this.phase = 'running';
    this.wakeAll(); // catch-up scan
  }

  /**
   * A service whose credentials are rejected or that cannot be reached at
   * start gets its breaker opened with the reason, so its stages wait
   * (visible in the funnel) instead of failing every row in turn.
   */
  private async checkServices(): Promise<void> {
    const groups = new Set(this.opts.stages.flatMap((s) => s.rateLimitGroups ?? []));
    for (const c of this.opts.serviceChecks ?? []) {
      if (!groups.has(c.group)) continue;
      let verdict: { ok: true } | { ok: false; reason: string };
      try {
        verdict = await c.check(AbortSignal.timeout(15_000));
      } catch (err) {
        verdict = { ok: false, reason: scrubSecrets((err as Error).message) };
      }
      if (verdict.ok) continue;
      this.log.error({ group: c.group, reason: verdict.reason }, 'service check failed at start; its stages wait (circuit breaker open)');
      await this.driver.openBreaker(c.group, `start-up check: ${verdict.reason}`, this.workerId, this.breaker);
    }
  }

  private onDoorbell(payload: string): void {
    if (payload.startsWith('stage_settings')) {
      void this.applySettings().catch((err) => this.log.error({ err: err.message }, 'reading settings failed'));
      return;
    }
    for (const r of this.routes.get(payload) ?? []) r.wake();
  }

  /** A catch-up scan: the poll backstop, the start, or a (re)connected listener. */
  private wakeAll(): void {
    for (const r of this.reactors) r.wake('catchup');
  }

  /** The backstop: settings, anything missed or scheduled for later, and the idle check. */
  private async poll(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.applySettings();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'reading settings failed');
    }
    this.wakeAll();
    if (this.idleWaiters.length) void this.checkIdle();
  }

  private async applySettings(): Promise<void> {
    const settings = await this.driver.readSettings();
    for (const r of this.reactors) {
      const s = settings.get(r.stage.name);
      const wasPaused = r.paused;
      r.paused = s?.paused ?? false;
      r.concurrency = s?.concurrency ?? r.stage.concurrency;
      if (wasPaused !== r.paused) this.log.info({ stage: r.stage.name, paused: r.paused }, r.paused ? 'stage paused' : 'stage resumed');
      if (wasPaused && !r.paused) r.wake();
    }
  }

  /** Resolves once nothing is pending, retrying or running for this daemon's stages. */
  whenIdle(): Promise<void> {
    const p = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    void this.checkIdle();
    return p;
  }

  private async checkIdle(): Promise<void> {
    if (this.checkingIdle) {
      this.recheckIdle = true;
      return;
    }
    this.checkingIdle = true;
    try {
      do {
        this.recheckIdle = false;
        const busy = this.reactors.some((r) => r.inFlight.size > 0 || r.writing.size > 0) || this.completer.pending > 0;
        if (busy) continue;
        const left = await this.driver.outstanding(this.opts.stages.map((s) => s.name));
        if (left === 0) for (const w of this.idleWaiters.splice(0)) w();
      } while (this.recheckIdle && this.idleWaiters.length);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'idle check failed');
    } finally {
      this.checkingIdle = false;
    }
  }

  /**
   * Graceful shutdown: stop claiming, let running handlers finish for up to
   * the timeout, then abort the rest and give their leases back.
   */
  stop(timeoutMs = this.opts.shutdownTimeoutMs ?? 30_000): Promise<void> {
    this.stopping ??= this.shutdown(timeoutMs);
    return this.stopping;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.phase = 'stopping';
    this.log.info({ timeoutMs }, 'stopping: no new claims');
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.scheduler.stop();
    for (const r of this.reactors) r.stop();
    const running = () => this.reactors.flatMap((r) => [...r.inFlight.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(running().map((e) => e.finished)),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    const unfinished = running();
    if (unfinished.length) {
      for (const e of unfinished) e.controller.abort(new Error('daemon shutting down'));
      try {
        const n = await this.driver.release(this.workerId, unfinished.map((e) => e.claim.runId));
        for (const e of unfinished) this.metrics.onAttemptEnd(e.claim.stage, 'released', 0);
        this.log.warn({ released: n }, 'released leases of unfinished work');
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'releasing leases failed; the sweeper will reclaim them');
      }
    }
    // Write-backs the database cannot take now are left to the sweeper after a short while.
    this.completer.giveUpAfter(Date.now() + 5000);
    await this.completer.drained();
    this.heartbeater.stop();
    this.sweeper.stop();
    this.housekeeper.stop();
    await this.listener?.close();
    await this.driver.markWorkerStopped(this.workerId).catch(() => undefined);
    await this.http?.close();
    this.log.info('stopped');
  }
}
