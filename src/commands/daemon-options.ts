import path from 'node:path';
import type { Config } from '../config.js';
import { reapOrphans } from '../adapters/process/index.js';
import type { HousekeepingJob } from '../bus/maintenance/housekeeper.js';
import type { Connection } from '../db/connect.js';
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

/** Chores of every daemon: orphaned child processes of dead perfmine processes on this host are killed. */
export function housekeeping(config: Config, log: Logger): HousekeepingJob[] {
  const dir = path.join(config.PERFMINE_DATA_DIR, 'procs');
  return [{
    name: 'reap-orphans', everyMs: 60_000,
    async run() {
      const reaped = await reapOrphans(dir);
      if (reaped.length) log.warn({ families: reaped.length }, 'killed processes left by a perfmine process that died');
    },
  }];
}

/** Daemon settings that come from the configuration (everything but databases, stages and schedule). */
export function daemonSettings(config: Config, log: Logger, deps: StageDeps): Partial<DaemonOptions> {
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
    housekeeping: housekeeping(config, log),
  };
}
