import type { Logger } from '../../log.js';

/** A chore a daemon does now and then (reaping orphaned processes, pruning old records). */
export interface HousekeepingJob {
  name: string;
  everyMs: number;
  run(): Promise<unknown>;
}

/** Runs each job once at start and then every `everyMs`; a failing run is logged, never fatal. */
export class Housekeeper {
  private timers: NodeJS.Timeout[] = [];
  private running = new Set<string>();

  constructor(private jobs: HousekeepingJob[], private log: Logger) {}

  async start(): Promise<void> {
    for (const job of this.jobs) {
      await this.runOnce(job);
      const timer = setInterval(() => void this.runOnce(job), job.everyMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  private async runOnce(job: HousekeepingJob): Promise<void> {
    if (this.running.has(job.name)) return;
    this.running.add(job.name);
    try {
      await job.run();
    } catch (err) {
      this.log.error({ job: job.name, err: (err as Error).message }, 'housekeeping job failed');
    } finally {
      this.running.delete(job.name);
    }
  }
}
