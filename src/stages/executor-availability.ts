import { ServiceDownError } from '../bus/stage.js';
import type { Executor } from '../adapters/executors/executor.js';

/** The breaker group of an executor that cannot work at all (no Docker engine, no base image). */
export const EXECUTOR_GROUP = 'executor';

/**
 * A check a stage makes before each attempt: whether its executor can work
 * here, asked at most once a minute. When it cannot, the attempt ends in
 * ServiceDownError on EXECUTOR_GROUP (the stage waits, no row fails), saying
 * the executor cannot `purpose` and why.
 */
export function executorAvailability(executor: Executor, purpose: string): (signal: AbortSignal) => Promise<void> {
  let availability: { at: number; ok: true } | { at: number; ok: false; reason: string } | null = null;
  return async (signal) => {
    if (!availability || Date.now() - availability.at > 60_000) availability = { at: Date.now(), ...(await executor.available(signal)) };
    if (!availability.ok) throw new ServiceDownError(EXECUTOR_GROUP, `the ${executor.kind} executor cannot ${purpose}: ${availability.reason}`);
  };
}
