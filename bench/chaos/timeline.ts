/**
 * What happened when, in seconds since the funnel was kicked off: kills, restarts,
 * faults, crashes. The report uses it to show what preceded a stall.
 */
export interface TimelineEvent {
  t: number;
  what: string;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  private t0 = performance.now();

  /** Seconds are counted from now on. */
  startClock(): void {
    this.t0 = performance.now();
  }

  now(): number {
    return (performance.now() - this.t0) / 1000;
  }

  note(what: string): void {
    this.events.push({ t: Math.round(this.now() * 10) / 10, what });
    if (process.env.BENCH_VERBOSE === '1') console.error(`  [${this.now().toFixed(1)}s] ${what}`);
  }

  /** The events from `from` to `to` seconds. */
  between(from: number, to: number): TimelineEvent[] {
    return this.events.filter((e) => e.t >= from && e.t <= to);
  }
}
