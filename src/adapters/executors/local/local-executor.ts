/**
 * The local executor (PERFMINE_EXECUTOR=local, the default): environments on
 * this machine, no Docker needed.
 *
 * build(): an interpreter of the PR's Python minor version (interpreters.ts),
 * the shared virtualenv of its pins (shared-env.ts), and a build directory of
 * its own under PERFMINE_DATA_DIR/envs/builds:
 *   src/    a checkout of the base commit (the store never collects it)
 *   venv/   the build's layer over the shared environment (layer.ts)
 *   home/   HOME of everything run there; tmp/ its TMPDIR and exec scratch
 *   build.sh, build.log, perfmine-build.json (what it was built from)
 * The build script runs at the checkout root with the layer first on PATH;
 * it builds the package in place. Its environment is the allow-listed one
 * (no token, key or database URL), pip's configuration files are off and its
 * index is the configured one; past the time limit everything it started is
 * killed (runProcess).
 *
 * exec(): a command in that directory: the layer first on PATH, the checkout
 * as working directory, the same allow-listed environment, a time limit,
 * pinned with taskset when `cpus` is given and taskset is there.
 *
 * The ref stage 7 runs in is `local:<build>/venv#<build>/src`. This is not a
 * sandbox: the scripts run as perfmine's user on this machine (Docker is the
 * executor that isolates).
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ServiceDownError } from '../../../bus/stage.js';
import type { RepoStore } from '../../git/repo-store.js';
import { childEnv } from '../../process/child-env.js';
import { runProcess } from '../../process/run-process.js';
import { INDEX_GROUP } from '../../python/resolver.js';
import {
  EnvironmentGoneError, type BuildRequest, type BuildResult, type EnvironmentRef, type ExecOptions, type ExecResult, type ExecSession, type Executor,
  type SessionOptions,
} from '../executor.js';
import { InterpreterFinder } from './interpreters.js';
import { createLayer } from './layer.js';
import { SharedEnvironments } from './shared-env.js';
import { openLocalSession } from './session.js';

export interface LocalExecutorOptions {
  /** PERFMINE_DATA_DIR: environments go to envs/. */
  dataDir: string;
  repos: RepoStore;
  /** Where interpreters are looked for (PERFMINE_PYTHON_PATHS). */
  pythonPaths: readonly string[];
  /** Characters of output kept as the log tail (default 16 KiB). */
  logTailChars?: number;
}

const BUILD_INFO = 'perfmine-build.json';
const REF = /^local:(.+)#(.+)$/;

export class LocalExecutor implements Executor {
  readonly kind = 'local' as const;
  private readonly interpreters: InterpreterFinder;
  private readonly shared: SharedEnvironments;
  private readonly buildsRoot: string;
  private readonly tailChars: number;

  constructor(private readonly opts: LocalExecutorOptions) {
    this.interpreters = new InterpreterFinder(opts.pythonPaths);
    this.shared = new SharedEnvironments(path.join(opts.dataDir, 'envs', 'python'), path.join(opts.dataDir, 'pip-cache'));
    this.buildsRoot = path.resolve(opts.dataDir, 'envs', 'builds');
    this.tailChars = opts.logTailChars ?? 16 * 1024;
  }

  async available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    for (const tool of ['bash', 'git']) {
      if (!onPath(tool)) return { ok: false, reason: `the local executor needs ${tool} on PATH` };
    }
    return { ok: true };
  }

  async build(req: BuildRequest, signal: AbortSignal): Promise<BuildResult> {
    const started = performance.now();
    const deadline = started + req.timeoutMs;
    const remaining = () => Math.max(1, Math.round(deadline - performance.now()));
    const log: string[] = [];
    let logSize = 0;
    const onLine = (line: string) => {
      log.push(line);
      logSize += line.length + 1;
      while (logSize > this.tailChars * 4 && log.length > 1) logSize -= log.shift()!.length + 1;
    };
    const tail = () => {
      const text = log.join('\n');
      return text.length > this.tailChars ? text.slice(-this.tailChars) : text;
    };
    const failed = (failedStep: BuildResult['failedStep'], reason: string): BuildResult => ({
      ok: false, reason, failedStep, logTail: tail(), durationMs: Math.round(performance.now() - started), env: null,
    });

    const lookup = await this.interpreters.find(req.python, signal);
    if (!lookup.found) {
      const why = lookup.rejected.length ? `; rejected: ${lookup.rejected.join('; ')}` : '';
      return failed('interpreter', `no interpreter for Python ${req.python} (looked in ${lookup.looked.join(', ') || 'nothing'}${why}; PERFMINE_PYTHON_PATHS says where to look)`);
    }
    const interpreter = lookup.found;
    onLine(`# interpreter: ${interpreter.path} (Python ${interpreter.version})`);
    const shared = await this.shared.ensure(interpreter, req.requirements, req.indexUrl, { timeoutMs: remaining(), signal, onLine });
    if (!shared.ok) {
      if (shared.indexDown) throw new ServiceDownError(INDEX_GROUP, `package index ${req.indexUrl} failed while installing: ${shared.reason.slice(0, 500)}`);
      if (shared.timedOut) return failed('timeout', `timed out after ${Math.round(req.timeoutMs / 1000)} s while installing dependencies`);
      return failed('dependencies', `installing dependencies failed: ${shared.reason}`);
    }

    const dir = path.join(this.buildsRoot, `${safeName(req.key)}-${randomBytes(4).toString('hex')}`);
    const src = path.join(dir, 'src');
    const venv = path.join(dir, 'venv');
    let keep = false;
    try {
      await mkdir(path.join(dir, 'home'), { recursive: true });
      await mkdir(path.join(dir, 'tmp'), { recursive: true });
      try {
        await this.opts.repos.checkoutInto(req.repo, req.commit, src, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        return failed('checkout', `checkout of ${req.commit} failed: ${(err as Error).message.slice(0, 500)}`);
      }
      await createLayer(interpreter, shared.env, venv, signal);
      const identity = {
        executor: 'local', key: req.key, repository: `${req.repo.owner}/${req.repo.name}`, commit: req.commit,
        python: interpreter.realPath, python_version: interpreter.version, shared_env: shared.env.key,
        pins: [...req.requirements].sort(), index_url: req.indexUrl, script: req.script,
      };
      await writeFile(path.join(dir, BUILD_INFO), `${JSON.stringify(identity, null, 1)}\n`);
      await writeFile(path.join(dir, 'build.sh'), req.script);
      onLine(`# build script (${src})`);
      const r = await runProcess('bash', ['--noprofile', '--norc', path.join(dir, 'build.sh')], {
        cwd: src, env: this.environment(dir, req.indexUrl), timeoutMs: remaining(), signal, onLine,
        maxOutputBytes: 64 * 1024,
      });
      await writeFile(path.join(dir, 'build.log'), `${log.join('\n')}\n`).catch(() => undefined);
      if (r.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('build aborted');
      if (r.timedOut) return failed('timeout', `timed out after ${Math.round(req.timeoutMs / 1000)} s (install and build script); every process it started was killed`);
      if (r.code !== 0) return failed('script', r.code === null ? `build script killed by ${r.signal}` : `build script exited ${r.code}`);
      keep = true;
      const digest = createHash('sha256').update(JSON.stringify(identity)).digest('hex');
      return {
        ok: true, reason: null, logTail: tail(), durationMs: Math.round(performance.now() - started),
        env: { executor: 'local', ref: `local:${venv}#${src}`, digest: `sha256:${digest}`, python: path.join(venv, 'bin', 'python'), workdir: src },
      };
    } finally {
      if (!keep) await rm(dir, { recursive: true, force: true });
    }
  }

  async exec(env: EnvironmentRef, argv: string[], opts: ExecOptions): Promise<ExecResult> {
    const { dir, src } = this.locate(env);
    const scratch = await mkdtemp(path.join(dir, 'tmp', 'exec-'));
    const started = performance.now();
    try {
      for (const [name, content] of Object.entries(opts.files ?? {})) {
        const file = confined(scratch, name);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, content);
      }
      const cwd = opts.cwd ? confined(src, opts.cwd) : src;
      let [cmd, ...args] = argv;
      if (opts.cpus && onPath('taskset')) [cmd, args] = ['taskset', ['-c', opts.cpus, cmd, ...args]];
      const info = readBuildInfo(dir);
      const environment = this.environment(dir, info?.index_url ?? null, { ...(opts.env ?? {}), PERFMINE_SCRATCH: scratch });
      let r;
      try {
        r = await runProcess(cmd, args, {
          cwd, env: environment, timeoutMs: opts.timeoutMs, signal: opts.signal, onLine: opts.onLine, maxOutputBytes: opts.maxOutputBytes,
        });
      } catch (err) {
        return { code: 127, stdout: '', stderr: (err as Error).message, timedOut: false, aborted: false, durationMs: Math.round(performance.now() - started) };
      }
      return { code: r.code, stdout: r.stdoutTail, stderr: r.stderrTail, timedOut: r.timedOut, aborted: r.aborted, durationMs: r.durationMs };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async openSession(env: EnvironmentRef, opts: SessionOptions): Promise<ExecSession> {
    const { dir } = this.locate(env);
    const info = readBuildInfo(dir);
    return openLocalSession({
      env, root: path.resolve(this.opts.dataDir, 'sessions'),
      environment: (extra) => this.environment(dir, info?.index_url ?? null, extra),
      taskset: onPath('taskset') ? 'taskset' : null,
    }, opts);
  }

  async discard(env: EnvironmentRef): Promise<void> {
    const { dir } = this.locate(env);
    await rm(dir, { recursive: true, force: true });
  }

  /** The build directory of a ref this executor made (never anything outside its builds). */
  private locate(env: EnvironmentRef): { dir: string; venv: string; src: string } {
    const m = REF.exec(env.ref);
    if (env.executor !== 'local' || !m) throw new Error(`not a local environment: ${env.ref}`);
    const [venv, src] = [path.resolve(m[1]), path.resolve(m[2])];
    const dir = path.dirname(venv);
    if (path.dirname(dir) !== this.buildsRoot || path.dirname(src) !== dir) throw new Error(`${env.ref} is not an environment under ${this.buildsRoot}`);
    if (!existsSync(venv) || !existsSync(src)) throw new EnvironmentGoneError(env.ref, `no ${existsSync(venv) ? src : venv}`);
    return { dir, venv, src };
  }

  /** Everything run in a build directory gets this: allow-listed, the layer first, its own HOME and TMPDIR, no pip configuration. */
  private environment(dir: string, indexUrl: string | null, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const venv = path.join(dir, 'venv');
    const base = childEnv();
    return childEnv({
      PATH: `${path.join(venv, 'bin')}:${base.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
      VIRTUAL_ENV: venv,
      HOME: path.join(dir, 'home'),
      TMPDIR: path.join(dir, 'tmp'),
      PYTHONNOUSERSITE: '1',
      PIP_CONFIG_FILE: '/dev/null',
      PIP_NO_INPUT: '1',
      PIP_DISABLE_PIP_VERSION_CHECK: '1',
      // The index without any credentials in its URL: scripts install from it, they never see a password.
      ...(indexUrl ? { PIP_INDEX_URL: withoutCredentials(indexUrl) } : {}),
      ...extra,
    });
  }
}

function readBuildInfo(dir: string): { index_url?: string } | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, BUILD_INFO), 'utf8')) as { index_url?: string };
  } catch {
    return null;
  }
}

function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

function safeName(key: string): string {
  return key.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
}

/** `name` under `dir`, refusing a way out (absolute paths, `..`). */
function confined(dir: string, name: string): string {
  const full = path.resolve(dir, name);
  if (full !== dir && !full.startsWith(`${dir}${path.sep}`)) throw new Error(`${name} leads outside ${dir}`);
  return full;
}

function onPath(cmd: string): boolean {
  return (childEnv().PATH ?? '').split(':').filter(Boolean).some((d) => {
    try {
      accessSync(path.join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
