/**
 * A session of the local executor (stage 7): a scratch directory of its own
 * under PERFMINE_DATA_DIR/sessions, where the trees are copied and built;
 * every run spawned with the environment's interpreter first on PATH, HOME
 * and TMPDIR inside the scratch, pinned with taskset when `cpus` is given,
 * and killed by process group (runProcess) on its time limit, an abort, the
 * session's own deadline or close(). close() removes the scratch.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runProcess } from '../../process/run-process.js';
import type { EnvironmentRef, ExecResult, ExecSession, SessionOptions, SessionRunOptions } from '../executor.js';
import { sessionLifetime } from '../session-lifetime.js';

export interface LocalSessionDeps {
  env: EnvironmentRef;
  /** Where sessions' scratch directories go. */
  root: string;
  /** The environment every run gets (allow-listed; HOME, TMPDIR and PERFMINE_SCRATCH set by the session). */
  environment(extra: Record<string, string>): NodeJS.ProcessEnv;
  /** taskset's path when it is there. */
  taskset: string | null;
}

export async function openLocalSession(d: LocalSessionDeps, o: SessionOptions): Promise<ExecSession> {
  const scratch = path.join(d.root, `session-${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(path.join(scratch, 'home'), { recursive: true });
  await mkdir(path.join(scratch, 'tmp'), { recursive: true });
  return new LocalSession(d, o, scratch);
}

class LocalSession implements ExecSession {
  readonly env: EnvironmentRef;
  private readonly closing = new AbortController();
  private readonly running = new Set<Promise<unknown>>();
  private closed: Promise<void> | null = null;
  private readonly lifetime: { release(): void };
  private puts = 0;

  constructor(private readonly d: LocalSessionDeps, private readonly o: SessionOptions, readonly scratch: string) {
    this.env = d.env;
    this.lifetime = sessionLifetime(o, () => { void this.close(); });
  }

  async run(argv: string[], opts: SessionRunOptions): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('run needs a command');
    if (this.closed) return { code: null, stdout: '', stderr: 'the session is closed', timedOut: false, aborted: true, durationMs: 0 };
    const started = performance.now();
    const cwd = opts.cwd ? path.resolve(this.scratch, opts.cwd) : this.scratch;
    let [cmd, ...args] = argv;
    if (this.o.cpus && this.d.taskset) [cmd, args] = [this.d.taskset, ['-c', this.o.cpus, cmd, ...args]];
    // One controller per run, unhooked afterwards (AbortSignal.any would leave a listener per run on long-lived signals).
    const stop = new AbortController();
    const onStop = () => stop.abort();
    for (const s of [opts.signal, this.closing.signal]) s?.addEventListener('abort', onStop, { once: true });
    if (opts.signal?.aborted || this.closing.signal.aborted) stop.abort();
    const signal = stop.signal;
    const env = this.d.environment({
      ...(opts.env ?? {}), HOME: path.join(this.scratch, 'home'), TMPDIR: path.join(this.scratch, 'tmp'), PERFMINE_SCRATCH: this.scratch,
    });
    const p = runProcess(cmd, args, {
      cwd, env, timeoutMs: opts.timeoutMs, signal, input: opts.stdin, maxOutputBytes: opts.maxOutputBytes ?? 64 * 1024 * 1024,
    });
    this.running.add(p);
    try {
      const r = await p;
      return { code: r.code, stdout: r.stdoutTail, stderr: r.stderrTail, timedOut: r.timedOut, aborted: r.aborted, durationMs: r.durationMs };
    } catch (err) {
      return { code: 127, stdout: '', stderr: (err as Error).message, timedOut: false, aborted: false, durationMs: Math.round(performance.now() - started) };
    } finally {
      this.running.delete(p);
      for (const s of [opts.signal, this.closing.signal]) s?.removeEventListener('abort', onStop);
    }
  }

  async put(files: Record<string, string | Buffer>): Promise<string> {
    if (this.closed) throw new Error('the session is closed');
    const dir = path.join(this.scratch, `files-${++this.puts}`);
    for (const [name, content] of Object.entries(files)) {
      const file = path.resolve(dir, name);
      if (!file.startsWith(`${dir}${path.sep}`)) throw new Error(`${name} leads outside the session's files`);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content);
    }
    return dir;
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.lifetime.release();
      this.closing.abort(new Error('the session was closed'));
      await Promise.allSettled([...this.running]);
      await rm(this.scratch, { recursive: true, force: true });
    })();
    return this.closed;
  }
}
