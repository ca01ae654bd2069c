import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig, type Config } from '../config.js';
import { connect, type Connection } from '../db/connect.js';
import { backendPidsOf, embeddedPsqlCommand, startEmbeddedPostgres } from '../db/embedded.js';
import { psqlCommand } from '../db/open.js';
import { migrate } from '../db/migrate.js';
import { Daemon } from '../bus/daemon.js';
import { scrubSecrets, type Logger } from '../log.js';
import { buildStageDeps, builtinStages } from '../stages/index.js';
import { GitHubStandin } from '../standins/github/server.js';
import { LlmStandin } from '../standins/llm/server.js';
import { IndexStandin } from '../standins/index/server.js';
import { formatStatus, readStatus, type StatusReport } from './status.js';
import {
  generatedRepoDir, insertGeneratedRepo, prepareGeneratedRepo, summarizeGeneratedRepo, type GeneratedRepoSummary,
} from './demo-generated.js';
import { connectBus, daemonSettings } from './daemon-options.js';
import { writeReport } from './report.js';
import type { EnvironmentRef, Executor } from '../adapters/executors/executor.js';

export const DEMO_DATA = fileURLToPath(new URL('../../data/xarray-prs.jsonl', import.meta.url));

export interface DemoOptions {
  prs: number;
  exitWhenIdle: boolean;
  json: boolean;
  refreshMs: number;
  /** Keep the demo's database after the demo ends (default: dropped). */
  keep?: boolean;
}

export interface DemoSummary {
  /** The demo's own database (created for this run). */
  database: string;
  /** Whether it was kept after the demo (else dropped). */
  kept: boolean;
  funnel: StatusReport['stages'];
  /** Totals over both repositories (xarray's and the generated one). */
  pull_requests: number;
  symbolic_candidates: number;
  judged: number;
  judged_perf: number;
  /** Stage 4: PRs whose environment was decided, and how many can be installed. */
  resolved: number;
  installable: number;
  /** Stage 5: PRs with a problem statement (the others have a render_reason). */
  rendered: number;
  /** Stage 6: PRs with a verified environment (the others have a build_reason). */
  built: number;
  /** Stage 7: PRs the oracle decided, and those it found faster (the PR-level gate). */
  benchmarked: number;
  faster: number;
  /** Stage 8: PRs published (every target written). */
  published: number;
  /** The local dataset target's directory (kept after the demo), and its Parquet files (one per month of merge dates). */
  publish_dir: string;
  parquet: string[];
  categories: Record<string, number>;
  llm_tokens_per_judged_pr: number;
  api_calls: number;
  seconds: number;
  /** The generated repository: each PR against what it should come to. */
  generated: GeneratedRepoSummary;
  /** `perfmine report` of the demo's database, written when idle (kept after the database is dropped). */
  report?: string;
}

/**
 * The offline demo: the GitHub and LLM stand-ins loaded with xarray's real
 * history shipped in data/ and with a repository the demo generates (whose
 * PRs can be built and measured offline), and the daemon, in a new database of its own
 * (on the embedded server, or on the server DATABASE_URL names: existing data
 * is never touched); one INSERT of a row per repository, then the funnel
 * advancing live. The database (and the generated repository) are dropped
 * when the demo ends, unless `keep`.
 * Nothing printed carries a password.
 */
export async function runDemo(base: Config, log: Logger, opts: DemoOptions): Promise<DemoSummary> {
  // Ctrl-C at any point ends the demo the ordinary way: daemon stopped, database dropped (unless kept).
  let interrupted = false;
  let onInterrupt = () => undefined as void;
  const interruption = new Promise<void>((resolve) => { onInterrupt = () => { interrupted = true; resolve(); }; });
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);
  const github = await GitHubStandin.start();
  const llm = await LlmStandin.start();
  let index: IndexStandin | undefined;
  let place: DemoDatabase | undefined;
  let generatedDir: string | undefined;
  let conn: Connection | undefined;
  let daemon: Daemon | undefined;
  let bus: Connection | undefined;
  let deps: ReturnType<typeof buildStageDeps> | undefined;
  try {
    const loaded = github.loadJsonl(DEMO_DATA, { limit: opts.prs });
    github.addRepo({ owner: 'pydata', name: 'xarray', stars: 3900, description: 'N-D labeled arrays and datasets in Python',
      files: { 'asv_bench/asv.conf.json': '{\n  // the real one has more\n  "benchmark_dir": "benchmarks",\n}' } });

    place = await demoDatabase(base);
    const url = place.url;
    generatedDir = generatedRepoDir(base.PERFMINE_DATA_DIR, place.name);
    const publishDir = path.join(base.PERFMINE_DATA_DIR, 'demo-published', place.name);
    const generated = await prepareGeneratedRepo(github, generatedDir);
    // Its dependencies come from a package index of their own (upload times = the wheels' mtimes).
    index = await IndexStandin.start({ wheelsDir: generated.wheelDir });
    conn = connect(url, 8);
    place.ownBackends = backendPidsOf(conn.pool);
    await migrate(conn.pool);

    const config = loadConfig({
      // The generated benchmarks take milliseconds: a small budget each measures them well and keeps stage 7 short.
      PERFMINE_BENCHMARK_BUDGET_S: '5',
      ...process.env, DATABASE_URL: url,
      PERFMINE_GITHUB_API_URL: github.url, GITHUB_TOKEN: 'demo', GITHUB_TOKENS: '',
      PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS: '0', PERFMINE_GITHUB_SEARCH_MIN_INTERVAL_MS: '0', PERFMINE_DIFF_MIN_INTERVAL_MS: '0',
      OPENAI_BASE_URL: llm.url, OPENAI_API_KEY: 'demo', PERFMINE_LLM_MODEL: 'standin-small', PERFMINE_SCHEDULE: 'false',
      PERFMINE_PYTHON_INDEX_URL: index.simpleUrl, PERFMINE_RESOLVER_PYTHON: '/usr/bin/python3',
      // The dataset the demo publishes is its result: kept after the demo, beside (not inside) what is removed.
      PERFMINE_PUBLISH_DIR: publishDir, PERFMINE_PUBLISH_TARGETS: 'local',
    });
    deps = buildStageDeps(config, log);
    bus = connectBus(url, config, log);
    daemon = new Daemon({ ...daemonSettings(config, log, deps), db: conn.db, busDb: bus.db, connectionString: url, stages: builtinStages(deps) });
    await daemon.start();
    if (!opts.json) process.stdout.write(`perfmine demo: ${loaded} merged PRs of pydata/xarray served by the GitHub stand-in at ${github.url},\n` +
      `with ${generated.prs.length} merged PRs of ${generated.fullName}, a repository generated in ${generated.dir} whose PRs can be built and measured offline;\n` +
      `an OpenAI-compatible stand-in at ${llm.url}, and a new database of its own, ${place.name}, on ${place.where} ` +
      `(${opts.keep ? 'kept after the demo' : 'dropped when the demo ends; --keep keeps it'}).\n` +
      `INSERT INTO repositories (owner, name) VALUES ('pydata', 'xarray');\n` +
      `INSERT INTO repositories (owner, name, clone_url) VALUES ('${generated.owner}', '${generated.name}', '${generated.bare.replace(/'/g, "''")}');\n`);

    const t0 = performance.now();
    await sql`INSERT INTO repositories (owner, name) VALUES ('pydata', 'xarray')`.execute(conn.db);
    await insertGeneratedRepo(conn.db, generated);
    const db = conn.db;
    const idle = daemon.whenIdle();
    let done = false;
    void idle.then(() => { done = true; });
    while (!done && !interrupted) {
      if (!opts.json) process.stdout.write(`\x1b[2J\x1b[H${formatStatus(await readStatus(db))}\n`);
      await Promise.race([idle, interruption, new Promise((r) => setTimeout(r, opts.refreshMs))]);
    }
    const seconds = (performance.now() - t0) / 1000;
    const summary = await summarize(db, seconds, github.stats.total, place.name, !!opts.keep, await summarizeGeneratedRepo(db, generated), publishDir);
    summary.report = await writeReport(db, path.join(base.PERFMINE_DATA_DIR, 'demo', `${place.name}-report.html`))
      .then((r) => r.path, (err: Error) => { log.warn({ err: err.message }, 'demo: could not write the report'); return undefined; });
    if (!opts.json) {
      process.stdout.write(`\x1b[2J\x1b[H${formatStatus(await readStatus(db))}\n\n`);
      process.stdout.write(`idle after ${seconds.toFixed(1)} s: ${summary.pull_requests} PRs stored, ${summary.symbolic_candidates} symbolic candidates, ` +
        `${summary.judged_perf} of ${summary.judged} judged performance work; ${summary.llm_tokens_per_judged_pr} LLM tokens per judged PR;\n` +
        `${summary.resolved} environments decided (${summary.installable} installable), ${summary.rendered} problem statements rendered, ` +
        `${summary.built} verified environments built (${config.PERFMINE_EXECUTOR} executor), ${summary.benchmarked} benchmarked ` +
        `(${summary.faster} faster by the PR-level gate), ${summary.published} published.\n` +
        `categories: ${JSON.stringify(summary.categories)}\n` +
        `${generated.fullName}: ${formatGenerated(summary.generated)}\n` +
        (summary.parquet.length ? `published dataset: ${summary.parquet.join(', ')}\n` : `nothing published (the dataset directory would be ${summary.publish_dir})\n`) +
        (summary.report ? `report: ${summary.report}\n` : ''));
    }
    if (!opts.exitWhenIdle && !interrupted) {
      process.stdout.write(`\nThe daemon keeps running; inspect with:\n  ${place.psql} -c 'SELECT * FROM funnel'\n` +
        `Ctrl-C to stop${opts.keep ? '' : ' (the demo database and the generated repository are removed then)'}.\n`);
      await interruption;
    } else if (opts.keep && !opts.json) {
      process.stdout.write(`\nThe demo database is kept (and the generated repository in ${generatedDir}); inspect with:\n  ${place.psql} -c 'SELECT * FROM funnel'\n`);
    }
    return summary;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
    await daemon?.stop(2000);
    // The environments built for this demo go with its database (the shared virtualenvs stay for the next run).
    if (conn && deps && !opts.keep) await discardEnvironments(conn.db, deps.executor, log);
    await index?.close();
    await bus?.close();
    await conn?.close();
    await place?.release(!opts.keep);
    if (generatedDir && !opts.keep) await rm(generatedDir, { recursive: true, force: true });
    await github.close();
    await llm.close();
  }
}

/** Every environment stage 6 built in the demo's database, thrown away. */
async function discardEnvironments(db: Connection['db'], executor: Executor, log: Logger): Promise<void> {
  const { rows } = await sql<{ environment: EnvironmentRef }>`
    SELECT DISTINCT ON (env_ref) environment FROM candidate_containers WHERE environment IS NOT NULL AND reusable`.execute(db).catch(() => ({ rows: [] }));
  for (const { environment } of rows) {
    await executor.discard(environment).catch((err: Error) => log.warn({ env: environment.ref, err: err.message }, 'demo: could not discard an environment'));
  }
}

interface DemoDatabase {
  name: string;
  /** Connection string (may carry a password: never print it). */
  url: string;
  /** What to show: the server, without credentials. */
  where: string;
  /** A psql command line with no password in it. */
  psql: string;
  /** Server pids of the demo's own connections (they may linger a moment after closing). */
  ownBackends?: Set<number>;
  /** Drops the database (when `drop`), then lets go of the embedded server. */
  release(drop: boolean): Promise<void>;
}

/**
 * A new database named perfmine_demo_<random>: on the server DATABASE_URL
 * names (which must allow CREATE DATABASE), or on the embedded server.
 */
async function demoDatabase(base: Config): Promise<DemoDatabase> {
  const name = `perfmine_demo_${randomBytes(4).toString('hex')}`;
  if (base.DATABASE_URL) {
    const adminUrl = base.DATABASE_URL;
    await onServer(adminUrl, `CREATE DATABASE ${name}`).catch((err: Error) => {
      throw new Error(`perfmine demo works in a new database of its own and could not create one on the server DATABASE_URL names ` +
        `(${scrubSecrets(err.message)}); unset DATABASE_URL to use the embedded server`);
    });
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return {
      name, url: url.toString(), where: `${url.hostname}:${url.port || 5432}`, psql: psqlCommand(url.toString()),
      async release(drop) {
        if (drop) await onServer(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      },
    };
  }
  const server = await startEmbeddedPostgres(base.PERFMINE_DATA_DIR, base.PERFMINE_EMBEDDED_PG_PORT);
  const place: DemoDatabase = {
    name, url: await server.urlFor(name), where: `the embedded server (127.0.0.1:${server.port}, data in ${server.dataDir})`,
    psql: embeddedPsqlCommand(server, name),
    async release(drop) {
      if (!drop) return; // kept: the server stays up for the printed psql line (the next perfmine command to finish stops it)
      await onServer(server.adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await server.stopIfUnused({ ownBackends: place.ownBackends });
    },
  };
  return place;
}

async function onServer(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** How many PRs were judged performance work, each performance PR's outcome, and which did not come out as expected. */
function formatGenerated(g: GeneratedRepoSummary): string {
  const off = g.prs.filter((p) => !p.as_expected);
  const perf = g.prs.filter((p) => p.is_performance_commit);
  const lines = perf.map((p) => `  #${p.number} ${p.title}: ${p.published
    ? `published (max speedup ${p.max_speedup?.toFixed(2)}x, at least ${p.max_speedup_lower_bound?.toFixed(2)}x)`
    : p.stopped ?? 'still on its way'}${p.as_expected ? '' : ` — expected: ${p.expected}`}`);
  return `${perf.length} of ${g.prs.length} PRs judged performance work; ` +
    (off.length ? `not (yet) as expected: ${off.map((p) => `#${p.number}`).join(', ')}` : 'every PR came out as expected') +
    (lines.length ? `\n${lines.join('\n')}` : '');
}

/** The month files of the local dataset target (data/<dataset>@YYYY-MM.parquet). */
async function parquetFiles(publishDir: string): Promise<string[]> {
  const dir = path.join(publishDir, 'data');
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.parquet')).sort().map((n) => path.join(dir, n));
}

async function summarize(db: Connection['db'], seconds: number, apiCalls: number, database: string, kept: boolean,
  generated: GeneratedRepoSummary, publishDir: string): Promise<DemoSummary> {
  const status = await readStatus(db);
  const { rows } = await sql<any>`
    SELECT count(*)::int AS prs,
           count(*) FILTER (WHERE is_performance_commit_symbolic)::int AS candidates,
           count(*) FILTER (WHERE is_performance_commit IS NOT NULL)::int AS judged,
           count(*) FILTER (WHERE is_performance_commit)::int AS perf,
           count(*) FILTER (WHERE env_resolved_at IS NOT NULL)::int AS resolved,
           count(*) FILTER (WHERE can_install)::int AS installable,
           count(*) FILTER (WHERE rendered_problem IS NOT NULL)::int AS rendered,
           count(*) FILTER (WHERE container_name IS NOT NULL)::int AS built,
           count(*) FILTER (WHERE benchmark_decision IS NOT NULL)::int AS benchmarked,
           count(*) FILTER (WHERE benchmark_decision = 'faster')::int AS faster,
           count(*) FILTER (WHERE published_at IS NOT NULL)::int AS published
    FROM pull_requests`.execute(db);
  const cats = await sql<{ classification: string; n: number }>`
    SELECT classification, count(*)::int AS n FROM pull_requests WHERE is_performance_commit
    GROUP BY 1 ORDER BY 2 DESC, 1`.execute(db);
  const tokens = await sql<{ t: number; n: number }>`
    SELECT coalesce(sum((cost->>'llm_prompt_tokens')::int + (cost->>'llm_completion_tokens')::int), 0)::int AS t,
           count(DISTINCT subject_id) FILTER (WHERE cost ? 'llm_calls')::int AS n
    FROM stage_runs WHERE stage = 'classify_prs'`.execute(db);
  const t = tokens.rows[0];
  return {
    database,
    kept,
    funnel: status.stages,
    pull_requests: rows[0].prs,
    symbolic_candidates: rows[0].candidates,
    judged: rows[0].judged,
    judged_perf: rows[0].perf,
    resolved: rows[0].resolved,
    installable: rows[0].installable,
    rendered: rows[0].rendered,
    built: rows[0].built,
    benchmarked: rows[0].benchmarked,
    faster: rows[0].faster,
    published: rows[0].published,
    publish_dir: publishDir,
    parquet: await parquetFiles(publishDir),
    categories: Object.fromEntries(cats.rows.map((r) => [r.classification, r.n])),
    llm_tokens_per_judged_pr: t.n ? Math.round(t.t / t.n) : 0,
    api_calls: apiCalls,
    seconds: Math.round(seconds * 10) / 10,
    generated,
  };
}
