/**
 * The executor stage 6's tests run with: PERFMINE_EXECUTOR (default local).
 * The same tests run with the docker executor where a Docker engine answers:
 *
 *   PERFMINE_EXECUTOR=docker npx vitest run test/synthesize-images.test.ts
 *
 * Its settings (PERFMINE_DOCKER_*, DOCKER_HOST) pass through from the
 * environment; an executor that is not available here skips the tests that
 * need it, saying why.
 */
import type { ExecutorKind } from '../../src/adapters/executors/executor.js';
import type { Executor } from '../../src/adapters/executors/index.js';

export const TEST_EXECUTOR: ExecutorKind = process.env.PERFMINE_EXECUTOR === 'docker' ? 'docker' : 'local';

/** Configuration entries for the executor under test (for loadConfig). */
export function executorSettings(): Record<string, string> {
  const out: Record<string, string> = { PERFMINE_EXECUTOR: TEST_EXECUTOR };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (k.startsWith('PERFMINE_DOCKER_') || k === 'DOCKER_HOST')) out[k] = v;
  }
  return out;
}

/** Why `executor` cannot be used here (null: it can). */
export async function unavailableReason(executor: Executor): Promise<string | null> {
  const a = await executor.available().catch((err: Error) => ({ ok: false as const, reason: err.message }));
  return a.ok ? null : `the ${executor.kind} executor is not available here: ${a.reason}`;
}
