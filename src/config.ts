import path from 'node:path';
import { z } from 'zod';
import cron from 'node-cron';

const validateCron = (expr: string) => cron.validate(expr);

/** A message that names the offending environment variable. */
export class ConfigError extends Error {}

const int = (min: number) => z.coerce.number().int().min(min);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const pythonMinor = z.string().regex(/^3\.\d+$/, 'expected a Python minor such as 3.8');
const csv = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** Every setting, keyed by its environment variable, with its default. */
const schema = z.object({
  DATABASE_URL: z.string().url().optional(),
  // Made absolute once, here: a relative path must not mean another directory to a process started elsewhere.
  PERFMINE_DATA_DIR: z.string().min(1).default('./.perfmine').transform((p) => path.resolve(p)),
  PERFMINE_EMBEDDED_PG_PORT: int(1).max(65535).default(54329),
  PERFMINE_POOL_SIZE: int(2).max(200).default(8),
  PERFMINE_WORKER_ID: z.string().min(1).optional(),
  PERFMINE_STAGES: csv.optional(),
  PERFMINE_POLL_INTERVAL_MS: int(50).default(1000),
  PERFMINE_SWEEP_INTERVAL_MS: int(100).default(5000),
  PERFMINE_SHUTDOWN_TIMEOUT_MS: int(0).default(30000),
  PERFMINE_LISTENER_CHECK_MS: int(500).default(10000),
  PERFMINE_BREAKER_BASE_S: int(1).default(5),
  PERFMINE_BREAKER_MAX_S: int(1).default(300),
  PERFMINE_HOST_ID: z.string().min(1).optional(),
  PERFMINE_STATEMENT_TIMEOUT_MS: int(0).default(300_000),
  PERFMINE_DB_WAIT_S: int(0).default(120),
  // Operations: the HTTP listener (/metrics, /healthz, /readyz; off when the port is unset) and housekeeping
  PERFMINE_HTTP_PORT: int(0).max(65535).optional(),
  PERFMINE_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  PERFMINE_PRUNE_STAGE_RUNS_DAYS: int(0).default(90),
  PERFMINE_PRUNE_SCRAPE_REJECTS_DAYS: int(0).default(90),
  PERFMINE_PRUNE_BUILD_LOGS_DAYS: int(0).default(30),
  PERFMINE_PRUNE_EVERY_MIN: int(1).default(60),
  PERFMINE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PERFMINE_LOG_PRETTY: bool.optional(),
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_TOKENS: csv.optional(),
  PERFMINE_GITHUB_API_URL: z.string().url().default('https://api.github.com'),
  PERFMINE_GITHUB_MAX_INLINE_WAIT_S: int(0).default(10),
  PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS: int(0).default(1000),
  PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS: int(0).default(2000),
  PERFMINE_GITHUB_TIMEOUT_MS: int(100).default(30_000),
  PERFMINE_MIN_STARS: int(0).default(500),
  PERFMINE_CODE_SEARCH_PAGES: int(1).max(10).default(10),
  PERFMINE_DISCOVER_CRON: z.string().default('0 3 1 * *'),
  PERFMINE_RESCRAPE_CRON: z.string().default('0 4 1 * *'),
  PERFMINE_SCHEDULE: bool.default(true),
  PERFMINE_SCRAPE_SINCE: z.string().datetime({ offset: true }).optional(),
  PERFMINE_SYMBOLIC_RULE: z.enum(['loose', 'strict']).default('loose'),
  PERFMINE_MAX_FILES: int(1).default(500),
  PERFMINE_MAX_LINES: int(1).default(40000),
  PERFMINE_SCRAPE_CONCURRENCY: int(1).default(2),
  PERFMINE_SCRAPE_LAG_S: int(0).default(900),
  PERFMINE_SCRAPE_OVERLAP_S: int(0).default(3600),
  OPENAI_BASE_URL: z.string().url().default('https://api.openai.com/v1'),
  OPENAI_API_KEY: z.string().min(1).optional(),
  PERFMINE_LLM_MODEL: z.string().min(1).default('gpt-4o-mini'),
  PERFMINE_LLM_MODEL_CLASSIFY: z.string().min(1).optional(),
  PERFMINE_LLM_MODEL_CATEGORIZE: z.string().min(1).optional(),
  PERFMINE_LLM_MODEL_EXTRACT: z.string().min(1).optional(),
  PERFMINE_LLM_MODEL_SYNTHESIZE: z.string().min(1).optional(),
  PERFMINE_LLM_TIMEOUT_MS: int(100).default(120_000),
  PERFMINE_LLM_MAX_TRIES: int(1).max(10).default(3),
  PERFMINE_LLM_QUOTA_PAUSE_S: int(1).default(3600),
  PERFMINE_PROMPTS_DIR: z.string().min(1).optional(),
  PERFMINE_CLASSIFY_CONCURRENCY: int(1).default(4),
  PERFMINE_CLASSIFY_PATCH_TOKENS: int(100).default(8000),
  PERFMINE_PATCH_MIN_TOKENS: int(0).default(5),
  PERFMINE_PATCH_MAX_TOKENS: int(1).default(16000),
  PERFMINE_DIFF_MIN_INTERVAL_MS: int(0).default(250),
  // Stage 5 (render_problems)
  PERFMINE_RENDER_CONCURRENCY: int(1).default(2),
  PERFMINE_PROBLEM_REQUIRES_ISSUE: bool.default(true),
  PERFMINE_LINKED_ISSUES_DEPTH: int(1).max(5).default(2),
  PERFMINE_LINKED_ISSUES_MAX: int(1).max(50).default(6),
  PERFMINE_LINKED_ISSUES_LOOKUPS: int(1).max(200).default(20),
  PERFMINE_EXTRACT_SOURCE_TOKENS: int(500).default(12000),
  PERFMINE_FIDELITY_MIN_RATIO: z.coerce.number().min(0).max(1).default(0.75),
  PERFMINE_PROBLEM_MAX_PATCH_OVERLAP: z.coerce.number().min(0).max(1).default(0.2),
  // Stage 4 (resolve_packages)
  PERFMINE_PYTHON_INDEX_URL: z.string().url().default('https://pypi.org/simple'),
  PERFMINE_RESOLVER: z.enum(['auto', 'pip', 'uv']).default('auto'),
  PERFMINE_RESOLVER_PYTHON: z.string().min(1).default('python3'),
  PERFMINE_UV: z.string().min(1).default('uv'),
  PERFMINE_PYTHON_MIN: pythonMinor.default('3.8'),
  PERFMINE_PYTHON_MAX: pythonMinor.default('3.12'),
  PERFMINE_RESOLVE_CUTOFF: bool.default(true),
  PERFMINE_RESOLVE_CONCURRENCY: int(1).default(4),
  PERFMINE_RESOLVE_TIMEOUT_S: int(10).default(600),
  PERFMINE_INDEX_TIMEOUT_MS: int(100).default(30_000),
  PERFMINE_GIT_FETCH_TIMEOUT_S: int(10).default(1800),
  PERFMINE_WORKTREE_MAX: int(1).default(20),
  PERFMINE_WORKTREE_MAX_AGE_H: int(1).default(24),
  // Stage 6 (synthesize_images)
  PERFMINE_EXECUTOR: z.enum(['local', 'docker']).default('local'),
  PERFMINE_PYTHON_PATHS: csv.optional(),
  PERFMINE_BUILD_CONCURRENCY: int(1).default(2),
  PERFMINE_BUILD_TIMEOUT_S: int(1).default(1800),
  PERFMINE_BUILD_DEADLINE_S: int(60).default(14_400),
  PERFMINE_VERIFY_TIMEOUT_S: int(10).default(600),
  PERFMINE_BUILD_SIMILAR: int(0).max(50).default(5),
  PERFMINE_BUILD_DEFAULT_MAX_FAILURES: int(0).default(3),
  PERFMINE_BUILD_LLM_ATTEMPTS: int(0).max(20).default(3),
  PERFMINE_BUILD_NEIGHBOUR_DAYS: int(0).default(60),
  PERFMINE_BUILD_NEIGHBOUR_MAX: int(0).default(40),
  PERFMINE_BUILD_LOG_TAIL_CHARS: int(500).default(4000),
  // Docker executor (src/adapters/executors/docker/)
  PERFMINE_DOCKER_BASE_IMAGE: z.string().regex(/^[a-z0-9][a-z0-9._\/:{}-]*$/, 'an image name, {python} replaced by the version').default('perfmine-base:py{python}'),
  PERFMINE_DOCKER_IMAGE_PREFIX: z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*$/, 'lowercase letters, digits and . _ -').default('perfmine'),
  PERFMINE_DOCKER_BUILD_MEMORY_MB: int(0).default(8192),
  PERFMINE_DOCKER_BUILD_CPUS: z.string().regex(/^\d+([-,]\d+)*$/, 'a cpuset such as 0 or 0-2').optional(),
  PERFMINE_DOCKER_PIDS_LIMIT: int(0).default(4096),
  // Stage 7 (benchmark, the oracle)
  /** The cpuset a benchmark is pinned to (unset: the machine's last CPU; the runner times on one CPU). */
  PERFMINE_BENCHMARK_CPUS: z.string().regex(/^\d+([-,]\d+)*$/, 'a cpuset such as 1 or 2-3').optional(),
  /** docker: the memory limit of the benchmark container. */
  PERFMINE_BENCHMARK_MEMORY_MB: int(256).default(4096),
  /** One PR's whole trial (trees, build, tests, measurement): the stage's deadline. */
  PERFMINE_BENCHMARK_TIMEOUT_S: int(60).default(7200),
  /** The tests of one tree (exported to the tests as PERFMINE_TEST_TIMEOUT_S too). */
  PERFMINE_TEST_TIMEOUT_S: int(10).default(600),
  /** Time budget of one benchmark per side (asv's max_time): fewer samples for slow benchmarks. */
  PERFMINE_BENCHMARK_BUDGET_S: z.coerce.number().positive().default(60),
  // Stage 8 (publish)
  PERFMINE_MIN_SPEEDUP: z.coerce.number().min(1).default(1.05),
  PERFMINE_PUBLISH_MACHINES: csv.default([]),
  PERFMINE_PUBLISH_TARGETS: csv.pipe(z.array(z.enum(['local', 'hub'])).min(1, 'name at least one target: local, hub')).default(['local']),
  PERFMINE_PUBLISH_DATASET: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/, 'letters, digits and . _ - (it names the files)').default('perfmine'),
  PERFMINE_PUBLISH_DIR: z.string().min(1).transform((p) => path.resolve(p)).optional(),
  PERFMINE_PUBLISH_CONCURRENCY: int(1).default(1),
  PERFMINE_PUBLISH_TIMEOUT_S: int(5).default(1800),
  PERFMINE_HF_HUB_URL: z.string().url().default('https://huggingface.co'),
  PERFMINE_HF_REPO: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a dataset repository: NAMESPACE/NAME').optional(),
  PERFMINE_HF_TOKEN: z.string().startsWith('hf_', 'a Hugging Face token starts with hf_').optional(),
  PERFMINE_PUBLISH_REGISTRY: z.string().regex(/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'a registry and namespace such as 127.0.0.1:5000/perfmine').optional(),
  PERFMINE_PUBLISH_REGISTRY_USERNAME: z.string().min(1).optional(),
  PERFMINE_PUBLISH_REGISTRY_PASSWORD: z.string().min(1).optional(),
});

export type Config = z.infer<typeof schema>;

/** Cron expressions are checked with node-cron's own validator. */
const cronKeys = ['PERFMINE_DISCOVER_CRON', 'PERFMINE_RESCRAPE_CRON'] as const;

/** Settings whose values must never be printed. */
export const SECRET_KEYS = ['GITHUB_TOKEN', 'GITHUB_TOKENS', 'OPENAI_API_KEY', 'DATABASE_URL', 'PERFMINE_HF_TOKEN', 'PERFMINE_PUBLISH_REGISTRY_PASSWORD'] as const;

/**
 * Reads and validates the environment. Empty strings count as unset, so
 * `FOO= perfmine ...` falls back to the default rather than failing.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.keys(schema.shape);
  const input: Record<string, string> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  const issues = parsed.success ? [] : parsed.error.issues.map((i) => ({ path: i.path, message: i.message }));
  if (parsed.success) {
    for (const key of cronKeys) {
      if (!validateCron(parsed.data[key])) issues.push({ path: [key], message: 'not a valid cron expression' });
    }
    const minor = (v: string) => Number(v.split('.')[1]);
    if (minor(parsed.data.PERFMINE_PYTHON_MIN) > minor(parsed.data.PERFMINE_PYTHON_MAX)) {
      issues.push({ path: ['PERFMINE_PYTHON_MIN'], message: `above PERFMINE_PYTHON_MAX (${parsed.data.PERFMINE_PYTHON_MAX})` });
    }
    if (parsed.data.PERFMINE_PUBLISH_TARGETS.includes('hub')) {
      if (!parsed.data.PERFMINE_HF_REPO) issues.push({ path: ['PERFMINE_HF_REPO'], message: 'needed by PERFMINE_PUBLISH_TARGETS=hub' });
      if (!parsed.data.PERFMINE_HF_TOKEN) issues.push({ path: ['PERFMINE_HF_TOKEN'], message: 'needed by PERFMINE_PUBLISH_TARGETS=hub' });
    }
  }
  if (issues.length) {
    const lines = issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const shown = (SECRET_KEYS as readonly string[]).includes(name) ? '(hidden)' : JSON.stringify(input[name]);
      return `${name}=${shown}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data!;
}

/** The GitHub tokens to rotate through, from GITHUB_TOKENS or GITHUB_TOKEN. */
export function githubTokens(config: Config): string[] {
  if (config.GITHUB_TOKENS?.length) return config.GITHUB_TOKENS;
  return config.GITHUB_TOKEN ? [config.GITHUB_TOKEN] : [];
}

/** The configuration with secrets masked, for `perfmine config` and logs. */
export function describeConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) if (out[key] !== undefined) out[key] = '(set)';
  return out;
}
