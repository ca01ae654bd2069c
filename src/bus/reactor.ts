import type { Logger } from '../log.js';
import { scrubSecrets } from '../log.js';
import type { Db } from '../db/connect.js';
import { runInAttemptScope, type AttemptScope } from './attempt-scope.js';
import { backoffDelayMs } from './backoff.js';
import type { Completer } from './completer.js';
import type { BreakerSettings, BusDriver, Claim, Completion, Outcome } from './driver.js';
import { checkpoint } from './sql/checkpoint.js';
import { PermanentError, RateLimitedError, ServiceDownError, type Cost, type StageDefinition, type StageResult } from './stage.js';

/** The attempt ran past its stage's deadlineSeconds. */
export class DeadlineError extends Error {
  constructor(seconds: number) {
    super(`deadline exceeded: the attempt ran longer than ${seconds} s and was aborted`);
    this.name = 'DeadlineError';
  }
}

export interface InFlight {
  claim: Claim;
  controller: AbortController;
  /** Resolves when the handler has ended and its outcome is written. */
  finished: Promise<void>;
}

export interface ReactorOptions {
  breaker: BreakerSettings;
  /** This host's name for host-local resources. */
  host: string;
  /** How often a waiting attempt asks again for a busy host-local resource. */
  resourcePollMs?: number;
  /** How long a handler may go on after its abort before the bus records the attempt without it. */
  abortGraceMs?: number;
}

/**
 * Runs one stage: claims as many rows as it has free slots, runs the handler
 * for each outside any transaction, and hands outcomes to the completer.
 * Wake-ups (doorbell, poll, freed slot) coalesce: at most one claim query per
 * stage is in flight, and another follows only if there may be more work.
 */
export class Reactor {
  readonly inFlight = new Map<number, InFlight>();
  /** Handlers that ended but whose outcome is not committed yet: their leases are still ours. */
  readonly writing = new Map<number, InFlight>();
  private claiming = false;
  private wakeAgain = false;
  private mayHaveMore = true;
  private stopped = false;
  concurrency: number;
  paused = false;
  /** Called with (runId) right before a handler starts; the benchmark measures latency with it. */
  onStart?: (claim: Claim) => void;
  /** Called when an attempt ends (before its write-back), for metrics. */
  onAttemptEnd?: (outcome: AttemptEnd, durationMs: number, cost?: Cost) => void;
  /** Called after a claim that got rows; `viaCatchup` when the wake came from the poll or a reconnect scan. */
  onClaims?: (n: number, viaCatchup: boolean) => void;
  private lastWake: 'doorbell' | 'catchup' = 'catchup';

  constructor(
    readonly stage: StageDefinition,
    private driver: BusDriver,
    private completer: Completer,
    private db: Db,
    private workerId: string,
    private log: Logger,
    /** Rate-limit group -> epoch ms; shared by this daemon's reactors so a pause bites before it is committed. */
    private groupPauses: Map<string, number>,
    private opts: ReactorOptions,
  ) {
    this.concurrency = stage.concurrency;
  }

  get freeSlots(): number {
    return Math.max(0, this.concurrency - this.inFlight.size);
  }

  /** Something may have become pending: claim soon (a doorbell, or a catch-up scan by the poll or a reconnect). */
  wake(source: 'doorbell' | 'catchup' = 'doorbell'): void {
    this.lastWake = source;
    this.mayHaveMore = true;
    void this.pump();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Run ids whose leases this reactor holds (running or being written). */
  heldRunIds(): number[] {
    return [...this.inFlight.keys(), ...this.writing.keys()];
  }

  /** The lease is gone (swept or taken): stop the handler; its result will be dropped. */
  abandon(runId: number, reason: string): void {
    const entry = this.inFlight.get(runId);
    if (!entry) return;
    this.log.warn({ stage: this.stage.name, subject: entry.claim.row.id, runId }, reason);
    entry.controller.abort(new Error(reason));
  }

  private get rateLimited(): boolean {
    const now = Date.now();
    return (this.stage.rateLimitGroups ?? []).some((g) => (this.groupPauses.get(g) ?? 0) > now);
  }

  private async pump(): Promise<void> {
    if (this.stopped || this.paused || this.rateLimited) return;
    if (this.claiming) {
      this.wakeAgain = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.wakeAgain = false;
        const want = this.freeSlots;
        if (want === 0 || this.stopped || this.paused || this.rateLimited || !this.mayHaveMore) break;
        let claims: Claim[];
        try {
          claims = await this.driver.claim(this.stage, want, this.workerId);
        } catch (err) {
          this.log.error({ stage: this.stage.name, err: (err as Error).message }, 'claim failed; will retry on next wake');
          break;
        }
        // A short claim means the pending set is empty for now.
        this.mayHaveMore = claims.length === want;
        if (claims.length) this.onClaims?.(claims.length, this.lastWake === 'catchup');
        for (const claim of claims) this.start(claim);
      } while (this.wakeAgain || (this.mayHaveMore && this.freeSlots > 0));
    } finally {
      this.claiming = false;
    }
  }

  private start(claim: Claim): void {
    const controller = new AbortController();
    const cost: Cost = {};
    const scope: AttemptScope = { servicesOk: new Set() };
    const log = this.log.child({ stage: this.stage.name, subject: claim.row.id, attempt: claim.attempt, runId: claim.runId });
    const entry: InFlight = { claim, controller, finished: Promise.resolve() };
    this.inFlight.set(claim.runId, entry);
    entry.finished = (async () => {
      let outcome: Outcome;
      let began = performance.now();
      let deadlineTimer: NodeJS.Timeout | undefined;
      try {
        await this.acquireResources(claim, controller.signal);
        this.onStart?.(claim);
        began = performance.now();
        const deadlineMs = this.stage.deadlineSeconds * 1000;
        deadlineTimer = setTimeout(() => controller.abort(new DeadlineError(this.stage.deadlineSeconds)), deadlineMs);
        const lease = { stage: this.stage.name, subjectId: claim.row.id, runId: claim.runId, workerId: this.workerId };
        const handled = runInAttemptScope(scope, () => this.stage.handle(claim.row, {
          runId: claim.runId,
          attempt: claim.attempt,
          workerId: this.workerId,
          signal: controller.signal,
          deadline: new Date(Date.now() + deadlineMs),
          log,
          db: this.db,
          addCost: (c) => addCost(cost, c),
          checkpoint: (fn) => checkpoint(this.db, lease, fn),
        }));
        const result = await this.untilAbortedFor(handled, controller.signal);
        if (result.cost) addCost(cost, result.cost);
        outcome = { kind: 'succeeded', set: result.set, write: result.write };
      } catch (err) {
        outcome = this.failure(err, claim);
      } finally {
        clearTimeout(deadlineTimer);
        await this.releaseResources(claim);
      }
      const durationMs = Math.round(performance.now() - began);
      if (controller.signal.reason instanceof DeadlineError) {
        // Past its deadline the attempt counts as an error, whatever the handler did after the abort.
        outcome = this.failure(controller.signal.reason, claim);
      } else if (controller.signal.aborted) {
        // Shutdown or lost lease: the row is released or swept, not written.
        log.info({ durationMs }, 'handler ended after its lease was given up; result dropped');
        if (!this.stopped) this.onAttemptEnd?.('aborted', durationMs);
        return;
      }
      this.onAttemptEnd?.(attemptEnd(outcome, claim, this.stage), durationMs, cost);
      const completion: Completion = {
        stage: this.stage, claim, outcome, cost: Object.keys(cost).length ? cost : undefined,
        servicesOk: scope.servicesOk.size ? [...scope.servicesOk] : undefined,
      };
      if (outcome.kind === 'succeeded') log.info({ durationMs }, 'succeeded');
      else log.warn({ durationMs, outcome: outcome.kind, err: outcome.error }, 'attempt did not succeed');
      // The slot frees now; the lease stays ours until the write-back commits.
      this.inFlight.delete(claim.runId);
      this.writing.set(claim.runId, entry);
      if (this.mayHaveMore) void this.pump();
      await this.completer.submit(completion);
    })().finally(() => {
      this.writing.delete(claim.runId);
      if (this.inFlight.delete(claim.runId) && this.mayHaveMore) void this.pump();
    });
  }

  /**
   * The handler's result, or, once the attempt is aborted, an error after a
   * grace period even if the handler ignores its signal: a stuck handler must
   * not hold its slot (and block shutdown) forever.
   */
  private untilAbortedFor(handled: Promise<StageResult>, signal: AbortSignal): Promise<StageResult> {
    const grace = this.opts.abortGraceMs ?? 5000;
    return new Promise<StageResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        timer = setTimeout(() => {
          this.log.error({ stage: this.stage.name }, `handler ignored its abort for ${grace} ms; recording the attempt without it`);
          reject(signal.reason);
        }, grace);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      handled.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      });
    });
  }

  /** Waits (holding the lease, which the heartbeater keeps) until every declared host-local resource is ours. */
  private async acquireResources(claim: Claim, signal: AbortSignal): Promise<void> {
    for (const resource of this.stage.resources ?? []) {
      const request = { host: this.opts.host, runId: claim.runId, stage: this.stage.name, resource };
      let waited = false;
      while (!(await this.driver.tryAcquire(request))) {
        if (!waited) this.log.info({ stage: this.stage.name, subject: claim.row.id, resource: resource.name }, 'waiting for a host resource');
        waited = true;
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, this.opts.resourcePollMs ?? 500);
          signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
        });
      }
    }
  }

  private async releaseResources(claim: Claim): Promise<void> {
    if (!this.stage.resources?.length) return;
    // If this fails the holder row goes stale with the lease, and the next acquirer clears it.
    await this.driver.releaseResources(claim.runId).catch((err) =>
      this.log.warn({ stage: this.stage.name, err: (err as Error).message }, 'releasing host resources failed'));
  }

  private failure(err: unknown, claim: Claim): Outcome {
    const message = scrubSecrets(err instanceof Error ? err.message : String(err));
    if (err instanceof RateLimitedError) {
      const group = err.group ?? this.stage.rateLimitGroups?.[0];
      if (group) this.pauseLocally(group, err.until.getTime());
      return { kind: 'rate_limited', until: err.until, group, error: message };
    }
    if (err instanceof ServiceDownError) {
      this.pauseLocally(err.group, Date.now() + this.opts.breaker.baseSeconds * 1000);
      return { kind: 'service_down', group: err.group, error: message, breaker: this.opts.breaker };
    }
    return {
      kind: 'error',
      error: message.slice(0, 4000),
      retryInMs: backoffDelayMs(claim.attempt, this.stage.backoff),
      permanent: err instanceof PermanentError,
    };
  }

  /** Stop this daemon's claims for a group now; the database's pause (possibly longer) follows on commit. */
  private pauseLocally(group: string, until: number): void {
    this.groupPauses.set(group, Math.max(this.groupPauses.get(group) ?? 0, until));
  }
}

/** How an attempt ended, for metrics: ok, error (will retry), failed (given up), rate_limited (an uncounted wait), aborted (lease lost). */
export type AttemptEnd = 'ok' | 'error' | 'failed' | 'rate_limited' | 'aborted' | 'released';

function attemptEnd(outcome: Outcome, claim: Claim, stage: StageDefinition): AttemptEnd {
  if (outcome.kind === 'succeeded') return 'ok';
  if (outcome.kind !== 'error') return 'rate_limited';
  return outcome.permanent || claim.attempt >= stage.maxAttempts ? 'failed' : 'error';
}

function addCost(into: Cost, more: Cost): void {
  for (const [k, v] of Object.entries(more)) {
    const prev = into[k];
    // Numbers add up, lists (e.g. one entry per LLM call) concatenate, anything else is replaced.
    if (typeof v === 'number' && typeof prev === 'number') into[k] = prev + v;
    else if (Array.isArray(v) && Array.isArray(prev)) into[k] = [...prev, ...v];
    else into[k] = v;
  }
}
