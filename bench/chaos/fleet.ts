import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Rng } from './rng.js';
import type { Timeline } from './timeline.js';

export interface DaemonRecord {
  /** Worker id and application_name of its connections: `chaos-d<N>`. */
  label: string;
  pid: number;
  logFile: string;
  startedAt: number;
  /** When the benchmark sent SIGKILL. */
  killedAt?: number;
  /** When its exit was seen. */
  endedAt?: number;
  killedByUs: boolean;
  /** Still running when the benchmark ended and stopped it. */
  stoppedAtEnd?: boolean;
  /** It exited by itself while PostgreSQL was down (a daemon cannot start without its database). */
  exitedWhileDatabaseDown?: boolean;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  child: ChildProcess;
}

export interface FleetOptions {
  size: number;
  /** Where `src/cli.ts` is. */
  cwd: string;
  logDir: string;
  /** The environment of the daemon with this label. */
  env(label: string): NodeJS.ProcessEnv;
  timeline: Timeline;
  databaseUp(): boolean;
}

/**
 * `perfmine daemon` child processes (`node --import tsx src/cli.ts daemon`),
 * kept at `size`: a daemon killed on purpose is replaced at once; one that
 * exits by itself is recorded (with the end of its log) and replaced a second later.
 */
export class DaemonFleet {
  readonly all: DaemonRecord[] = [];
  kills = 0;
  private seq = 0;
  private stopping = false;

  constructor(private opts: FleetOptions) {}

  start(): void {
    for (let i = 0; i < this.opts.size; i++) this.spawnOne();
  }

  /** When the daemon was killed or exited, in timeline seconds; undefined while it runs. */
  deathOf(label: string): number | undefined {
    const d = this.all.find((x) => x.label === label);
    return d?.killedAt ?? d?.endedAt;
  }

  /** Daemons running now. */
  live(): DaemonRecord[] {
    return this.all.filter((d) => d.exit === undefined && !d.killedByUs);
  }

  /** Daemons that exited without being killed by the benchmark (and not at its end). */
  unexpectedExits(): DaemonRecord[] {
    return this.all.filter((d) => d.exit !== undefined && !d.killedByUs && !d.stoppedAtEnd);
  }

  /** SIGKILLs a random live daemon and starts its replacement; returns the victim's label. */
  killRandom(rng: Rng): string | undefined {
    const victims = this.live();
    if (!victims.length) return undefined;
    const victim = rng.pick(victims);
    victim.killedByUs = true;
    victim.killedAt = this.opts.timeline.now();
    victim.child.kill('SIGKILL');
    this.kills++;
    const next = this.spawnOne();
    this.opts.timeline.note(`SIGKILL ${victim.label} (pid ${victim.pid}); started ${next.label}`);
    return victim.label;
  }

  /** SIGTERM to every daemon, SIGKILL to those still running after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const running = this.all.filter((d) => d.exit === undefined);
    for (const d of running) d.stoppedAtEnd = true;
    const exited = running.map((d) => new Promise<void>((resolve) => {
      if (d.exit !== undefined) resolve();
      else d.child.once('exit', () => resolve());
    }));
    for (const d of running) d.child.kill('SIGTERM');
    const timer = new Promise((r) => setTimeout(r, graceMs));
    await Promise.race([Promise.all(exited), timer]);
    this.killAllNow();
    await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 2000))]);
  }

  /** Synchronous last resort (process exit, Ctrl-C). */
  killAllNow(): void {
    this.stopping = true;
    for (const d of this.all) {
      if (d.exit !== undefined) continue;
      d.stoppedAtEnd ??= true;
      d.child.kill('SIGKILL');
    }
  }

  private spawnOne(): DaemonRecord {
    const label = `chaos-d${++this.seq}`;
    const logFile = path.join(this.opts.logDir, `${label}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'daemon'], {
      cwd: this.opts.cwd,
      env: this.opts.env(label),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd); // the child has its own copy
    const record: DaemonRecord = { label, pid: child.pid ?? -1, logFile, startedAt: this.opts.timeline.now(), killedByUs: false, child };
    this.all.push(record);
    child.on('exit', (code, signal) => {
      record.exit = { code, signal };
      record.endedAt = this.opts.timeline.now();
      if (record.killedAt !== undefined && record.endedAt - record.killedAt > 2) {
        this.opts.timeline.note(`${label} exited only ${(record.endedAt - record.killedAt).toFixed(1)}s after its SIGKILL`);
      }
      if (record.killedByUs || this.stopping) return;
      record.exitedWhileDatabaseDown = !this.opts.databaseUp();
      this.opts.timeline.note(`${label} exited by itself (code ${code}, signal ${signal}): ${lastLines(logFile, 1)}`);
      setTimeout(() => {
        if (!this.stopping) this.opts.timeline.note(`started ${this.spawnOne().label} in place of ${label}`);
      }, 1000);
    });
    return record;
  }
}

/** The last lines of a daemon's log, shortened (for reports). */
export function lastLines(file: string, n: number): string {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n);
    return lines.map((l) => l.slice(0, 400)).join('\n');
  } catch {
    return '(no log)';
  }
}
