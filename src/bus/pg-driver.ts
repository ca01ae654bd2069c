import type { Db } from '../db/connect.js';
import type { BusDriver, Completion } from './driver.js';
import type { StageDefinition } from './stage.js';
import { claim } from './sql/claim.js';
import { complete } from './sql/complete.js';
import { heartbeat } from './sql/heartbeat.js';
import { sweepExpired } from './sql/sweep.js';
import { release } from './sql/release.js';
import { readSettings } from './sql/settings.js';
import { registerStages, registerWorker, markWorkerStopped } from './sql/register.js';
import { outstanding, retryFailed } from './sql/outstanding.js';
import { expireLeasesOfDeadWorkers } from './sql/dead-workers.js';
import { pruneLeases } from './sql/prune-leases.js';
import { releaseResources, tryAcquire } from './sql/resources.js';
import { openBreakers } from './sql/pauses.js';

/** The Postgres implementation of the bus driver: one SQL module per operation. */
export function pgDriver(db: Db): BusDriver {
  return {
    registerStages: (stages) => registerStages(db, stages),
    registerWorker: (workerId, stages) => registerWorker(db, workerId, stages),
    claim: (stage: StageDefinition, limit, workerId) => claim(db, stage, limit, workerId),
    complete: (batch: Completion[], workerId) => db.transaction().execute((trx) => complete(trx, batch, workerId)),
    heartbeat: (workerId, runIds) => heartbeat(db, workerId, runIds),
    sweepExpired: (onExpired) => sweepExpired(db, onExpired),
    expireDeadWorkers: (selfId) => expireLeasesOfDeadWorkers(db, selfId),
    pruneLeases: () => pruneLeases(db),
    tryAcquire: (request) => tryAcquire(db, request),
    releaseResources: (runId) => releaseResources(db, runId),
    openBreaker: (group, reason, workerId, breaker) => openBreakers(db, new Map([[group, { reason, breaker }]]), workerId),
    release: (workerId, runIds) => release(db, workerId, runIds),
    readSettings: () => readSettings(db),
    outstanding: (stages) => outstanding(db, stages),
    retryFailed: (stage) => retryFailed(db, stage),
    markWorkerStopped: (workerId) => markWorkerStopped(db, workerId),
  };
}
