/**
 * The executor the configuration names (PERFMINE_EXECUTOR): `local` (the
 * default) or `docker`. Stages and tests get theirs from here, so one
 * setting switches every build and every exec.
 */
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import type { RepoStore } from '../git/repo-store.js';
import type { Executor, ExecutorKind } from './executor.js';
import { DEFAULT_PYTHON_PATHS } from './local/interpreters.js';
import { LocalExecutor } from './local/local-executor.js';
import { createDockerExecutor } from './docker/index.js';

export type {
  BuildRequest, BuildResult, EnvironmentRef, ExecOptions, ExecResult, ExecSession, Executor, ExecutorKind, SessionOptions, SessionRunOptions,
} from './executor.js';

export interface ExecutorDeps {
  config: Config;
  repos: RepoStore;
  log: Logger;
}

export function createExecutor(kind: ExecutorKind, deps: ExecutorDeps): Executor {
  const { config } = deps;
  switch (kind) {
    case 'local':
      return new LocalExecutor({
        dataDir: config.PERFMINE_DATA_DIR, repos: deps.repos,
        pythonPaths: config.PERFMINE_PYTHON_PATHS ?? DEFAULT_PYTHON_PATHS,
      });
    case 'docker':
      return createDockerExecutor(config, { log: deps.log });
  }
}

/** An executor that says why it cannot work (the stage waits: its breaker opens). */
export function unavailableExecutor(kind: ExecutorKind, reason: string): Executor {
  const refuse = () => Promise.reject(new Error(reason));
  return { kind, available: async () => ({ ok: false, reason }), build: refuse, exec: refuse, openSession: refuse, discard: refuse };
}
