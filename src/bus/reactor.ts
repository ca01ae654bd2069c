import type { Logger } from '../log.js';
import type { Db } from '../db/connect.js';
import { backoffDelayMs } from './backoff.js';
import type { Completer } from './completer.js';
import type { BusDriver, Claim, Completion, Outcome } from './driver.js';
import { checkpoint } from './sql/checkpoint.js';
import { PermanentError, RateLimitedError, type Cost, type StageDefinition } from './stage.js';

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

  constructor(
    readonly stage: StageDefinition,
    private driver: BusDriver,
    private completer: Completer,
    private db: Db,
    private workerId: string,
    private log: Logger,
    /** Rate-limit group -> epoch ms; shared by this daemon's reactors so a pause bites before it is committed. */
    private groupPauses: Map<string, number> = new Map(),
  ) {
    this.concurrency = stage.concurrency;
  }

  get freeSlots(): number {
    return Math.max(0, this.concurrency - this.inFlight.size);
  }

  /** Something may have become pending: claim soon. */
  wake(): void {
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
        for (const claim of claims) this.start(claim);
      } while (this.wakeAgain || (this.mayHaveMore && this.freeSlots > 0));
    } finally {
      this.claiming = false;
    }
  }

  private start(claim: Claim): void {
    const controller = new AbortController();
    const cost: Cost = {};
    const log = this.log.child({ stage: this.stage.name, subject: claim.row.id, attempt: claim.attempt, runId: claim.runId });
    this.onStart?.(claim);
    const began = performance.now();
    const entry: InFlight = { claim, controller, finished: Promise.resolve() };
    this.inFlight.set(claim.runId, entry);
    const deadlineMs = this.stage.deadlineSeconds * 1000;
    const deadlineTimer = setTimeout(() => controller.abort(new DeadlineError(this.stage.deadlineSeconds)), deadlineMs);
    deadlineTimer.unref?.();
    entry.finished = (async () => {
      let outcome: Outcome;
      try {
        const lease = { stage: this.stage.name, subjectId: claim.row.id, runId: claim.runId, workerId: this.workerId };
        const result = await this.stage.handle(claim.row, {
          runId: claim.runId,
          attempt: claim.attempt,
          workerId: this.workerId,
          signal: controller.signal,
          deadline: new Date(Date.now() + deadlineMs),
          log,
          db: this.db,
          addCost: (c) => addCost(cost, c),
          checkpoint: (fn) => checkpoint(this.db, lease, fn),
        });
        if (result.cost) addCost(cost, result.cost);
        outcome = { kind: 'succeeded', set: result.set, write: result.write };
      } catch (err) {
        outcome = this.failure(err, claim);
      }
      clearTimeout(deadlineTimer);
      const durationMs = Math.round(performance.now() - began);
      if (controller.signal.reason instanceof DeadlineError) {
        // Past its deadline the attempt counts as an error, whatever the handler did after the abort.
        outcome = this.failure(controller.signal.reason, claim);
      } else if (controller.signal.aborted) {
        // Shutdown or lost lease: the row is released or swept, not written.
        log.info({ durationMs }, 'handler ended after its lease was given up; result dropped');
        return;
      }
      const completion: Completion = { stage: this.stage, claim, outcome, cost: Object.keys(cost).length ? cost : undefined };
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

  private failure(err: unknown, claim: Claim): Outcome {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof RateLimitedError) {
      const group = err.group ?? this.stage.rateLimitGroups?.[0];
      if (group) this.groupPauses.set(group, Math.max(this.groupPauses.get(group) ?? 0, err.until.getTime()));
      return { kind: 'rate_limited', until: err.until, group, error: message };
    }
    return {
      kind: 'error',
      error: message.slice(0, 4000),
      retryInMs: backoffDelayMs(claim.attempt, this.stage.backoff),
      permanent: err instanceof PermanentError,
    };
  }
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
