/**
 * A session of the docker executor (stage 7): one container of the
 * environment's image (by id: the verified content), with no network, no host
 * mount, the cpuset and memory limit of the benchmark, every capability
 * dropped, and a name and label the reaper finds when its owner died. Each
 * run is a `docker exec` in it, so what one run writes (the trees, their
 * builds) the next one sees. A run gets `timeout` (its process group is
 * killed past the limit); an aborted run, the session's deadline or close()
 * kill the container and everything in it, and remove it.
 */
import type Docker from 'dockerode';
import { MAX_TIMER_MS, OutputTail } from '../../process/run-process.js';
import { childEnv } from '../../process/child-env.js';
import type { EnvironmentRef, ExecResult, ExecSession, SessionOptions, SessionRunOptions } from '../executor.js';
import { sessionLifetime } from '../session-lifetime.js';
import { demux, hostConfig } from './containers.js';
import { containerName, removeContainer, withSignal } from './engine.js';
import { BUILD_USER, BUILD_USER_SPEC, envList, IMAGE_ENV, REPO_DIR, ROOT } from './layout.js';
import { filesWithParents, safeRelativePath, tarArchive } from './tar.js';

/** The session's scratch inside the container. */
export const SESSION_DIR = `${ROOT}/session`;
/** Label of session containers (the reaper also knows them by name). */
export const SESSION_LABEL = 'perfmine.session';

export async function openDockerSession(docker: Docker, env: EnvironmentRef, image: string, o: SessionOptions & { pidsLimit: number }): Promise<ExecSession> {
  const container = await docker.createContainer({
    name: containerName('bench'),
    Image: image,
    Entrypoint: [],
    Cmd: ['sleep', 'infinity'],
    Env: envList({ ...IMAGE_ENV, PERFMINE_SCRATCH: SESSION_DIR }),
    WorkingDir: REPO_DIR,
    User: BUILD_USER_SPEC,
    NetworkDisabled: true,
    Labels: { [SESSION_LABEL]: 'benchmark', 'perfmine.owner-pid': String(process.pid) },
    HostConfig: hostConfig({ cpus: o.cpus, memoryMb: o.memoryMb, pidsLimit: o.pidsLimit }),
  });
  const session = new DockerSession(docker, container, env, o);
  try {
    await container.start();
    const made = await session.run(['mkdir', '-p', `${SESSION_DIR}/home`, `${SESSION_DIR}/tmp`], { timeoutMs: 60_000, cwd: ROOT });
    if (made.code !== 0) throw new Error(`the session's scratch could not be made: ${made.stderr.trim() || `exit ${made.code}`}`);
  } catch (err) {
    await session.close();
    throw err;
  }
  return session;
}

class DockerSession implements ExecSession {
  readonly scratch = SESSION_DIR;
  private closed: Promise<void> | null = null;
  private readonly lifetime: { release(): void };
  private puts = 0;

  constructor(private readonly docker: Docker, private readonly container: Docker.Container, readonly env: EnvironmentRef, private readonly o: SessionOptions) {
    this.lifetime = sessionLifetime(o, () => { void this.close(); });
  }

  async run(argv: string[], opts: SessionRunOptions): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('run needs a command');
    const started = performance.now();
    const done = (r: Partial<ExecResult>): ExecResult => ({
      code: null, stdout: '', stderr: '', timedOut: false, aborted: false, durationMs: Math.round(performance.now() - started), ...r,
    });
    if (this.closed) return done({ stderr: 'the session is closed', aborted: true });
    if (opts.signal?.aborted) return done({ aborted: true });
    let cmd = argv;
    if (opts.stdin !== undefined) {
      const dir = await this.put({ stdin: opts.stdin });
      cmd = ['sh', '-c', 'exec "$@" < "$0"', `${dir}/stdin`, ...cmd];
    }
    const seconds = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
    // GNU timeout runs the command in a process group of its own and kills the whole group.
    cmd = ['timeout', '-k', '2', String(seconds), ...cmd];
    const cwd = opts.cwd ? (opts.cwd.startsWith('/') ? opts.cwd : `${SESSION_DIR}/${safeRelativePath(opts.cwd)}`) : SESSION_DIR;
    const extras = childEnv(opts.env ?? {}, { from: {} }) as Record<string, string>;
    const cap = opts.maxOutputBytes ?? 64 * 1024 * 1024;
    const stdout = new OutputTail(cap);
    const stderr = new OutputTail(cap);
    let aborted = false;
    const onAbort = () => { aborted = true; void this.close(); };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // A backstop past the run's own limit: the container goes (a process that escaped timeout's group).
    // (setTimeout fires at once past 2^31-1 ms: "no limit" callers pass that much, so longer limits get no backstop.)
    const backstopMs = opts.timeoutMs + 15_000;
    const backstop = backstopMs <= MAX_TIMER_MS ? setTimeout(() => { void this.close(); }, backstopMs) : undefined;
    try {
      const exec = await this.container.exec({
        Cmd: cmd, AttachStdout: true, AttachStderr: true, User: BUILD_USER_SPEC, WorkingDir: cwd,
        Env: envList({ ...extras, HOME: `${SESSION_DIR}/home`, TMPDIR: `${SESSION_DIR}/tmp`, PERFMINE_SCRATCH: SESSION_DIR }),
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      const closedWait = new Promise<void>((resolve) => { void this.whenClosed().then(resolve); });
      await Promise.race([demux(this.docker, stream, stdout, stderr), closedWait]);
      if (this.closed) {
        (stream as unknown as { destroy?: () => void }).destroy?.();
        return done({ stdout: stdout.text(), stderr: `${stderr.text()}\nperfmine: the session was closed`, aborted: true });
      }
      const info = await exec.inspect();
      const code = info.Running ? null : info.ExitCode;
      const timedOut = code === 124 || (code === 137 && performance.now() - started >= opts.timeoutMs);
      return done({ code: timedOut ? null : code, stdout: stdout.text(), stderr: stderr.text(), timedOut, aborted });
    } catch (err) {
      if (this.closed) return done({ stderr: `perfmine: the session was closed (${(err as Error).message})`, aborted: true });
      throw err;
    } finally {
      clearTimeout(backstop);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async put(files: Record<string, string | Buffer>): Promise<string> {
    if (this.closed) throw new Error('the session is closed');
    const name = `files-${++this.puts}`;
    const prefixed = Object.fromEntries(Object.entries(files).map(([k, v]) => [`${name}/${safeRelativePath(k)}`, v]));
    await withSignal(this.container.putArchive(tarArchive(filesWithParents(prefixed), BUILD_USER), { path: SESSION_DIR }), this.o.signal);
    return `${SESSION_DIR}/${name}`;
  }

  private closedPromise: { promise: Promise<void>; resolve: () => void } | null = null;
  private whenClosed(): Promise<void> {
    if (!this.closedPromise) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => { resolve = r; });
      this.closedPromise = { promise, resolve };
      if (this.closed) resolve();
    }
    return this.closedPromise.promise;
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.lifetime.release();
      this.closedPromise?.resolve();
      await this.container.kill().catch(() => undefined);
      await removeContainer(this.docker, this.container.id);
    })();
    this.closedPromise?.resolve();
    return this.closed;
  }
}
