import { chmodSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { connect, type Connection } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildStageDeps, builtinStages } from '../src/stages/index.js';
import { audit } from './chaos/audit.js';
import { Cleanup } from './chaos/cleanup.js';
import { DaemonFleet } from './chaos/fleet.js';
import { Monitor } from './chaos/monitor.js';
import { ChaosPostgres } from './chaos/postgres.js';
import { goalsFailed, printEvidence, type ChaosResult } from './chaos/report.js';
import { Rng } from './chaos/rng.js';
import { FaultSchedule } from './chaos/schedule.js';
import { chaosSettings, type ChaosSettings } from './chaos/settings.js';
import { Timeline } from './chaos/timeline.js';
import { Workload } from './chaos/workload.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stages 1-3 on the benchmark's own embedded PostgreSQL, with the GitHub and
 * LLM stand-ins and several `perfmine daemon` processes, while daemons are
 * SIGKILLed, PostgreSQL restarts and the stand-ins misbehave; then faults
 * off, a settle period, and the database compared with the stand-ins' truth.
 */
export async function run(): Promise<void> {
  const s = chaosSettings();
  const started = performance.now();
  const cleanup = new Cleanup();
  const timeline = new Timeline();
  const rng = new Rng(s.seed);
  console.error(`bench chaos: seed ${s.seed}; ${s.prs} PRs over ${s.repos} repositories, ${s.daemons} daemons, ` +
    `${s.seconds}s of faults (${s.kills} kills, ${s.pgRestarts} PostgreSQL restarts, ${s.llmOutageSeconds}s LLM outage), settle <= ${s.settleSeconds}s`);
  try {
    const runDir = await mkdtemp(path.join(os.tmpdir(), 'perfmine-chaos-'));
    await chmod(runDir, 0o755); // the postgres OS user must reach its data directory
    cleanup.add('temp dir', async () => {
      if (s.keepLogs) console.error(`bench chaos: daemon logs kept in ${path.join(runDir, 'logs')}`);
      else await rm(runDir, { recursive: true, force: true });
    }, () => { if (!s.keepLogs) Cleanup.removeDirSync(runDir); });
    const logDir = path.join(runDir, 'logs');
    await mkdir(logDir);
    if (s.keepLogs) chmodSync(logDir, 0o755);

    const pg = await ChaosPostgres.start(runDir, timeline);
    cleanup.add('postgres', () => pg.stop(), () => pg.killNow());
    const harness = connect(pg.url('chaos-harness'), 2);
    cleanup.add('harness pool', () => harness.close());
    await migrate(harness.pool);

    const workload = await Workload.start(s);
    cleanup.add('stand-ins', () => workload.close());

    const settled = () => pg.up && (pg.backAt === null || timeline.now() - pg.backAt > 3);
    const fleet = new DaemonFleet({
      size: s.daemons, cwd: ROOT, logDir, timeline, databaseUp: settled,
      env: (label) => daemonEnv(s, label, pg.url(label), workload),
    });
    cleanup.add('daemons', () => fleet.stop(), () => fleet.killAllNow());
    fleet.start();
    await waitForWorkers(harness, s.daemons);

    const deathOf = (label: string) => fleet.deathOf(label);
    const liveLabels = () => fleet.live().map((d) => d.label);
    // Each daemon: its handlers' pool, the bus's own pool of 4, and one LISTEN connection.
    const connectionBudget = s.pool + 4 + 1;
    const monitor = new Monitor({
      url: pg.url(), timeline, deathOf, liveLabels, connectionBudget, silentAfterSeconds: 30,
      databaseBackAt: () => pg.backAt,
      // The LLM is down on purpose: judging cannot move, and that is not the bus stalling.
      excused: (stage) => stage === 'classify_prs' && workload.llm.outage !== null,
    });
    cleanup.add('monitor', () => monitor.stop());

    timeline.startClock();
    monitor.start();
    const schedule = new FaultSchedule({
      settings: s, rng, timeline, fleet, pg, workload,
      judgingBacklog: () => {
        const judge = monitor.stages.find((st) => st.stage === 'classify_prs');
        return judge ? judge.pending + judge.retrying : 0;
      },
      requestDiscovery: async () => {
        await retryWhileDown(() => sql`INSERT INTO discovery_runs (requested_by) VALUES ('sql')`.execute(harness.db));
      },
    });
    console.error('bench chaos: fault phase');
    await schedule.run();

    await workload.faultsOff();
    await pg.startAgain();
    timeline.note('faults off; settling');
    console.error(`bench chaos: faults off at t=${timeline.now().toFixed(0)}s; settling (<= ${s.settleSeconds}s)`);
    const settleFrom = timeline.now();
    const idle = await monitor.waitIdle(s.settleSeconds * 1000);
    const settleSeconds = idle ? Math.round((timeline.now() - settleFrom) * 10) / 10 : null;
    timeline.note(idle ? 'idle' : 'settle timeout');

    const a = await audit({
      url: pg.url(), expected: workload.expected(), budget: { liveLabels, deathOf, connectionBudget }, now: timeline.now(),
      maxAttempts: maxAttemptsOfStages(),
    });
    const faultsByKind = faultCounts(schedule, workload);
    const exits = fleet.unexpectedExits();
    const partial = {
      bench: 'chaos' as const,
      kills: fleet.kills,
      pg_restarts: pg.restarts,
      faults_injected: faultsByKind.total,
      prs_expected: a.prs_expected,
      prs_lost: a.prs_lost,
      duplicate_effects: a.duplicate_effects,
      failed_rows: a.failed_rows,
      max_stall_s: monitor.maxStall?.seconds ?? 0,
      leaked_connections: a.leaked_connections,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      settle_seconds: settleSeconds,
      prs_unjudged: a.prs_unjudged,
      outstanding_at_end: monitor.outstanding(),
      daemon_exits: exits.length,
      max_lease_silence_s: monitor.maxLeaseSilence?.seconds ?? 0,
      peak_connections_over_budget: monitor.connectionPeak?.overBudget ?? 0,
      faults_by_kind: faultsByKind.byKind,
      seed: s.seed,
    };
    printEvidence({ ...partial, goals_failed: goalsFailed(partial) }, a, monitor, timeline, exits, fleet.all.map((d) => d.logFile));
    if (s.keepLogs) await writeFile(path.join(logDir, 'timeline.json'), JSON.stringify(timeline.events, null, 1));
    await cleanup.run();
    // The run's length includes tearing everything down.
    partial.seconds = Math.round((performance.now() - started) / 100) / 10;
    const result: ChaosResult = { ...partial, goals_failed: goalsFailed(partial) };
    console.log(JSON.stringify(result));
  } finally {
    await cleanup.run();
  }
}

/** What each daemon runs with: the stand-ins, its own label, short intervals; nothing of this shell's perfmine settings. */
function daemonEnv(s: ChaosSettings, label: string, databaseUrl: string, w: Workload): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(PERFMINE_|GITHUB_|OPENAI_|DATABASE_URL$|PG)/.test(k)) env[k] = v;
  }
  return {
    ...env,
    DATABASE_URL: databaseUrl,
    PERFMINE_WORKER_ID: label,
    PERFMINE_POOL_SIZE: String(s.pool),
    PERFMINE_SCHEDULE: 'false',
    PERFMINE_POLL_INTERVAL_MS: '250',
    PERFMINE_SWEEP_INTERVAL_MS: '1000',
    PERFMINE_LISTENER_CHECK_MS: '2000',
    PERFMINE_SHUTDOWN_TIMEOUT_MS: '2000',
    PERFMINE_LOG_LEVEL: 'info',
    GITHUB_TOKEN: 'chaos-token',
    PERFMINE_GITHUB_API_URL: w.github.url,
    PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS: '0',
    PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS: '0',
    PERFMINE_DIFF_MIN_INTERVAL_MS: '0',
    OPENAI_BASE_URL: w.llm.url,
    OPENAI_API_KEY: 'chaos-key',
    PERFMINE_LLM_MODEL: 'standin-small',
    PERFMINE_LLM_TIMEOUT_MS: '20000',
  };
}

/** Each stage's maxAttempts as the daemons declare it (the declarations need a configuration, not a connection). */
function maxAttemptsOfStages(): Record<string, number> {
  const stages = builtinStages(buildStageDeps(loadConfig({ PERFMINE_SCHEDULE: 'false' }), silentLogger));
  return Object.fromEntries(stages.map((st) => [st.name, st.maxAttempts]));
}

/** Waits until `n` daemons have registered (they migrate first, one at a time). */
async function waitForWorkers(harness: Connection, n: number): Promise<void> {
  const end = Date.now() + 90_000;
  while (Date.now() < end) {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM workers WHERE stopped_at IS NULL`.execute(harness.db);
    if (rows[0].n >= n) return;
    await sleep(250);
  }
  throw new Error(`fewer than ${n} daemons registered within 90 s (see their logs: BENCH_KEEP_LOGS=1)`);
}

/** Runs `fn` until it succeeds, for up to a minute (the database may be restarting). */
async function retryWhileDown<T>(fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(500);
    }
  }
}

/** Faults that reached a request (the stand-ins' own counts) or were put in place (outages, corrupt PRs served). */
function faultCounts(schedule: FaultSchedule, w: Workload): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  for (const [k, v] of Object.entries(w.github.faultStats.byKind)) byKind[`github:${k}`] = v ?? 0;
  byKind['github:corrupt-pr'] = w.github.faultStats.corruptedPRs;
  for (const [k, v] of Object.entries(w.llm.faultStats)) byKind[`llm:${k}`] = v;
  const total = Object.entries(byKind).reduce((n, [, v]) => n + v, 0);
  for (const [k, v] of Object.entries(schedule.injected)) byKind[`injected ${k}`] = v;
  return { total, byKind };
}
