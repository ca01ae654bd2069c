import type { StageDefinition } from '../bus/stage.js';
import type { ScheduledJob } from '../bus/maintenance/scheduler.js';
import { discoverRepos } from './discover-repos.js';
import { scrapeRepos } from './scrape-repos.js';
import { scrapeCommits } from './scrape-commits.js';
import { discoverSchedule } from './schedule.js';
import type { StageDeps } from './deps.js';
import { GitHubClient } from '../adapters/github/client.js';
import { LlmClient } from '../adapters/llm/client.js';
import { classifyPrs } from './classify-prs.js';
import { renderProblems } from './render-problems.js';
import { resolvePackages } from './resolve-packages.js';
import { synthesizeImages } from './synthesize-images.js';
import { benchmark } from './benchmark.js';
import { publish } from './publish.js';
import { createExecutor } from '../adapters/executors/index.js';
import { GitRepoStore } from '../adapters/git/repo-store.js';
import { lazyResolver } from '../adapters/python/index.js';
import { githubTokens, type Config } from '../config.js';
import type { Logger } from '../log.js';
import path from 'node:path';

export type { StageDeps } from './deps.js';

/** Builds the adapters the stages use from the configuration. */
export function buildStageDeps(config: Config, log: Logger): StageDeps {
  const github = new GitHubClient({
    baseUrl: config.PERFMINE_GITHUB_API_URL,
    tokens: githubTokens(config),
    log,
    maxInlineWaitSeconds: config.PERFMINE_GITHUB_MAX_INLINE_WAIT_S,
    graphqlMinIntervalMs: config.PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS,
    searchMinIntervalMs: config.PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS,
    timeoutMs: config.PERFMINE_GITHUB_TIMEOUT_MS,
  });
  const model = config.PERFMINE_LLM_MODEL;
  const llm = new LlmClient({
    baseUrl: config.OPENAI_BASE_URL,
    apiKey: config.OPENAI_API_KEY,
    models: {
      classify: config.PERFMINE_LLM_MODEL_CLASSIFY ?? model,
      categorize: config.PERFMINE_LLM_MODEL_CATEGORIZE ?? model,
      extract: config.PERFMINE_LLM_MODEL_EXTRACT ?? model,
      synthesize: config.PERFMINE_LLM_MODEL_SYNTHESIZE ?? model,
    },
    timeoutMs: config.PERFMINE_LLM_TIMEOUT_MS,
    maxTries: config.PERFMINE_LLM_MAX_TRIES,
    quotaPauseSeconds: config.PERFMINE_LLM_QUOTA_PAUSE_S,
    log,
  });
  const repos = new GitRepoStore({
    dataDir: config.PERFMINE_DATA_DIR,
    worktreeMaxCount: config.PERFMINE_WORKTREE_MAX,
    worktreeMaxAgeMs: config.PERFMINE_WORKTREE_MAX_AGE_H * 3600_000,
    fetchTimeoutMs: config.PERFMINE_GIT_FETCH_TIMEOUT_S * 1000,
  });
  const pythonResolver = lazyResolver({
    kind: config.PERFMINE_RESOLVER, uv: config.PERFMINE_UV, python: config.PERFMINE_RESOLVER_PYTHON,
    indexUrl: config.PERFMINE_PYTHON_INDEX_URL, timeoutMs: config.PERFMINE_RESOLVE_TIMEOUT_S * 1000,
    indexTimeoutMs: config.PERFMINE_INDEX_TIMEOUT_MS, cacheDir: path.join(config.PERFMINE_DATA_DIR, 'pip-cache'),
  });
  const executor = createExecutor(config.PERFMINE_EXECUTOR, { config, repos, log });
  return { config, log, github, llm, repos, pythonResolver, executor };
}

/**
 * The funnel's stages, in order. Each lives in its own file beside this one:
 * its claim predicate, concurrency and handler side by side.
 */
export function builtinStages(deps: StageDeps): StageDefinition[] {
  return [
    discoverRepos(deps), scrapeRepos(deps), scrapeCommits(deps), classifyPrs(deps), resolvePackages(deps), renderProblems(deps),
    synthesizeImages(deps), benchmark(deps), publish(deps),
  ];
}

/** Cron jobs that feed the funnel (they only insert or reset rows). */
export function builtinSchedule(deps: StageDeps): ScheduledJob[] {
  return deps.config.PERFMINE_SCHEDULE ? discoverSchedule(deps.config) : [];
}
