import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/db/embedded.js';
import type { Timeline } from './timeline.js';

export const CHAOS_DATABASE = 'perfmine_chaos';

/**
 * The benchmark's own embedded PostgreSQL (a data directory under the run's
 * temp dir, a random free port), which it stops and starts again mid-run on
 * the same directory and port, as an operator restarting the server would.
 */
export class ChaosPostgres {
  private server?: EmbeddedServer;
  /** Timeline seconds when the server last came back; null before the first restart. */
  backAt: number | null = null;
  restarts = 0;

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    private timeline: Timeline,
  ) {}

  static async start(runDir: string, timeline: Timeline): Promise<ChaosPostgres> {
    const pg = new ChaosPostgres(path.join(runDir, 'pg-data'), await freePort(), timeline);
    pg.server = await startEmbeddedPostgres(pg.dataDir, pg.port, { persistent: true });
    pg.adminUrlOfServer = pg.server.adminUrl;
    await pg.server.urlFor(CHAOS_DATABASE);
    return pg;
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  /** The server's own URL (its password is generated and kept in its data directory, and stays the same across restarts). */
  private baseUrl(database: string): string {
    const u = new URL(this.adminUrlOfServer);
    u.pathname = `/${database}`;
    return u.toString();
  }

  private adminUrlOfServer = '';

  get adminUrl(): string {
    return this.baseUrl('postgres');
  }

  /** The benchmark database; `applicationName` names the connections in pg_stat_activity. */
  url(applicationName?: string): string {
    const base = this.baseUrl(CHAOS_DATABASE);
    return applicationName ? `${base}?application_name=${encodeURIComponent(applicationName)}` : base;
  }

  /** A fast shutdown (sessions are terminated), `downSeconds` of nothing, then a start on the same data and port. */
  async restart(downSeconds: number): Promise<void> {
    await this.stop();
    this.timeline.note(`postgres stopped (down for ${downSeconds}s)`);
    await new Promise((r) => setTimeout(r, downSeconds * 1000));
    await this.startAgain();
    this.restarts++;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }

  /**
   * Synchronous last resort at process exit: SIGKILL the postmaster if one
   * still runs on our data directory (its backends follow it), so the
   * directory can be removed.
   */
  killNow(): void {
    let pid: number;
    try {
      pid = Number(readFileSync(path.join(this.dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return; // not running
    }
    try {
      // Only our own postmaster: a stale pid file must not name someone else's process.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (pid > 0 && cmdline.includes('postgres') && cmdline.includes(this.dataDir)) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  async startAgain(): Promise<void> {
    if (this.server) return;
    this.server = await startEmbeddedPostgres(this.dataDir, this.port, { persistent: true });
    this.backAt = this.timeline.now();
    this.timeline.note('postgres back');
  }
}

/** A port nothing listens on right now (the kernel's pick for port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
