/**
 * Executors: where a PR's environment is built and where code runs in it.
 * Two adapters implement this one interface: `local` (a virtualenv per
 * pinned dependency set plus a checkout per PR, on this machine) and
 * `docker` (base / repository / PR image layers, known by digest). Stage 6
 * builds and verifies an environment; stage 7 runs the benchmarks in exactly
 * that environment (same directory, or same image digest): nothing is rebuilt
 * after verification.
 *
 * Code run here comes from strangers' repositories and from an LLM: every
 * process gets an allow-listed environment (no token, key or database URL), a
 * working directory of its own, a time limit after which everything it
 * started is killed, and (docker) no host mounts and no network.
 */
import type { Db } from '../../db/connect.js';
import type { RepoRef } from '../git/repo-store.js';

export type ExecutorKind = 'local' | 'docker';

/** What an environment is built from: the PR's base commit, its pinned dependencies, a build script. */
export interface BuildRequest {
  /** A stable, filesystem- and tag-safe key of this build (names and tags derive from it). */
  key: string;
  repo: RepoRef;
  /** The commit the environment is built at (the PR's base commit). */
  commit: string;
  /** Python minor version, e.g. '3.11' (stage 4's choice). */
  python: string;
  /** Pinned requirement lines (stage 4's env_payload), installed from `indexUrl`. */
  requirements: string[];
  indexUrl: string;
  /** A bash script run at the checkout's root, with the environment's interpreter first on PATH; builds the package in place. */
  script: string;
  /** Install plus script: past this everything started is killed and the build fails. */
  timeoutMs: number;
}

/** The environment a ref names no longer exists (its image or build directory was removed): rebuild it, the executor is fine. */
export class EnvironmentGoneError extends Error {
  constructor(readonly ref: string, detail: string) {
    super(`the environment ${ref} is gone: ${detail}`);
    this.name = 'EnvironmentGoneError';
  }
}

/** A built environment. `ref` is what `pull_requests.container_name` stores; `digest` identifies its exact content. */
export interface EnvironmentRef {
  executor: ExecutorKind;
  /** local: `local:<env dir>#<checkout dir>`; docker: `<image>@<digest>`. */
  ref: string;
  /** docker: the image id (sha256:…); local: a hash of the environment's identity (interpreter, pins, commit, script). */
  digest: string;
  /** The interpreter inside the environment. */
  python: string;
  /** The checkout root inside the environment (where the package was built in place). */
  workdir: string;
}

export interface BuildResult {
  ok: boolean;
  /** A short reason when not ok, e.g. 'no interpreter for Python 3.9 (looked in …)', 'installing dependencies failed: …', 'build script exited 1', 'timed out after 900 s'. */
  reason: string | null;
  /**
   * Where it failed, when not ok: the first three are no build script's fault
   * (the cascade stops there instead of trying other scripts). Optional: the
   * stage reads the reason's prefix when it is missing.
   */
  failedStep?: 'interpreter' | 'dependencies' | 'checkout' | 'script' | 'timeout';
  /** The end of the combined install and build output (what an LLM gets to fix the script). */
  logTail: string;
  durationMs: number;
  /** Present when ok. */
  env: EnvironmentRef | null;
}

export interface ExecOptions {
  /** Files made available before the command, under the directory named by $PERFMINE_SCRATCH (never inside the checkout). */
  files?: Record<string, string | Buffer>;
  /** Working directory relative to the checkout root (default the root). */
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Extra environment variables (checked against the secret filter like every other). */
  env?: Record<string, string>;
  /** CPUs the command is pinned to (docker: --cpuset-cpus; local: taskset when present). */
  cpus?: string;
  /** docker: memory limit in MiB. */
  memoryMb?: number;
  /** Stream of output lines, for progress. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Bytes of each stream kept (the tail). */
  maxOutputBytes?: number;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

export interface SessionOptions {
  /** CPUs every run is pinned to (docker: the container's cpuset; local: taskset when present). */
  cpus?: string;
  /** docker: the container's memory limit in MiB. */
  memoryMb?: number;
  /** The whole session: past this every run is killed and the session closes itself. */
  timeoutMs: number;
  /** Aborting closes the session (everything running in it is killed). */
  signal?: AbortSignal;
}

export interface SessionRunOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Given to the command on its standard input. */
  stdin?: string;
  /** Working directory as seen inside: absolute, or relative to `scratch` (default `scratch`). */
  cwd?: string;
  /** Extra environment variables (the same secret filter as every child). */
  env?: Record<string, string>;
  maxOutputBytes?: number;
}

/**
 * Several commands in one built environment that share a filesystem (stage 7:
 * the two trees are prepared once, then built, tested and measured by later
 * runs). docker: one container of the environment's image (no network, the
 * cpuset and memory limit, no host mount), `docker exec` per run; local: a
 * scratch directory under PERFMINE_DATA_DIR, runs spawned with the
 * environment's interpreter first on PATH, pinned with taskset, killed by
 * process group. The environment itself is never written.
 */
export interface ExecSession {
  readonly env: EnvironmentRef;
  /** A writable directory inside, the session's own (removed by close). */
  readonly scratch: string;
  run(argv: string[], opts: SessionRunOptions): Promise<ExecResult>;
  /** Writes files (relative paths) into a new directory under scratch; returns that directory as seen inside. */
  put(files: Record<string, string | Buffer>): Promise<string>;
  /** Kills everything still running and removes the scratch (the container); idempotent. */
  close(): Promise<void>;
}

export interface Executor {
  readonly kind: ExecutorKind;
  /** Whether it can work here at all (docker: an engine answers and the base image exists), and why not. */
  available(signal?: AbortSignal): Promise<{ ok: true } | { ok: false; reason: string }>;
  build(req: BuildRequest, signal: AbortSignal): Promise<BuildResult>;
  /**
   * Runs a command in a built environment: its interpreter first on PATH, the
   * checkout as working directory, no network (docker), no secrets. In docker
   * every exec starts from the image: nothing one exec writes is seen by the next.
   */
  exec(env: EnvironmentRef, argv: string[], opts: ExecOptions): Promise<ExecResult>;
  /** A session in a built environment (see ExecSession). Rejects with EnvironmentGoneError when the environment is gone. */
  openSession(env: EnvironmentRef, opts: SessionOptions): Promise<ExecSession>;
  /** Throws an environment away (it failed verification, or was superseded). */
  discard(env: EnvironmentRef): Promise<void>;
  /** Where the executor may record what it builds (docker: its image layers and digests), once the daemon has a database. */
  useDatabase?(db: Db): void;
}
