#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { sql } from 'kysely';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { createLogger, scrubSecrets, type Logger } from './log.js';
import { openDatabase, type OpenDatabase } from './db/open.js';
import { migrate } from './db/migrate.js';
import { Daemon } from './bus/daemon.js';
import { pgDriver } from './bus/pg-driver.js';
import { buildStageDeps, builtinSchedule, builtinStages } from './stages/index.js';
import { formatStatus, readStatus } from './commands/status.js';
import { addRepo } from './commands/add-repo.js';
import { connectBus, daemonSettings } from './commands/daemon-options.js';
import { findRepository, parsePrRef, parseRepoSlug, requireStage, UsageError } from './commands/usage.js';
import { retryFailedWhere } from './commands/retry.js';
import { setPaused } from './commands/pause.js';
import { resumeStage } from './commands/resume.js';
import { setConcurrency } from './commands/concurrency.js';
import { formatInspection, inspectPr } from './commands/inspect.js';
import { rescrape } from './commands/rescrape.js';
import { rejudge } from './commands/rejudge.js';
import { PERFMINE_VERSION } from './version.js';

/** Loads config or exits with a message that names the bad variable. */
function settings(): { config: Config; log: Logger } {
  try {
    const config = loadConfig();
    return { config, log: createLogger(config.PERFMINE_LOG_LEVEL, config.PERFMINE_LOG_PRETTY ?? false) };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`perfmine: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Opens the database for a short command, runs it, and closes everything. */
async function withDatabase<T>(fn: (db: OpenDatabase, config: Config, log: Logger) => Promise<T>, opts: { migrate?: boolean } = {}): Promise<T> {
  const { config, log } = settings();
  const db = await openDatabase(config, log, { migrate: opts.migrate ?? true });
  try {
    return await fn(db, config, log);
  } finally {
    await db.close();
  }
}

const DEFAULT_STANDIN_DATA = fileURLToPath(new URL('../data/xarray-prs.jsonl', import.meta.url));

/** The distinct repositories named in a JSONL file of PRs. */
function loadRepoNames(file: string, override?: string): string[] {
  if (override) return [override];
  return [...new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => String(JSON.parse(l).repository)))];
}

const csvList = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

const program = new Command()
  .name('perfmine')
  .description('Turns merged GitHub pull requests into verified performance-optimization tasks.\n' +
    'Configuration comes from the environment (see `perfmine config`).')
  .version(PERFMINE_VERSION, '-V, --version', 'print perfmine\'s version')
  .showHelpAfterError();

program.command('migrate')
  .description('apply the schema in sql/ and triggers/ and register the stages (the daemon also does this at start)')
  .action(() => withDatabase(async (db, config, log) => {
    const applied = await migrate(db.pool, log);
    // The stage declarations too, so `SELECT * FROM funnel` lists every stage before any daemon runs.
    await pgDriver(db.db).registerStages(builtinStages(buildStageDeps(config, log)));
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
  }, { migrate: false }));

program.command('daemon')
  .description('run the reactors: claim pending rows of every stage and advance them')
  .option('--stages <list>', 'comma-separated stage names to run (default: all)', csvList)
  .option('--exit-when-idle', 'stop once nothing is pending, retrying or running (for scripts)')
  .action(async (opts: { stages?: string[]; exitWhenIdle?: boolean }) => {
    const { config, log } = settings();
    const db = await openDatabase(config, log, { migrate: true, waitMs: config.PERFMINE_DB_WAIT_S * 1000 });
    if (db.embedded) process.stderr.write(`perfmine: embedded PostgreSQL is running; inspect progress with:\n  ${db.psql}\n`);
    const deps = buildStageDeps(config, log);
    const all = builtinStages(deps);
    const wanted = opts.stages ?? config.PERFMINE_STAGES;
    const unknown = (wanted ?? []).filter((n) => !all.some((s) => s.name === n));
    if (unknown.length) {
      process.stderr.write(`perfmine: unknown stage(s): ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ') || '(none)'}\n`);
      await db.close();
      process.exit(2);
    }
    const stages = wanted ? all.filter((s) => wanted.includes(s.name)) : all;
    const bus = connectBus(db.connectionString, config, log);
    const daemon = new Daemon({
      ...daemonSettings(config, log, deps, bus.db),
      db: db.db, busDb: bus.db, connectionString: db.connectionString, stages, schedule: builtinSchedule(deps),
      pools: [{ name: 'handlers', pool: db.pool }, { name: 'bus', pool: bus.pool }],
    });
    let signals = 0;
    const finish = async (code: number) => {
      await daemon.stop();
      await bus.close();
      await db.close();
      process.exit(code);
    };
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        if (++signals > 1) {
          log.warn('second signal: exiting now; unfinished leases will be swept');
          process.exit(130);
        }
        log.info({ signal: sig }, 'shutting down gracefully');
        void finish(0);
      });
    }
    try {
      await daemon.start();
    } catch (err) {
      // A signal during start closes the pool under it (e.g. mid-authentication): that is the shutdown, not an error.
      if (signals > 0) return;
      throw err;
    }
    if (opts.exitWhenIdle) {
      await daemon.whenIdle();
      log.info('idle: exiting');
      await finish(0);
    }
  });

program.command('add-repo')
  .description('insert a repository row; that insert alone starts its processing')
  .argument('<owner/name>', 'the GitHub repository, e.g. pydata/xarray')
  .option('--git <path>', 'mine a local clone instead of the GitHub API (no quota needed)')
  .action((slug: string, opts: { git?: string }) => withDatabase(async (db) => {
    const gitPath = opts.git ? path.resolve(opts.git) : undefined;
    if (gitPath && !existsSync(gitPath)) throw new Error(`--git: no such directory: ${gitPath}`);
    const { id, created } = await addRepo(db.db, slug, { gitPath });
    console.log(`${created ? 'added' : 're-enabled'} ${slug}${gitPath ? ` from ${gitPath}` : ''} (repositories.id = ${id})`);
  }));

program.command('discover')
  .description('search GitHub now for repositories with an asv.conf.json (also runs on PERFMINE_DISCOVER_CRON)')
  .action(() => withDatabase(async (db) => {
    const { rows } = await sql<{ id: number }>`INSERT INTO discovery_runs (requested_by) VALUES ('cli') RETURNING id`.execute(db.db);
    console.log(`discovery run ${rows[0].id} queued; a running daemon picks it up (stage discover_repos)`);
  }));

program.command('status')
  .description('show the funnel: per stage pending, running, retrying, failed and done')
  .option('--json', 'print one JSON object')
  .option('--watch', 'redraw every second until interrupted')
  .option('--interval <ms>', 'refresh interval for --watch', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 100) throw new InvalidArgumentError('expected an integer >= 100');
    return n;
  }, 1000)
  .action((opts: { json?: boolean; watch?: boolean; interval: number }) => withDatabase(async (db) => {
    const render = async () => {
      const s = await readStatus(db.db);
      return opts.json ? JSON.stringify(s) : formatStatus(s);
    };
    if (!opts.watch) {
      console.log(await render());
      return;
    }
    let stop = false;
    process.once('SIGINT', () => { stop = true; });
    while (!stop) {
      const text = await render();
      process.stdout.write(opts.json ? `${text}\n` : `\x1b[2J\x1b[H${new Date().toISOString()}\n\n${text}\n`);
      await new Promise((r) => setTimeout(r, opts.interval));
    }
  }));

program.command('report')
  .description('write the funnel report: one self-contained HTML file (charts inline, no network) from the database')
  .option('--out <file>', 'where to write it', 'report.html')
  .option('--since <date>', 'only PRs that entered the database, and work done, on or after this date (YYYY-MM-DD, UTC)')
  .action((opts: { out: string; since?: string }) => withDatabase(async (db) => {
    const { parseSince, writeReport } = await import('./commands/report.js');
    const since = opts.since ? parseSince(opts.since) : undefined;
    const r = await writeReport(db.db, opts.out, { since });
    console.log(`wrote ${r.path} (${Math.round(r.bytes / 1024)} KiB): ${r.scraped} PRs scraped, ${r.published} published`);
  }));

/** Names of the built-in stages (for checking a stage named on the command line). */
function builtinStageNames(config: Config, log: Logger): string[] {
  return builtinStages(buildStageDeps(config, log)).map((s) => s.name);
}

/** Runs a command on one stage, refusing (exit 2) a name that is no stage. */
function withStage(stage: string, fn: (db: OpenDatabase) => Promise<void>): Promise<void> {
  return withDatabase(async (db, config, log) => {
    await requireStage(db.db, builtinStageNames(config, log), stage);
    await fn(db);
  });
}

const positiveInt = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what}: expected a whole number >= 0`);
  return n;
};

program.command('retry')
  .description('re-queue the rows a stage gave up on (failed after max attempts), all or those matching the filters')
  .argument('<stage>', 'stage name, as shown by `perfmine status`')
  .option('--id <n>', 'only the row with this id (of the stage\'s subject table, e.g. pull_requests.id)', positiveInt('--id'))
  .option('--error-like <text>', 'only rows whose last error contains this text (case-insensitive)')
  .action((stage: string, opts: { id?: number; errorLike?: string }) => withStage(stage, async (db) => {
    const n = await retryFailedWhere(db.db, stage, { id: opts.id, errorLike: opts.errorLike });
    console.log(`re-queued ${n} failed row(s) of ${stage}`);
  }));

program.command('pause')
  .description('stop a stage claiming rows, on every daemon (running attempts finish)')
  .argument('<stage>', 'stage name, as shown by `perfmine status`')
  .option('--note <text>', 'why (kept in stage_settings.note)')
  .action((stage: string, opts: { note?: string }) => withStage(stage, async (db) => {
    const { changed } = await setPaused(db.db, stage, true, opts.note);
    console.log(changed ? `paused ${stage}` : `${stage} was already paused`);
  }));

program.command('resume')
  .description('let a paused stage claim rows again')
  .argument('<stage>', 'stage name, as shown by `perfmine status`')
  .action((stage: string) => withStage(stage, async (db) => {
    const { changed } = await resumeStage(db.db, stage);
    console.log(changed ? `resumed ${stage}` : `${stage} was not paused`);
  }));

program.command('concurrency')
  .description('set how many rows of a stage each daemon runs at once (daemons apply it without a restart)')
  .argument('<stage>', 'stage name, as shown by `perfmine status`')
  .argument('<n>', 'a whole number >= 0, or "default" for the stage\'s declared concurrency')
  .action((stage: string, value: string) => {
    const n = value === 'default' ? null : Number(value);
    if (n !== null && (!Number.isInteger(n) || n < 0)) {
      process.stderr.write(`perfmine: concurrency: expected a whole number >= 0 or "default", got ${JSON.stringify(value)}\n`);
      process.exit(2);
    }
    return withStage(stage, async (db) => {
      await setConcurrency(db.db, stage, n);
      console.log(n === null ? `${stage}: concurrency back to its declared default` : `${stage}: concurrency ${n} per daemon`);
    });
  });

program.command('inspect')
  .description('everything the bus did to one pull request: its columns, leases, attempts and side-table rows')
  .argument('<owner/name#number>', 'the pull request, e.g. pydata/xarray#1234')
  .option('--json', 'print one JSON object')
  .action((ref: string, opts: { json?: boolean }) => withDatabase(async (db) => {
    const { owner, name, number } = parsePrRef(ref);
    const repo = await findRepository(db.db, owner, name);
    const found = repo ? await inspectPr(db.db, repo.id, number) : null;
    if (!found) throw new Error(repo ? `no pull request #${number} of ${repo.full_name} is stored` : `no repository ${owner}/${name} is stored`);
    console.log(opts.json ? JSON.stringify(found) : formatInspection(found));
  }));

program.command('rescrape')
  .description('scrape a repository\'s merged PRs again from the start of its window (stored PRs are kept and updated)')
  .argument('<owner/name>', 'the repository, e.g. pydata/xarray')
  .action((slug: string) => withDatabase(async (db) => {
    const { owner, name } = parseRepoSlug(slug);
    const repo = await findRepository(db.db, owner, name);
    if (!repo) throw new Error(`no repository ${owner}/${name} is stored (add it with \`perfmine add-repo\`)`);
    await rescrape(db.db, repo.id);
    console.log(`${repo.full_name}: scrape cursor reset; stage scrape_commits runs it again`);
  }));

program.command('rejudge')
  .description('re-request the judge stage (classify_prs) for the PRs that match every filter given (all candidates when none)')
  .option('--prompt-changed', 'only PRs judged with other prompts than the ones in use now')
  .option('--repo <owner/name>', 'only this repository\'s PRs')
  .option('--since <date>', 'only PRs merged on or after this date (ISO 8601, e.g. 2024-01-01)', (v) => {
    const d = new Date(v);
    if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) throw new InvalidArgumentError('expected an ISO 8601 date such as 2024-01-01');
    return d;
  })
  .action((opts: { promptChanged?: boolean; repo?: string; since?: Date }) => withDatabase(async (db) => {
    let repositoryId: number | undefined;
    if (opts.repo) {
      const { owner, name } = parseRepoSlug(opts.repo);
      const repo = await findRepository(db.db, owner, name);
      if (!repo) throw new Error(`no repository ${owner}/${name} is stored`);
      repositoryId = repo.id;
    }
    const n = await rejudge(db.db, { promptChanged: opts.promptChanged, repositoryId, since: opts.since });
    console.log(`re-requested the judge for ${n} pull request(s)`);
  }));

program.command('standin')
  .description('run a stand-in on 127.0.0.1 for offline use: the GitHub API (point PERFMINE_GITHUB_API_URL at it), an OpenAI-compatible LLM (OPENAI_BASE_URL), a package index (PERFMINE_PYTHON_INDEX_URL) or the Hugging Face Hub (PERFMINE_HF_HUB_URL)')
  .argument('<service>', 'which service: github | llm | index | hub')
  .option('--port <n>', 'port to listen on (default: github 8787, llm 8788, index 8789, hub 8790)', (v) => Number(v))
  .option('--data <file>', 'github: PRs as JSONL (the shape of data/xarray-prs.jsonl)', DEFAULT_STANDIN_DATA)
  .option('--repo <owner/name>', 'github: serve the PRs as this repository (default: the file\'s own)')
  .option('--api-key <key>', 'llm: require this API key (default: none needed)')
  .option('--latency-ms <ms>', 'llm: wait this long before every answer', (v) => Number(v), 0)
  .option('--wheels <dir>', 'index: a directory of wheels (upload times from its index-manifest.json, else the files\' mtimes)')
  .option('--token <hf_...>', 'hub: the token that may write (default: PERFMINE_HF_TOKEN)')
  .action(async (service: string, opts: { port?: number; data: string; repo?: string; apiKey?: string; latencyMs: number; wheels?: string; token?: string }) => {
    if (service === 'hub') {
      const token = opts.token ?? process.env.PERFMINE_HF_TOKEN;
      if (!token?.startsWith('hf_')) throw new Error('standin hub needs a token starting with hf_ (--token or PERFMINE_HF_TOKEN)');
      const { HubStandin } = await import('./standins/hub/server.js');
      const standin = await HubStandin.start({ port: opts.port ?? 8790, tokens: [token] });
      console.log(`Hugging Face Hub stand-in on ${standin.url} (in memory; writes need the token given)`);
      console.log(`  PERFMINE_PUBLISH_TARGETS=local,hub PERFMINE_HF_HUB_URL=${standin.url} PERFMINE_HF_REPO=perfmine/tasks PERFMINE_HF_TOKEN=... npm start`);
      process.once('SIGINT', () => void standin.close().then(() => process.exit(0)));
      process.once('SIGTERM', () => void standin.close().then(() => process.exit(0)));
      return;
    }
    if (service === 'llm') {
      const { LlmStandin } = await import('./standins/llm/server.js');
      const standin = await LlmStandin.start({ port: opts.port ?? 8788, apiKey: opts.apiKey, latencyMs: opts.latencyMs });
      console.log(`LLM stand-in on ${standin.url}: deterministic answers to classify, categorize and extract prompts`);
      console.log(`  OPENAI_BASE_URL=${standin.url} PERFMINE_LLM_MODEL=standin-small${opts.apiKey ? ' OPENAI_API_KEY=...' : ''} npm start`);
      process.once('SIGINT', () => void standin.close().then(() => process.exit(0)));
      process.once('SIGTERM', () => void standin.close().then(() => process.exit(0)));
      return;
    }
    if (service === 'index') {
      if (!opts.wheels) throw new Error('standin index needs --wheels DIR');
      const wheels = path.resolve(opts.wheels);
      if (!existsSync(wheels)) throw new Error(`--wheels: no such directory: ${wheels}`);
      const { IndexStandin } = await import('./standins/index/server.js');
      const standin = await IndexStandin.start({ port: opts.port ?? 8789, wheelsDir: wheels });
      console.log(`package-index stand-in on ${standin.url}: ${standin.catalog.projects().length} projects from ${wheels}`);
      console.log(`  PERFMINE_PYTHON_INDEX_URL=${standin.simpleUrl} npm start`);
      process.once('SIGINT', () => void standin.close().then(() => process.exit(0)));
      process.once('SIGTERM', () => void standin.close().then(() => process.exit(0)));
      return;
    }
    if (service !== 'github') throw new Error(`unknown stand-in: ${service} (known: github, llm, index, hub)`);
    const { GitHubStandin } = await import('./standins/github/server.js');
    const standin = await GitHubStandin.start({ port: opts.port ?? 8787 });
    const n = standin.loadJsonl(opts.data, opts.repo ? { repository: opts.repo } : undefined);
    const repos = new Set(loadRepoNames(opts.data, opts.repo));
    for (const full of repos) {
      const [owner, name] = full.split('/');
      standin.addRepo({ owner, name, stars: 1000, files: { 'asv_bench/asv.conf.json': '{"benchmark_dir": "benchmarks"}' } });
    }
    console.log(`GitHub stand-in on ${standin.url}: ${n} PRs of ${[...repos].join(', ')}`);
    console.log(`  PERFMINE_GITHUB_API_URL=${standin.url} PERFMINE_GITHUB_GRAPHQL_MIN_INTERVAL_MS=0 npm start`);
    process.once('SIGINT', () => void standin.close().then(() => process.exit(0)));
    process.once('SIGTERM', () => void standin.close().then(() => process.exit(0)));
  });

program.command('demo')
  .description('the offline demo: GitHub and LLM stand-ins with real xarray history and the daemon, in a new database of its own')
  .option('--prs <n>', 'how many of the shipped xarray PRs to serve', (v) => Number(v), 300)
  .option('--exit-when-idle', 'exit once the funnel is idle instead of leaving the daemon running')
  .option('--json', 'no live display; print the final funnel and a summary as one JSON object')
  .option('--keep', 'keep the demo\'s database afterwards (by default it is dropped when the demo ends)')
  .action(async (opts: { prs: number; exitWhenIdle?: boolean; json?: boolean; keep?: boolean }) => {
    const { config, log } = settings();
    const { runDemo } = await import('./commands/demo.js');
    const summary = await runDemo(config, log, { prs: opts.prs, exitWhenIdle: !!opts.exitWhenIdle, json: !!opts.json, keep: !!opts.keep, refreshMs: 500 });
    if (opts.json) console.log(JSON.stringify(summary));
    process.exit(0);
  });

const stats = program.command('stats').description('statistics of the speedup gate');
stats.command('compare')
  .description('compare two JSON arrays of run times (A = base, B = patched) with asv\'s statistics')
  .argument('<a.json>', 'samples of the base, seconds')
  .argument('<b.json>', 'samples of the patched tree, seconds')
  .option('--p-threshold <p>', 'significance level', (v) => Number(v), 0.002)
  .option('--factor <f>', 'improvement factor of asv\'s rule', (v) => Number(v), 1.1)
  .option('--margin <m>', 'the gate\'s margin: a change counts when significant by at least this factor', (v) => Number(v), 1.05)
  .action(async (aFile: string, bFile: string, opts: { pThreshold: number; factor: number; margin: number }) => {
    const { compare, gate } = await import('./domain/stats.js');
    const read = (f: string) => {
      const v: unknown = JSON.parse(readFileSync(f, 'utf8'));
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new Error(`${f}: expected a JSON array of numbers`);
      return v as number[];
    };
    const [a, b] = [read(aFile), read(bFile)];
    console.log(JSON.stringify({ ...compare(a, b, { pThreshold: opts.pThreshold, factor: opts.factor }), gate: gate(a, b, { pThreshold: opts.pThreshold, margin: opts.margin }) }));
  });

program.command('measure')
  .description('time a repository\'s ASV benchmarks on two commits, interleaved, and judge the speedup')
  .requiredOption('--repo <path>', 'a local git clone with an asv.conf.json')
  .requiredOption('--base <rev>', 'the commit before the change')
  .requiredOption('--head <rev>', 'the commit with the change')
  .option('--bench <regex>', 'only benchmarks whose full name matches')
  .option('--rounds <n>', 'interleaved A-B-B-A rounds (samples per side = rounds x samples per round)', (v) => Number(v), 4)
  .option('--samples-per-round <n>', 'samples per process', (v) => Number(v), 10)
  .option('--python <path>', 'the interpreter of the environment to measure in', 'python3')
  .option('--config <path>', 'asv.conf.json relative to the repository root (default: found)')
  .addOption(new Option('--launch-method <method>', 'forkserver: each measurement is a fork of a per-tree process that imported the suite (asv\'s default on POSIX); spawn: a new interpreter each time')
    .choices(['auto', 'forkserver', 'spawn']).default('auto'))
  .addOption(new Option('--build <when>', 'run `setup.py build_ext --inplace` in each exported tree first (offline, with --python): auto when setup.py declares extensions')
    .choices(['auto', 'never', 'always']).default('auto'))
  .option('--no-confirm', 'do not re-measure the benchmarks the first rounds call changed (by default a change must show again in as many fresh rounds)')
  .addOption(new Option('--mode <mode>', 'runner: perfmine\'s runner; asv: real asv installed in the --python environment (on the checked-out trees)')
    .choices(['runner', 'asv']).default('runner'))
  .option('--json', 'print one JSON object instead of the table')
  .action(async (opts: { repo: string; base: string; head: string; bench?: string; rounds: number; samplesPerRound: number; python: string; config?: string; launchMethod: 'auto' | 'forkserver' | 'spawn'; build: 'auto' | 'never' | 'always'; confirm: boolean; mode: 'runner' | 'asv'; json?: boolean }) => {
    const { measure, formatReport } = await import('./measure/measure.js');
    // Ctrl-C or SIGTERM: stop the runner and every benchmark process, remove the trees, then exit.
    const stop = new AbortController();
    const interrupt = (sig: NodeJS.Signals) => {
      if (stop.signal.aborted) process.exit(130); // a second signal: now (the exit hook still kills the children)
      process.stderr.write(`perfmine: ${sig}: stopping the measurement\n`);
      stop.abort();
    };
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
    try {
      const report = await measure({
        repo: path.resolve(opts.repo), base: opts.base, head: opts.head, bench: opts.bench, rounds: opts.rounds,
        samplesPerRound: opts.samplesPerRound, python: opts.python, config: opts.config, launchMethod: opts.launchMethod, build: opts.build,
        confirm: opts.confirm, mode: opts.mode, signal: stop.signal,
        onProgress: opts.json ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      console.log(opts.json ? JSON.stringify(report) : formatReport(report));
    } catch (err) {
      if (!stop.signal.aborted) throw err;
      process.stderr.write('perfmine: measurement stopped; no process of it is left running\n');
      process.exit(130);
    }
  });

const images = program.command('images').description('the docker executor\'s images');
images.command('base')
  .description('make the offline base image (Debian packages: debootstrap into a directory, then docker import), or reuse it when present')
  .option('--python <version>', 'the Python minor version (offline: 3.11, Debian bookworm\'s)', '3.11')
  .option('--tag <name:tag>', 'the image name (default: PERFMINE_DOCKER_BASE_IMAGE for the version, e.g. perfmine-base:py3.11)')
  .option('--force', 'make it again even when it exists')
  .option('--mirror <url>', 'the Debian mirror (default: the one apt uses here)')
  .action(async (opts: { python: string; tag?: string; force?: boolean; mirror?: string }) => {
    const { config } = settings();
    const { imagesBase } = await import('./commands/images.js');
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    const made = await imagesBase({
      python: opts.python, tag: opts.tag, force: opts.force, mirror: opts.mirror, template: config.PERFMINE_DOCKER_BASE_IMAGE,
      workDir: config.PERFMINE_DATA_DIR, signal: stop.signal, onProgress: (line) => process.stderr.write(`${line}\n`),
    });
    console.log(JSON.stringify(made));
  });

program.command('config')
  .description('print the effective configuration (secrets hidden)')
  .action(() => {
    const { config } = settings();
    console.log(JSON.stringify(describeConfig(config), null, 2));
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`perfmine: ${scrubSecrets(err.message)}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
