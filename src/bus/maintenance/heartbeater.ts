import type { Logger } from '../../log.js';
import type { BusDriver } from '../driver.js';
import type { Reactor } from '../reactor.js';

/**
 * Extends the leases of everything this daemon holds, a few times per lease
 * period, so hour-long builds keep their rows. A lease found gone means
 * another daemon has the row now: its handler is told to stop.
 */
export class Heartbeater {
  private timer?: NodeJS.Timeout;
  private beating = false;

  constructor(private driver: BusDriver, private workerId: string, private reactors: Reactor[], private log: Logger) {}

  get intervalMs(): number {
    // Often enough to keep the shortest lease three times over, and at least every 5 s so
    // `workers.last_seen_at` stays fresh and a lease lost to a takeover is noticed soon.
    const shortest = Math.min(...this.reactors.map((r) => r.stage.leaseSeconds), 60);
    return Math.max(100, Math.min(5_000, (shortest * 1000) / 3));
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const owners = new Map<number, Reactor>();
      for (const r of this.reactors) for (const id of r.heldRunIds()) owners.set(id, r);
      const lost = await this.driver.heartbeat(this.workerId, [...owners.keys()]);
      for (const id of lost) owners.get(id)?.abandon(id, 'lease lost (expired and taken over); stopping handler');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'heartbeat failed');
    } finally {
      this.beating = false;
    }
  }
}
