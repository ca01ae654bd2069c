/**
 * Container runs with limits: what untrusted code (build scripts, benchmarks,
 * an LLM's script) runs in. Every container perfmine starts here has
 *  - no network (`NetworkMode: none`: not even the host's loopback),
 *  - no host mount (files go in through the archive endpoint),
 *  - the unprivileged build user, every capability dropped, no-new-privileges,
 *  - a pids limit, and the caller's cpuset and memory limit (no swap beyond it),
 *  - an init process (reaps what a script leaves behind),
 *  - an environment perfmine wrote (never the host's),
 * and is removed, with everything still running in it, when its work ends,
 * times out or is aborted.
 */
import { Writable, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { OutputTail } from '../../process/run-process.js';
import { containerName, removeContainer, withSignal } from './engine.js';
import { BUILD_USER_SPEC, envList } from './layout.js';

export interface ContainerLimits {
  /** --cpuset-cpus, e.g. "3" or "2,3". */
  cpus?: string;
  /** Memory limit in MiB (swap included: no swap beyond it). */
  memoryMb?: number;
  /** At most this many processes and threads at once. */
  pidsLimit?: number;
}

export function hostConfig(limits: ContainerLimits): Docker.HostConfig {
  return {
    NetworkMode: 'none',
    Binds: [],
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Init: true,
    ...(limits.cpus ? { CpusetCpus: limits.cpus } : {}),
    ...(limits.memoryMb ? { Memory: limits.memoryMb * 1024 * 1024, MemorySwap: limits.memoryMb * 1024 * 1024 } : {}),
    ...(limits.pidsLimit ? { PidsLimit: limits.pidsLimit } : {}),
  };
}

export interface ContainerRunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  oomKilled: boolean;
  durationMs: number;
}

export interface ContainerRunSpec {
  image: string;
  cmd: string[];
  env: Record<string, string>;
  workingDir: string;
  limits: ContainerLimits;
  /** A tar archive extracted at `archivePath` before the command starts. */
  archive?: Buffer;
  archivePath?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  maxOutputBytes?: number;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024;
/** How long to wait for the output stream to drain once the container has exited. */
const DRAIN_MS = 2000;

/** Runs one command in a fresh container of `image` and removes the container, whatever happens. */
export async function runInFreshContainer(docker: Docker, spec: ContainerRunSpec): Promise<ContainerRunResult> {
  const started = performance.now();
  const cap = spec.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const stdout = new OutputTail(cap, spec.onLine && ((l) => spec.onLine!(l, 'stdout')));
  const stderr = new OutputTail(cap, spec.onLine && ((l) => spec.onLine!(l, 'stderr')));
  const finish = (r: Omit<ContainerRunResult, 'stdout' | 'stderr' | 'durationMs'>, note = ''): ContainerRunResult => ({
    ...r, stdout: stdout.text(), stderr: stderr.text() + note, durationMs: Math.round(performance.now() - started),
  });
  if (spec.signal?.aborted) return finish({ code: null, timedOut: false, aborted: true, oomKilled: false });

  const container = await docker.createContainer({
    name: containerName('exec'),
    Image: spec.image,
    Cmd: spec.cmd,
    Env: envList(spec.env),
    WorkingDir: spec.workingDir,
    User: BUILD_USER_SPEC,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: true,
    HostConfig: hostConfig(spec.limits),
  });
  let timedOut = false;
  let aborted = false;
  let timer: NodeJS.Timeout | undefined;
  const kill = () => { void container.kill().catch(() => undefined); };
  const onAbort = () => { aborted = true; kill(); };
  try {
    if (spec.archive) await container.putArchive(spec.archive, { path: spec.archivePath ?? '/' });
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const drained = demux(docker, stream, stdout, stderr);
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => { timedOut = true; kill(); }, spec.timeoutMs);
    await container.start();
    if (spec.signal?.aborted) onAbort();
    const waited = await container.wait() as { StatusCode: number };
    await Promise.race([drained, delay(DRAIN_MS)]);
    const state = (await container.inspect()).State;
    const oomKilled = Boolean(state.OOMKilled);
    const note = oomKilled ? `\nperfmine: the command was killed: out of memory (limit ${spec.limits.memoryMb} MiB)\n` : '';
    const code = timedOut || aborted ? null : waited.StatusCode;
    return finish({ code, timedOut, aborted, oomKilled }, note);
  } finally {
    clearTimeout(timer);
    spec.signal?.removeEventListener('abort', onAbort);
    await removeContainer(docker, container.id);
  }
}

/** Splits the engine's multiplexed stream into the two tails; resolves when it ends. */
export function demux(docker: Docker, stream: NodeJS.ReadableStream, out: OutputTail, err: OutputTail): Promise<void> {
  const sink = (tail: OutputTail) => new Writable({ write(chunk: Buffer, _enc, cb) { tail.push(chunk); cb(); } });
  (docker.modem as { demuxStream(s: NodeJS.ReadableStream, o: Writable, e: Writable): void }).demuxStream(stream, sink(out), sink(err));
  return new Promise((resolve) => {
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export interface StepResult {
  /** null when the step did not finish (interrupted, or killed). */
  code: number | null;
  /** stdout and stderr interleaved as they came (the tail), up to the end or the interruption. */
  output: string;
  /** The signal stopped the wait (the caller kills the container). */
  interrupted: boolean;
}

/**
 * A container that stays up while a layer is made in it step by step
 * (`docker exec`), then is committed as an image and removed. Its processes
 * die with it: leftovers of a step, and everything when the deadline passes.
 */
export class LayerContainer {
  private constructor(private readonly docker: Docker, readonly container: Docker.Container, readonly name: string) {}

  static async create(docker: Docker, o: { image: string; env: Record<string, string>; workingDir: string; limits: ContainerLimits; job: string }): Promise<LayerContainer> {
    const name = containerName(o.job);
    const container = await docker.createContainer({
      name,
      Image: o.image,
      // Kept alive by a sleep under the init process; the commit replaces this command.
      Entrypoint: [],
      Cmd: ['sleep', 'infinity'],
      Env: envList(o.env),
      WorkingDir: o.workingDir,
      User: BUILD_USER_SPEC,
      NetworkDisabled: true,
      HostConfig: hostConfig(o.limits),
    });
    return new LayerContainer(docker, container, name);
  }

  async put(archive: Buffer | Readable, at: string, signal?: AbortSignal): Promise<void> {
    await withSignal(this.container.putArchive(archive, { path: at }), signal);
  }

  async start(): Promise<void> {
    await this.container.start();
  }

  /**
   * Runs one step; the tail of its output (both streams, in order) and its
   * exit code. When `signal` aborts, it returns at once with what the step
   * printed so far (a build log must show what a hung script was doing).
   */
  async step(cmd: string[], o: { workingDir?: string; env?: Record<string, string>; maxOutputBytes?: number; signal?: AbortSignal } = {}): Promise<StepResult> {
    const tail = new OutputTail(o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
    const exec = await this.container.exec({
      Cmd: cmd, AttachStdout: true, AttachStderr: true, User: BUILD_USER_SPEC,
      ...(o.workingDir ? { WorkingDir: o.workingDir } : {}),
      ...(o.env ? { Env: envList(o.env) } : {}),
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    // One tail for both streams: a build log reads best in the order things happened.
    const interrupted = await withSignal(demux(this.docker, stream, tail, tail), o.signal).then(() => false, () => true);
    if (interrupted) {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      return { code: null, output: tail.text(), interrupted: true };
    }
    const info = await exec.inspect();
    return { code: info.Running ? null : info.ExitCode, output: tail.text(), interrupted: false };
  }

  /** Kills everything running in it (the deadline passed, or the caller gave up). */
  async kill(): Promise<void> {
    await this.container.kill().catch(() => undefined);
  }

  /**
   * Commits the container as `repo:tag`, with Dockerfile-style `changes`
   * (CMD, LABEL, ...); returns the image id. The environment, user and
   * working directory of the container become the image's.
   */
  async commit(repo: string, tag: string, changes: string[], comment: string): Promise<string> {
    const query = { container: this.container.id, repo, tag, comment, pause: true, changes };
    const res = await (this.container as unknown as { commit(o: unknown): Promise<{ Id: string }> }).commit({ _query: query, _body: {} });
    return res.Id;
  }

  async remove(): Promise<void> {
    await removeContainer(this.docker, this.container.id);
  }
}
