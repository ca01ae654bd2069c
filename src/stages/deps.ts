import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { GitHubClient } from '../adapters/github/client.js';
import type { LlmClient } from '../adapters/llm/client.js';
import type { RepoStore } from '../adapters/git/repo-store.js';
import type { PythonResolver } from '../adapters/python/index.js';
import type { Executor } from '../adapters/executors/executor.js';

/** What the built-in stages need from the outside world. */
export interface StageDeps {
  config: Config;
  log: Logger;
  github: GitHubClient;
  llm: LlmClient;
  /** Source trees at a commit (managed clones, worktrees): stage 4 reads, stage 6 builds. */
  repos: RepoStore;
  /** The Python resolver (made on first use). */
  pythonResolver: () => Promise<PythonResolver>;
  /** Where environments are built and run (PERFMINE_EXECUTOR): stage 6 builds, stage 7 runs. */
  executor: Executor;
}
