import type { Logger } from '../../log.js';
import type { BusDriver } from '../driver.js';

/**
 * The rescuer: returns leases of dead workers to the pending set. A worker on
 * this host whose process is gone loses its leases at once; others lose them
 * when they expire. Now and then it also prunes leases of rows that were
 * deleted or no longer need their stage, so they are not counted as work.
 */
export class Sweeper {
  private timer?: NodeJS.Timeout;
  private lastPrune = 0;

  /** Told how many leases of each stage a sweep reclaimed (metrics). */
  onExpired?: (stage: string, n: number) => void;

  constructor(private driver: BusDriver, private workerId: string, private intervalMs: number, private log: Logger, private pruneEveryMs = 30_000) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async sweep(): Promise<number> {
    try {
      const dead = await this.driver.expireDeadWorkers(this.workerId);
      if (dead) this.log.warn({ leases: dead }, 'workers on this host are gone; their leases expire now');
      const n = await this.driver.sweepExpired(this.onExpired);
      if (n) this.log.warn({ leases: n }, 'reclaimed expired leases');
      if (Date.now() - this.lastPrune >= this.pruneEveryMs) {
        this.lastPrune = Date.now();
        const pruned = await this.driver.pruneLeases();
        if (pruned) this.log.info({ leases: pruned }, 'pruned leases of rows that no longer need their stage');
      }
      return n;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'sweep failed');
      return 0;
    }
  }
}
