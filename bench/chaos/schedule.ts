import type { Fault } from '../../src/standins/github/server.js';
import type { LlmFault } from '../../src/standins/llm/server.js';
import type { DaemonFleet } from './fleet.js';
import type { ChaosPostgres } from './postgres.js';
import type { Rng } from './rng.js';
import type { ChaosSettings } from './settings.js';
import type { Timeline } from './timeline.js';
import type { Workload } from './workload.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Action {
  at: number;
  name: string;
  run(): Promise<void> | void;
}

export interface ScheduleDeps {
  settings: ChaosSettings;
  rng: Rng;
  timeline: Timeline;
  fleet: DaemonFleet;
  pg: ChaosPostgres;
  workload: Workload;
  /** Queues a code search (a discovery_runs row), retrying while the database is down. */
  requestDiscovery(): Promise<void>;
  /** Rows waiting for the judge (pending or retrying), from the latest sample. */
  judgingBacklog(): number;
}

/** The LLM outage waits for this many rows to judge, so it hits work (unless that would push it past the phase). */
const OUTAGE_BACKLOG = 100;

/**
 * The fault phase, planned up front from the seed: repositories released
 * over the phase (each followed by a code search), SIGKILLs at random moments,
 * PostgreSQL restarts, the LLM outage, and a steady drizzle of GitHub and LLM
 * faults. Actions run at their time without waiting for one another (a
 * restart takes seconds; kills go on meanwhile).
 */
export class FaultSchedule {
  /** Faults injected into the stand-ins, by kind (what was asked; the stand-ins count what hit). */
  readonly injected: Record<string, number> = {};
  private actions: Action[];
  private running = new Set<Promise<void>>();

  constructor(private d: ScheduleDeps) {
    this.actions = this.plan().sort((a, b) => a.at - b.at);
  }

  /** Runs the plan to the end of the fault phase, then waits for actions in progress (a restart finishes). */
  async run(): Promise<void> {
    const { timeline } = this.d;
    const until = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - timeline.now()) * 1000));
    for (const action of this.actions) {
      await until(action.at);
      const p = Promise.resolve()
        .then(() => action.run())
        .catch((err) => timeline.note(`${action.name} failed: ${(err as Error).message}`));
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
    await until(this.d.settings.seconds);
    await Promise.all(this.running);
  }

  private plan(): Action[] {
    const { settings: s, rng } = this.d;
    const T = s.seconds;
    const actions: Action[] = [];

    // Over the first half, so scraping meets the kills and restarts and judging has a backlog when the LLM goes down.
    this.d.workload.repos.forEach((_, i) => {
      actions.push({ at: (i * T) / (2 * s.repos), name: `release repository ${i + 1}`, run: () => this.release(i) });
    });

    for (let k = 0; k < s.kills; k++) {
      actions.push({ at: rng.between(2, T - 2), name: 'kill', run: () => void this.d.fleet.killRandom(rng) });
    }

    // One restart in each equal slice of the middle 70% of the phase, so they never overlap.
    const span = 0.7 * T;
    for (let k = 0; k < s.pgRestarts; k++) {
      const lo = 0.15 * T + (k * span) / s.pgRestarts;
      const at = rng.between(lo, lo + span / s.pgRestarts - s.pgDownSeconds - 2);
      actions.push({ at, name: 'postgres restart', run: () => this.d.pg.restart(s.pgDownSeconds) });
    }

    if (s.llmOutageSeconds > 0) actions.push({ at: s.llmOutageAt, name: 'LLM outage', run: () => this.llmOutage() });

    for (let t = 1; t < T; t += s.githubFaultEverySeconds * rng.between(0.5, 1.5)) {
      const fault = this.githubFault();
      actions.push({ at: t, name: `GitHub ${fault.kind}`, run: () => this.injectGitHub(fault) });
    }
    for (let t = 2; t < T; t += s.llmFaultEverySeconds * rng.between(0.5, 1.5)) {
      const fault = this.llmFault();
      actions.push({ at: t, name: `LLM ${fault.kind}`, run: () => this.injectLlm(fault) });
    }
    return actions;
  }

  private async release(i: number): Promise<void> {
    const r = this.d.workload.release(i);
    this.d.timeline.note(`released ${r.owner}/${r.name} (${r.prs.length} PRs); queueing a code search`);
    await this.d.requestDiscovery();
  }

  /**
   * The whole outage: it starts once there is judging to disrupt (or at the
   * latest moment that still fits in the phase), `mixed` switches from a
   * refused port to 503s halfway, and it ends after its length.
   */
  private async llmOutage(): Promise<void> {
    const { settings: s, timeline } = this.d;
    const latest = Math.max(s.llmOutageAt, s.seconds - s.llmOutageSeconds);
    while (this.d.judgingBacklog() < OUTAGE_BACKLOG && timeline.now() < latest) await sleep(250);
    const half = (s.llmOutageSeconds / 2) * 1000;
    await this.outage(s.llmOutageMode === 'http-503' ? 'http-503' : 'refuse', this.d.judgingBacklog());
    await sleep(half);
    if (s.llmOutageMode === 'mixed') await this.outage('http-503', this.d.judgingBacklog());
    await sleep(half);
    await this.endOutage();
  }

  private async outage(mode: 'refuse' | 'http-503', backlog: number): Promise<void> {
    await this.d.workload.llm.startOutage(mode);
    this.count(`llm:outage-${mode}`);
    this.d.timeline.note(`LLM outage: ${mode} (${backlog} rows waiting for the judge)`);
  }

  private async endOutage(): Promise<void> {
    await this.d.workload.llm.endOutage();
    this.d.timeline.note('LLM outage over');
  }

  /** 5xx bursts, 429s, timeouts and truncated pages, in that order of likelihood. */
  private githubFault(): Fault {
    const { rng, settings } = this.d;
    const match = rng.pick(['any', 'any', 'graphql', 'rest'] as const);
    const roll = rng.next();
    if (roll < 0.35) {
      const kind = rng.pick(['http-500', 'http-502', 'http-503', 'http-504'] as const);
      return rng.chance(0.5) ? { kind, times: rng.int(2, 8), match } : { kind, durationMs: Math.round(rng.between(1000, 4000)), match };
    }
    if (roll < 0.55) return { kind: 'secondary-429', retryAfterSeconds: rng.int(1, 5), times: rng.int(1, 3), match };
    if (roll < 0.8) {
      const hang = Math.round(settings.hangSeconds * 1000 * rng.between(0.2, 1));
      const style = rng.int(0, 2);
      // A late answer, a dropped connection, or no answer at all (until the fault phase ends).
      if (style === 0) return { kind: 'timeout', delayMs: hang, after: 'answer', match };
      if (style === 1) return { kind: 'timeout', delayMs: hang, after: 'reset', match };
      return { kind: 'timeout', match };
    }
    return rng.chance(0.7) ? { kind: 'truncate', match: 'graphql', drop: rng.int(1, 3) } : { kind: 'truncate', match: 'rest', drop: 1 };
  }

  private llmFault(): LlmFault {
    const { rng } = this.d;
    const roll = rng.next();
    if (roll < 0.5) return { kind: 'malformed', times: rng.int(3, 12) };
    if (roll < 0.85) return { kind: rng.pick(['server-500', 'server-502', 'server-503'] as const), times: rng.int(2, 6) };
    return { kind: 'rate-limit-429', retryAfterSeconds: rng.int(1, 3) };
  }

  private injectGitHub(fault: Fault): void {
    this.d.workload.github.inject(fault);
    this.count(`github:${fault.kind}`);
    this.d.timeline.note(`GitHub fault ${JSON.stringify(fault)}`);
  }

  private injectLlm(fault: LlmFault): void {
    if (this.d.workload.llm.outage) return; // nothing gets through now; it would only pile up for afterwards
    this.d.workload.llm.inject(fault);
    this.count(`llm:${fault.kind}`);
    this.d.timeline.note(`LLM fault ${JSON.stringify(fault)}`);
  }

  private count(key: string): void {
    this.injected[key] = (this.injected[key] ?? 0) + 1;
  }
}
