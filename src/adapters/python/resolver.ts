/**
 * Python resolvers behind one small interface: pip's own resolver (any pip
 * >= 22.2, e.g. Debian's 23.0.1; the cutoff comes from the cutoff proxy) and
 * `uv pip compile` (its own `--exclude-newer`), used when uv is on PATH.
 * Every call runs through runProcess with the allow-listed environment and
 * `--isolated`, so no pip configuration or PIP_* variable of this machine
 * points it elsewhere.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { reportServiceOk } from '../../bus/attempt-scope.js';
import { ServiceDownError } from '../../bus/stage.js';
import { childEnv } from '../process/child-env.js';
import { abortError, runProcess, type ProcessResult } from '../process/run-process.js';
import type { CutoffProxy } from './cutoff-proxy.js';

/** The rate-limit / breaker group of the package index. */
export const INDEX_GROUP = 'python-index';

export interface ResolveRequest {
  /** PEP 508 lines, as declared. */
  requirements: readonly string[];
  /** X.Y */
  pythonVersion: string;
  /** Files uploaded at or after this are invisible; null = the index as it is now. */
  cutoff: Date | null;
  signal?: AbortSignal;
}

export interface Pin {
  /** As the index spells it. */
  name: string;
  version: string;
  sha256: string | null;
}

/**
 * The cutoffs for which this resolution is the same: no file of any project
 * the resolver looked at was uploaded in between. `after` exclusive, `until`
 * inclusive; null ends are open (known only for pip behind the cutoff proxy).
 */
export interface CutoffWindow { after: Date | null; until: Date | null }

export type ResolveResult =
  | { ok: true; pins: Pin[]; window?: CutoffWindow }
  /** `cutoff-impossible`: the index gives no upload times; `unresolvable`: the resolver's own message in `reason`. */
  | { ok: false; kind: 'unresolvable' | 'cutoff-impossible'; reason: string };

export interface PythonResolver {
  readonly name: 'pip' | 'uv';
  /** The index it resolves against (part of the memo key). */
  readonly indexUrl: string;
  version(signal?: AbortSignal): Promise<string>;
  resolve(req: ResolveRequest): Promise<ResolveResult>;
}

/** What pip and uv print when the network, not the requirement, failed. */
export const NETWORK_FAILURE = /HTTP error 5\d\d|Max retries exceeded|Connection refused|ConnectionError|Read timed out|Failed to establish a new connection|RemoteDisconnected|error sending request|connection closed before message completed|operation timed out/i;

/** Last lines of the resolver's errors: its own reason, without pip's generic hints. */
export function resolverMessage(stderr: string, stdout = ''): string {
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const errors = lines.filter((l) => /^(ERROR|error|  ×|×|  ╰─▶|\s+Because|\s+And because|\s+The conflict is caused by|\s+\S+ \S+ depends on|\s+The user requested)/.test(l) || /^\s{4}/.test(l));
  const chosen = (errors.length ? errors : lines).filter((l) => !/dealing-with-dependency-conflicts|^ERROR: ResolutionImpossible/.test(l));
  const text = (chosen.length ? chosen : lines).join('\n').trim();
  return text.length > 4000 ? `${text.slice(0, 4000)}...` : text || '(no message)';
}

interface CommonOptions {
  indexUrl: string;
  /** Per resolution. */
  timeoutMs: number;
}

export interface PipResolverOptions extends CommonOptions {
  /** The interpreter whose pip resolves (its own version does not matter: --python-version sets the target). */
  python: string;
  proxy: CutoffProxy;
  /** pip's download cache (shared by resolutions); null: none. */
  cacheDir: string | null;
}

export class PipResolver implements PythonResolver {
  readonly name = 'pip' as const;
  readonly indexUrl: string;
  private cachedVersion: Promise<string> | null = null;

  constructor(private readonly opts: PipResolverOptions) {
    this.indexUrl = opts.indexUrl;
  }

  version(signal?: AbortSignal): Promise<string> {
    this.cachedVersion ??= (async () => {
      const r = await runProcess(this.opts.python, ['-m', 'pip', '--version', '--isolated'], { env: childEnv(), timeoutMs: 60_000, signal });
      const m = /^pip (\S+)/.exec(r.stdoutTail.trim());
      if (r.code !== 0 || !m) throw new Error(`${this.opts.python} -m pip --version failed: ${(r.stderrTail || r.stdoutTail).trim().slice(-300)}`);
      return m[1];
    })();
    this.cachedVersion.catch(() => { this.cachedVersion = null; });
    return this.cachedVersion;
  }

  async resolve(req: ResolveRequest): Promise<ResolveResult> {
    if (req.requirements.length === 0) return { ok: true, pins: [] };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'perfmine-pip-'));
    const session = this.opts.proxy.open(req.cutoff);
    try {
      await writeFile(path.join(dir, 'requirements.txt'), `${req.requirements.join('\n')}\n`);
      const report = path.join(dir, 'report.json');
      const args = [
        '-m', 'pip', 'install', '--isolated', '--dry-run', '--ignore-installed', '--report', report,
        // pip 23.0 allows --python-version only with --only-binary=:all: and --target (nothing is written: --dry-run).
        '--only-binary=:all:', '--python-version', req.pythonVersion, '--target', path.join(dir, 'target'),
        '--index-url', session.indexUrl, '--no-input', '--progress-bar', 'off', '--disable-pip-version-check', '--no-color',
        '--retries', '2', '--timeout', String(Math.max(5, Math.round(this.opts.timeoutMs / 10_000))),
        ...(this.opts.cacheDir ? ['--cache-dir', this.opts.cacheDir] : ['--no-cache-dir']),
        '-r', path.join(dir, 'requirements.txt'),
      ];
      const r = await runProcess(this.opts.python, args, { cwd: dir, env: childEnv(), timeoutMs: this.opts.timeoutMs, signal: req.signal, maxOutputBytes: 256 * 1024 });
      checkRun(r, 'pip', this.opts.timeoutMs, req.signal);
      if (session.upstreamFailures.length) {
        throw new ServiceDownError(INDEX_GROUP, `package index ${this.indexUrl} failed: ${session.upstreamFailures.slice(0, 3).join('; ')}`);
      }
      if (r.code === 0) {
        reportServiceOk(INDEX_GROUP);
        const pins = pinsFromReport(JSON.parse(await readFile(report, 'utf8')));
        if (!req.cutoff) return { ok: true, pins };
        // Nothing hidden yet: the same holds up to now, when the pages were read.
        const until = new Date(session.hiddenMin ?? Date.now());
        return { ok: true, pins, window: { after: session.visibleMax === null ? null : new Date(session.visibleMax), until } };
      }
      const reason = resolverMessage(r.stderrTail, r.stdoutTail);
      if (req.cutoff && session.missingUploadTimes.size) {
        return { ok: false, kind: 'cutoff-impossible', reason: `the index gives no upload times (${[...session.missingUploadTimes].slice(0, 5).join(', ')}): a cutoff is impossible` };
      }
      if (NETWORK_FAILURE.test(reason)) throw new ServiceDownError(INDEX_GROUP, `package index ${this.indexUrl} failed: ${reason.slice(0, 500)}`);
      reportServiceOk(INDEX_GROUP); // it answered: the requirements are what cannot be met
      return { ok: false, kind: 'unresolvable', reason };
    } finally {
      session.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
}

interface PipReport {
  install?: Array<{
    metadata?: { name?: string; version?: string };
    download_info?: { archive_info?: { hash?: string; hashes?: Record<string, string> } };
  }>;
}

export function pinsFromReport(report: PipReport): Pin[] {
  return (report.install ?? []).map((item) => {
    const info = item.download_info?.archive_info;
    const sha256 = info?.hashes?.sha256 ?? (info?.hash?.startsWith('sha256=') ? info.hash.slice(7) : null);
    return { name: String(item.metadata?.name), version: String(item.metadata?.version), sha256 };
  });
}

export interface UvResolverOptions extends CommonOptions {
  /** The uv executable. */
  uv: string;
}

/** `uv pip compile` (requirements on stdin, the compiled file on stdout), with uv's own cutoff. */
export class UvResolver implements PythonResolver {
  readonly name = 'uv' as const;
  readonly indexUrl: string;
  private cachedVersion: Promise<string> | null = null;

  constructor(private readonly opts: UvResolverOptions) {
    this.indexUrl = opts.indexUrl;
  }

  version(signal?: AbortSignal): Promise<string> {
    this.cachedVersion ??= (async () => {
      const r = await runProcess(this.opts.uv, ['--version'], { env: childEnv(), timeoutMs: 60_000, signal });
      const m = /^uv (\S+)/.exec(r.stdoutTail.trim());
      if (r.code !== 0 || !m) throw new Error(`${this.opts.uv} --version failed: ${(r.stderrTail || r.stdoutTail).trim().slice(-300)}`);
      return m[1];
    })();
    this.cachedVersion.catch(() => { this.cachedVersion = null; });
    return this.cachedVersion;
  }

  async resolve(req: ResolveRequest): Promise<ResolveResult> {
    if (req.requirements.length === 0) return { ok: true, pins: [] };
    const args = [
      'pip', 'compile', '-', '--python-version', req.pythonVersion, '--index-url', this.indexUrl,
      '--generate-hashes', '--no-header', '--no-annotate', '--quiet',
      ...(req.cutoff ? ['--exclude-newer', req.cutoff.toISOString()] : []),
    ];
    const r = await runProcess(this.opts.uv, args, {
      env: childEnv(), input: `${req.requirements.join('\n')}\n`, timeoutMs: this.opts.timeoutMs, signal: req.signal, maxOutputBytes: 1024 * 1024,
    });
    checkRun(r, 'uv', this.opts.timeoutMs, req.signal);
    if (r.code === 0) {
      reportServiceOk(INDEX_GROUP);
      return { ok: true, pins: pinsFromCompiled(r.stdoutTail) };
    }
    const reason = resolverMessage(r.stderrTail);
    if (NETWORK_FAILURE.test(reason)) throw new ServiceDownError(INDEX_GROUP, `package index ${this.indexUrl} failed: ${reason.slice(0, 500)}`);
    reportServiceOk(INDEX_GROUP);
    return { ok: false, kind: 'unresolvable', reason };
  }
}

/** A compiled requirements file (`name==version \` then `--hash=sha256:...` lines) as pins. */
export function pinsFromCompiled(text: string): Pin[] {
  const pins: Pin[] = [];
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)/.exec(line);
    if (!m) continue;
    const hash = /--hash=sha256:([0-9a-f]{64})/.exec(line);
    pins.push({ name: m[1], version: m[2], sha256: hash ? hash[1] : null });
  }
  return pins;
}

function checkRun(r: ProcessResult, what: string, timeoutMs: number, signal?: AbortSignal): void {
  if (r.aborted) throw abortError(signal);
  if (r.timedOut) throw new Error(`${what} did not finish resolving within ${Math.round(timeoutMs / 1000)} s`);
}
