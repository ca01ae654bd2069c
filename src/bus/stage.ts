import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Db } from '../db/connect.js';
import type { Logger } from '../log.js';

/** A claimed subject row, as Postgres returned it. */
export type SubjectRow = Record<string, any> & { id: number };

/** Numbers a handler spent: API calls, tokens, seconds... stored in stage_runs.cost. */
export type Cost = Record<string, number | string | unknown[]>;

/** What a handler hands back; the runtime writes it only if the lease is still ours. */
export interface StageResult {
  /** Columns of the subject row to set (names must be in the stage's `writes`). */
  set?: Record<string, unknown>;
  /** Extra writes (side tables...) done in the same fenced transaction. */
  write?: (trx: Transaction<Database>) => Promise<void>;
  cost?: Cost;
}

export interface HandlerContext {
  runId: number;
  attempt: number;
  workerId: string;
  /** Aborted when the lease is lost, the attempt passes its deadline, or the daemon shuts down past its grace period. */
  signal: AbortSignal;
  /** When this attempt is aborted for taking too long (the stage's `deadlineSeconds`). */
  deadline: Date;
  log: Logger;
  db: Db;
  /** Adds to the cost recorded for this attempt, even if it then fails. */
  addCost(cost: Cost): void;
  /**
   * Runs `fn` in a transaction only while the lease is still this attempt's
   * (the lease row is locked for the transaction): writes a handler makes
   * itself, such as side-table rows, can never be made twice by a worker that
   * lost its lease. Throws LeaseLostError otherwise.
   */
  checkpoint<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
}

/** A host-local resource a stage holds while its handler runs (see StageDefinition.resources). */
export interface LocalResource {
  /** e.g. 'cpu': every stage naming it on the same host shares or excludes. */
  name: string;
  /** exclusive: nothing else holding `name` runs beside it on this host; shared: only exclusive holders are kept out. */
  mode: 'exclusive' | 'shared';
}

export interface Backoff { baseMs: number; maxMs: number }

/** A stage is a declaration plus a handler; the runtime does the rest. */
export interface StageDefinition {
  name: string;
  /** Position in the funnel (for status). */
  ordinal: number;
  description?: string;
  /** Table whose rows are the subjects; it must have a bigint `id`. */
  subjectTable: string;
  /** SQL predicate over alias `s`: the row needs this stage. Keep it index-friendly. */
  pending: string;
  /** SQL predicate over alias `s`: this stage's output is present (for the funnel). */
  done: string;
  /** SQL ORDER BY over alias `s` for claims (default `s.id`). */
  order?: string;
  /** SQL expression over `s` giving when a row became pending (default `s.created_at`). */
  since?: string;
  /** Columns of the subject row the handler may set. */
  writes: string[];
  /**
   * The columns whose value says "this stage is done for the row" (a subset
   * of `writes`). Setting one back to NULL by hand re-requests the row: its
   * failed or waiting lease is cleared, and a run in progress is superseded,
   * so the row runs exactly once more.
   */
  outputs: string[];
  /** Doorbell payloads that may make rows pending (default: the subject table). */
  wakeOn?: string[];
  concurrency: number;
  leaseSeconds: number;
  /** An attempt running longer than this is aborted and recorded as an error. */
  deadlineSeconds: number;
  /** Host-local resources held while the handler runs (e.g. the CPUs a benchmark is pinned to). */
  resources?: LocalResource[];
  maxAttempts: number;
  backoff: Backoff;
  /** Services this stage calls: stages sharing a group pause together when that service says "wait". */
  rateLimitGroups?: string[];
  handle(row: SubjectRow, ctx: HandlerContext): Promise<StageResult>;
  /** Runs once when a daemon starts, before any claim (e.g. to record the prompts in use). */
  prepare?(db: Db): Promise<void>;
}

/** Thrown by a handler when a service asked us to wait until `until`. */
export class RateLimitedError extends Error {
  /** `group` names the service (e.g. 'github', 'llm'); default: the stage's first group. */
  constructor(readonly until: Date, message = 'rate limited', readonly group?: string) {
    super(message);
    this.name = 'RateLimitedError';
  }
}

/**
 * Thrown (by an adapter) when a whole service is unusable, not this row: a
 * missing or rejected credential, an endpoint that refuses connections, a
 * storm of 5xx or timeouts. The bus does not count the attempt; it opens the
 * service group's circuit breaker (growing pauses) so the backlog waits
 * instead of failing row by row.
 */
export class ServiceDownError extends Error {
  constructor(readonly group: string, message: string) {
    super(message);
    this.name = 'ServiceDownError';
  }
}

/** The lease of this attempt is no longer held: a checkpoint refused to write. */
export class LeaseLostError extends Error {
  constructor(message = 'lease lost: this attempt no longer holds the row') {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/** Thrown by a handler for an error that retrying cannot fix: fail the row at once. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}

const IDENT = /^[a-z_][a-z0-9_]*$/;

/** Catches declaration mistakes at start instead of at the first claim. */
export function validateStage(stage: StageDefinition): void {
  const problems: string[] = [];
  if (!IDENT.test(stage.name)) problems.push('name must be a lower-case SQL identifier');
  if (!IDENT.test(stage.subjectTable)) problems.push('subjectTable must be a lower-case SQL identifier');
  for (const c of stage.writes) if (!IDENT.test(c)) problems.push(`writes: bad column ${c}`);
  if (!(stage.concurrency >= 0)) problems.push('concurrency must be >= 0');
  if (!(stage.leaseSeconds > 0)) problems.push('leaseSeconds must be > 0');
  if (!(stage.deadlineSeconds > 0)) problems.push('deadlineSeconds must be > 0');
  if (!stage.outputs?.length) problems.push('outputs must name at least one column');
  for (const c of stage.outputs ?? []) if (!stage.writes.includes(c)) problems.push(`outputs: ${c} is not in writes`);
  for (const r of stage.resources ?? []) {
    if (!IDENT.test(r.name)) problems.push(`resources: bad name ${r.name}`);
    if (r.mode !== 'exclusive' && r.mode !== 'shared') problems.push(`resources: bad mode ${String(r.mode)}`);
  }
  if (!(stage.maxAttempts >= 1)) problems.push('maxAttempts must be >= 1');
  if (problems.length) throw new Error(`stage ${stage.name}: ${problems.join('; ')}`);
}
