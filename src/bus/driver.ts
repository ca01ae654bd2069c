import type { StageDefinition, SubjectRow, Cost } from './stage.js';
import type { ResourceRequest } from './sql/resources.js';

/** One claimed row: the subject plus the fencing token of this attempt. */
export interface Claim {
  stage: string;
  runId: number;
  attempt: number;
  claimedAt: Date;
  row: SubjectRow;
}

export type Outcome =
  | { kind: 'succeeded'; set?: Record<string, unknown>; write?: StageResultWrite }
  | { kind: 'error'; error: string; retryInMs: number; permanent?: boolean }
  | { kind: 'rate_limited'; until: Date; group?: string; error: string }
  /** The service is down (circuit breaker): uncounted, and the group pauses for a growing time. */
  | { kind: 'service_down'; group: string; error: string; breaker: BreakerSettings };

/** Pauses of an open breaker: base seconds, doubled per consecutive opening, capped. */
export interface BreakerSettings { baseSeconds: number; maxSeconds: number }

export type StageResultWrite = NonNullable<import('./stage.js').StageResult['write']>;

export interface Completion {
  stage: StageDefinition;
  claim: Claim;
  outcome: Outcome;
  cost?: Cost;
  /** Service groups that answered this attempt: their circuit breakers close. */
  servicesOk?: string[];
}

export interface StageSettings { paused: boolean; concurrency: number | null }

/**
 * The narrow interface between the queue logic and the database (River's
 * "driver"). Every method is one short transaction or statement.
 */
export interface BusDriver {
  registerStages(stages: StageDefinition[]): Promise<void>;
  registerWorker(workerId: string, stages: string[]): Promise<void>;
  /** Claims up to `limit` pending rows (none when paused or rate-limited). */
  claim(stage: StageDefinition, limit: number, workerId: string): Promise<Claim[]>;
  /** Writes results fenced by run id; returns the run ids that were refused as stale. */
  complete(batch: Completion[], workerId: string): Promise<number[]>;
  /** Extends the leases still held; returns the run ids that are no longer ours. */
  heartbeat(workerId: string, runIds: number[]): Promise<number[]>;
  /** Returns expired leases of dead workers to the pending set; returns how many. */
  sweepExpired(onExpired?: (stage: string, n: number) => void): Promise<number>;
  /** Expires now the leases of workers on this host whose process is gone; returns how many. */
  expireDeadWorkers(selfId: string): Promise<number>;
  /** Removes leases of rows that were deleted or no longer need their stage; returns how many. */
  pruneLeases(): Promise<number>;
  /** One try at a host-local resource for an attempt (see sql/resources.ts). */
  tryAcquire(request: ResourceRequest): Promise<boolean>;
  releaseResources(runId: number): Promise<void>;
  /** Opens a group's circuit breaker (e.g. a credential check failed at start). */
  openBreaker(group: string, reason: string, workerId: string, breaker: BreakerSettings): Promise<void>;
  /** Gives back leases of unfinished work (shutdown) without counting an attempt. */
  release(workerId: string, runIds: number[]): Promise<number>;
  readSettings(): Promise<Map<string, StageSettings>>;
  /** Rows pending (ready now or later) or running for these stages, ignoring paused ones. */
  outstanding(stages: string[]): Promise<number>;
  /** Re-queues rows a stage gave up on; returns how many. */
  retryFailed(stage: string): Promise<number>;
  markWorkerStopped(workerId: string): Promise<void>;
}
