import type { Logger } from '../log.js';
import { isConnectionError, isTransientDbError } from '../db/errors.js';
import type { BusDriver, Completion } from './driver.js';

/** Tries of a write-back that failed for a reason other than a lost connection (a deadlock, a timeout). */
const MAX_TRANSIENT_TRIES = 8;

/**
 * Group commit for write-backs. Completions queue up while a flush is in
 * flight and go out together in the next transaction, so a busy daemon writes
 * hundreds of results per commit while an idle one writes each at once.
 *
 * A write-back that fails because the database is unreachable, restarting or
 * deadlocked is tried again with backoff (it is fenced by run id, so a late
 * retry can never overwrite someone else's result); a lost connection is
 * tried until the daemon stops. A write-back the database refuses for its
 * content (a constraint, a bad value, a bug in the stage's write) is retried
 * alone, and becomes an error outcome for its row.
 */
export class Completer {
  private queue: Array<{ item: Completion; done: () => void }> = [];
  private flushing = 0;
  private idleWaiters: Array<() => void> = [];
  /** Past this time (set at shutdown), write-backs the database cannot take are abandoned to the sweeper. */
  private giveUpAt = Infinity;
  private wakeSleepers: Array<() => void> = [];

  constructor(
    private driver: BusDriver,
    private workerId: string,
    private log: Logger,
    private opts: { maxBatch: number; flushers: number; onStale?: (c: Completion) => void; afterFlush?: () => void; retryBaseMs?: number; retryMaxMs?: number },
  ) {}

  /** Resolves once the outcome is committed (or refused as stale, or abandoned at shutdown). */
  submit(item: Completion): Promise<void> {
    return new Promise((done) => {
      this.queue.push({ item, done });
      if (this.flushing < this.opts.flushers) void this.flushLoop();
    });
  }

  get pending(): number {
    return this.queue.length + this.flushing;
  }

  /** Resolves when nothing is queued or being written. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** At shutdown: keep trying until `deadline`, then abandon what the database will not take. */
  giveUpAfter(deadline: number): void {
    this.giveUpAt = deadline;
    for (const wake of this.wakeSleepers.splice(0)) wake();
  }

  private async flushLoop(): Promise<void> {
    this.flushing++;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.opts.maxBatch);
        await this.write(batch.map((b) => b.item));
        for (const b of batch) b.done();
        this.opts.afterFlush?.();
      }
    } finally {
      this.flushing--;
      if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async write(batch: Completion[]): Promise<void> {
    let err: unknown;
    try {
      return await this.persist(batch);
    } catch (e) {
      err = e;
    }
    if (err === ABANDONED) return;
    if (batch.length === 1) return this.writeAlone(batch[0], err as Error);
    this.log.warn({ err: (err as Error).message, size: batch.length }, 'batched write-back failed; writing one by one');
    for (const item of batch) {
      try {
        await this.persist([item]);
      } catch (e) {
        if (e !== ABANDONED) await this.writeAlone(item, e as Error);
      }
    }
  }

  /** complete(), tried again while the failure is the database's rather than the batch's. */
  private async persist(batch: Completion[]): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        this.reportStale(await this.driver.complete(batch, this.workerId), batch);
        return;
      } catch (err) {
        const connection = isConnectionError(err);
        if (!isTransientDbError(err) || (!connection && tries >= MAX_TRANSIENT_TRIES)) throw err;
        if (Date.now() >= this.giveUpAt) {
          this.log.error({ err: (err as Error).message, size: batch.length }, 'database unavailable at shutdown; leaving these rows to the sweeper');
          throw ABANDONED;
        }
        const delay = Math.min(this.opts.retryMaxMs ?? 2000, (this.opts.retryBaseMs ?? 50) * 2 ** Math.min(tries - 1, 10));
        if (tries === 1 || tries % 20 === 0) {
          this.log.warn({ err: (err as Error).message, size: batch.length, tries }, 'write-back failed for a transient reason; trying again');
        }
        await this.sleep(Math.min(delay, Math.max(0, this.giveUpAt - Date.now())));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeSleepers = this.wakeSleepers.filter((w) => w !== wake);
        resolve();
      }, ms);
      const wake = () => { clearTimeout(timer); resolve(); };
      this.wakeSleepers.push(wake);
    });
  }

  /** The row's own write failed: record that as the attempt's error. */
  private async writeAlone(item: Completion, err: Error): Promise<void> {
    const message = `writing the result failed: ${err.message}`;
    this.log.error({ stage: item.stage.name, subject: item.claim.row.id, err: err.message }, message);
    const asError: Completion = { ...item, outcome: { kind: 'error', error: message, retryInMs: item.stage.backoff.baseMs } };
    try {
      await this.persist([asError]);
    } catch (again) {
      // The database keeps failing; the lease will expire and the sweeper retries the row.
      if (again !== ABANDONED) this.log.error({ stage: item.stage.name, subject: item.claim.row.id, err: (again as Error).message }, 'could not record failure');
    }
  }

  private reportStale(stale: number[], batch: Completion[]): void {
    if (!stale.length) return;
    const ids = new Set(stale);
    for (const c of batch) {
      if (!ids.has(c.claim.runId)) continue;
      this.log.warn({ stage: c.stage.name, subject: c.claim.row.id, runId: c.claim.runId },
        'stale write rejected: the lease is no longer held by this worker');
      this.opts.onStale?.(c);
    }
  }
}

/** Thrown inside the completer when shutdown gave up on a write-back. */
const ABANDONED = Symbol('abandoned at shutdown');
