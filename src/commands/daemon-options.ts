import path from 'node:path';
import type { Config } from '../config.js';
import { reapOrphans } from '../adapters/process/index.js';
import type { HousekeepingJob } from '../bus/maintenance/housekeeper.js';
import type { Connection, Db } from '../db/connect.js';
import { pruneHistory } from '../bus/sql/prune-history.js';
import { connect } from '../db/connect.js';
import type { DaemonOptions, ServiceCheck } from '../bus/daemon.js';
import type { Logger } from '../log.js';
import type { StageDeps } from '../stages/index.js';

/** The bus's own pool: claims, write-backs, heartbeats and sweeps never wait behind handler queries. */
export function connectBus(connectionString: string, config: Config, log: Logger): Connection {
  return connect(connectionString, {
    max: 4, applicationName: `perfmine-bus:${process.pid}`, statementTimeoutMs: 60_000, connectionTimeoutMs: 5_000,
    onError: (err) => log.error({ err: err.message }, 'idle bus database client error'),
  });
}

/** Start-up checks of the services the built-in stages call. */
export function serviceChecks(deps: StageDeps): ServiceCheck[] {
  return [
    { group: 'llm', check: (signal) => deps.llm.checkCredentials(signal) },
    { group: 'github', check: (signal) => deps.github.checkCredentials(signal) },
  ];
}

/**
 * Chores of every daemon: orphaned child processes of dead perfmine processes
 * on this host are killed, and (given the database) old attempts, scrape
 * rejects and build logs are pruned by age, keeping every row's last attempt.
 */
export function housekeeping(config: Config, log: Logger, db?: Db): HousekeepingJob[] {
  const dir = path.join(config.PERFMINE_DATA_DIR, 'procs');
  const prune: HousekeepingJob[] = db ? [{
    name: 'prune-history', everyMs: config.PERFMINE_PRUNE_EVERY_MIN * 60_000,
    async run() {
      const pruned = await pruneHistory(db, {
        stageRunsDays: config.PERFMINE_PRUNE_STAGE_RUNS_DAYS, scrapeRejectsDays: config.PERFMINE_PRUNE_SCRAPE_REJECTS_DAYS,
        buildLogsDays: config.PERFMINE_PRUNE_BUILD_LOGS_DAYS,
      });
      if (pruned.stageRuns + pruned.scrapeRejects + pruned.buildLogs) log.info(pruned, 'pruned old history');
    },
  }] : [];
  return [...prune, {
    name: 'reap-orphans', everyMs: 60_000,
    async run() {
      const reaped = await reapOrphans(dir);
      if (reaped.length) log.warn({ families: reaped.length }, 'killed processes left by a perfmine process that died');
    },
  }];
}

/** Daemon settings that come from the configuration (everything but databases, stages and schedule). */
export function daemonSettings(config: Config, log: Logger, deps: StageDeps, db?: Db): Partial<DaemonOptions> {
  return {
    log,
    workerId: config.PERFMINE_WORKER_ID,
    pollIntervalMs: config.PERFMINE_POLL_INTERVAL_MS,
    sweepIntervalMs: config.PERFMINE_SWEEP_INTERVAL_MS,
    shutdownTimeoutMs: config.PERFMINE_SHUTDOWN_TIMEOUT_MS,
    listenerCheckMs: config.PERFMINE_LISTENER_CHECK_MS,
    breaker: { baseSeconds: config.PERFMINE_BREAKER_BASE_S, maxSeconds: config.PERFMINE_BREAKER_MAX_S },
    host: config.PERFMINE_HOST_ID,
    serviceChecks: serviceChecks(deps),
    housekeeping: housekeeping(config, log, db),
    http: config.PERFMINE_HTTP_PORT === undefined ? undefined : { port: config.PERFMINE_HTTP_PORT, host: config.PERFMINE_HTTP_HOST },
    githubQuota: () => deps.github.quotaRemaining(),
  };
}
