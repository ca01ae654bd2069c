/**
 * runProcess: one child process that cannot leak our secrets or outlive us.
 *
 * - The environment is the allow-listed childEnv() (or the caller's), plus a
 *   random PERFMINE_RUN_TAG that marks every process descended from it.
 * - The child leads its own session and process group; on the time limit, an
 *   abort, or our own exit, its whole family (group, session, tag, descent)
 *   gets SIGTERM, then SIGKILL after a short grace. Processes it leaves behind
 *   after a normal exit are killed the same way.
 * - Under `setpriv --pdeathsig KILL` (util-linux, when present) the kernel
 *   kills the direct child if we die without running any hook (SIGKILL).
 * - The family is recorded in a registry directory, so reapOrphans() in the
 *   next daemon kills what a SIGKILLed owner left.
 * - Output is capped: the tail is kept.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { childEnv } from './child-env.js';
import { familyMembers, killFamily, killFamilySync, RUN_TAG_VARIABLE, type FamilySpec } from './process-family.js';
import { startTicksOf } from './proc-table.js';
import { currentBootId, defaultRegistryDir, forgetRun, recordRun } from './registry.js';

export interface RunProcessOptions {
  cwd?: string;
  /** Default: childEnv(). Whatever is given is used as is (plus the run tag): build it with childEnv(). */
  env?: NodeJS.ProcessEnv;
  /** Kill the family after this long (default: no limit). */
  timeoutMs?: number;
  /** Kill the family when this aborts. */
  signal?: AbortSignal;
  /** Written to stdin, which is then closed (default: stdin is /dev/null). */
  input?: string | Buffer;
  /** Bytes of each stream kept (the tail); default 1 MiB each. */
  maxOutputBytes?: number | { stdout: number; stderr: number };
  /** Every complete line of output as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Between SIGTERM and SIGKILL (default 2000 ms). */
  killGraceMs?: number;
  /** Where the family is recorded for reapOrphans (default PERFMINE_DATA_DIR/procs; null: not recorded). */
  registryDir?: string | null;
}

export interface ProcessResult {
  /** The direct child's pid (also its process group and session id); null when it never started. */
  pid: number | null;
  /** Exit code of the direct child, null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdoutTail: string;
  stderrTail: string;
  /** Whether output beyond maxOutputBytes was dropped from the front. */
  truncated: { stdout: boolean; stderr: boolean };
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024;
const DEFAULT_GRACE_MS = 2000;
/** How long to wait for the pipes to close once every process is gone (a stuck D-state holder must not hang us). */
const CLOSE_WAIT_MS = 2000;
/** setTimeout's own limit (longer delays would fire at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs `cmd args` as described above. Rejects only when the program cannot be started. */
export async function runProcess(cmd: string, args: readonly string[], o: RunProcessOptions = {}): Promise<ProcessResult> {
  const started = performance.now();
  const env: NodeJS.ProcessEnv = { ...(o.env ?? childEnv()) };
  if (o.signal?.aborted) {
    return { pid: null, code: null, signal: null, stdoutTail: '', stderrTail: '', truncated: { stdout: false, stderr: false }, timedOut: false, aborted: true, durationMs: 0 };
  }
  if (!findExecutable(cmd, env.PATH, o.cwd)) throw new Error(`could not run ${cmd}: not found or not executable`);
  const tag = randomBytes(12).toString('base64url');
  env[RUN_TAG_VARIABLE] = tag;
  const wrapper = pdeathsigWrapper();
  const child = spawn(wrapper ?? cmd, wrapper ? ['--pdeathsig', 'KILL', '--', cmd, ...args] : [...args], {
    cwd: o.cwd, env, detached: true, stdio: [o.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  if (child.pid === undefined) throw new Error(`could not run ${cmd}: ${(await spawnError).message}`);

  const spec: FamilySpec = { leader: child.pid, leaderStartTicks: startTicksOf(child.pid), tag };
  const record = registerLive(spec, o.registryDir === undefined ? defaultRegistryDir() : o.registryDir, [cmd, ...args].join(' '), o.killGraceMs);

  const caps = typeof o.maxOutputBytes === 'number' || o.maxOutputBytes === undefined
    ? { stdout: o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT, stderr: o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT }
    : o.maxOutputBytes;
  const stdout = new OutputTail(caps.stdout, o.onLine && ((line) => o.onLine!(line, 'stdout')));
  const stderr = new OutputTail(caps.stderr, o.onLine && ((line) => o.onLine!(line, 'stderr')));
  child.stdout!.on('data', (d: Buffer) => stdout.push(d));
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  if (o.input !== undefined) {
    child.stdin!.on('error', () => undefined); // a child that exits without reading its input is not our error
    child.stdin!.end(o.input);
  }

  let timedOut = false;
  let aborted = false;
  let killing: Promise<number> | null = null;
  const kill = () => (killing ??= killFamily(spec, o.killGraceMs ?? DEFAULT_GRACE_MS));
  const timer = o.timeoutMs !== undefined && Number.isFinite(o.timeoutMs)
    ? setTimeout(() => { timedOut = true; void kill(); }, Math.min(o.timeoutMs, MAX_TIMER_MS)) : undefined;
  const onAbort = () => { aborted = true; void kill(); };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const outcome = await Promise.race([exited, spawnError]);
    if (outcome instanceof Error) throw new Error(`could not run ${cmd}: ${outcome.message}`);
    // The direct child is gone; so must be anything it left running.
    if (!killing && familyMembers(spec).length > 0) void kill();
    if (killing) await killing;
    let closeWait: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((r) => { closeWait = setTimeout(r, CLOSE_WAIT_MS); })]);
    clearTimeout(closeWait);
    child.stdout!.destroy();
    child.stderr!.destroy();
    const [code, sig] = outcome;
    return {
      pid: spec.leader, code, signal: sig, stdoutTail: stdout.text(), stderrTail: stderr.text(),
      truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
      timedOut, aborted, durationMs: Math.round(performance.now() - started),
    };
  } finally {
    if (timer) clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    record.forget();
  }
}

/** The error for an operation stopped by `signal` (its reason when that is an Error, else an AbortError). */
export function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new DOMException('the operation was aborted', 'AbortError');
}

/** Keeps the last `cap` bytes of a stream and cuts it into lines for onLine (also used for container output). */
export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');
  truncated = false;

  constructor(private readonly cap: number, private readonly onLine?: (line: string) => void) {}

  push(d: Buffer): void {
    this.chunks.push(d);
    this.size += d.length;
    while (this.size - this.chunks[0].length >= this.cap && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
      this.truncated = true;
    }
    if (this.onLine) {
      const lines = (this.partial + this.decoder.write(d)).split('\n');
      this.partial = lines.pop()!;
      if (this.partial.length > 64 * 1024) this.partial = this.partial.slice(-64 * 1024);
      for (const line of lines) this.onLine(line.replace(/\r$/, ''));
    }
  }

  text(): string {
    if (this.onLine) {
      const rest = this.partial + this.decoder.end();
      if (rest) this.onLine(rest);
      this.partial = '';
    }
    const all = Buffer.concat(this.chunks);
    if (all.length > this.cap) this.truncated = true;
    return all.subarray(Math.max(0, all.length - this.cap)).toString('utf8');
  }
}

// ---------------------------------------------------------------------------
// Live families: recorded on disk, killed in an 'exit' hook
// ---------------------------------------------------------------------------

const live = new Map<number, { spec: FamilySpec; graceMs: number; file: string | null }>();
let exitHookInstalled = false;
let ownerStartTicks: number | null | undefined;

function registerLive(spec: FamilySpec, dir: string | null, command: string, graceMs = DEFAULT_GRACE_MS): { forget(): void } {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killLiveFamiliesSync);
  }
  let file: string | null = null;
  if (dir !== null) {
    ownerStartTicks ??= startTicksOf(process.pid);
    try {
      file = recordRun(dir, {
        ...spec, owner: { pid: process.pid, startTicks: ownerStartTicks }, bootId: currentBootId(),
        command: command.slice(0, 500), startedAt: new Date().toISOString(),
      });
    } catch {
      file = null; // an unwritable registry costs only the safety net for SIGKILL; the run goes on
    }
  }
  live.set(spec.leader, { spec, graceMs, file });
  return {
    forget() {
      live.delete(spec.leader);
      if (file) forgetRun(file);
    },
  };
}

/** On our own exit: every live family gets SIGTERM together, then SIGKILL once the (shared) grace is over. */
function killLiveFamiliesSync(): void {
  const families = [...live.values()];
  for (const { spec } of families) {
    try {
      process.kill(-spec.leader, 'SIGTERM');
    } catch { /* gone */ }
  }
  const deadline = Date.now() + Math.min(DEFAULT_GRACE_MS, Math.max(0, ...families.map((f) => f.graceMs)));
  for (const { spec, file } of families) {
    killFamilySync(spec, Math.max(0, deadline - Date.now()));
    if (file) forgetRun(file); // nothing left for the reaper
  }
  live.clear();
}

/** Leaders of the families this process is running now (for tests and diagnostics). */
export function liveFamilies(): number[] {
  return [...live.keys()];
}

// ---------------------------------------------------------------------------
// Finding programs
// ---------------------------------------------------------------------------

let setpriv: string | null | undefined;

/**
 * `setpriv` if it is installed and knows --pdeathsig (util-linux >= 2.33),
 * else null: then a SIGKILLed owner leaves its direct children to the reaper.
 */
export function pdeathsigWrapper(): string | null {
  if (setpriv === undefined) {
    const found = findExecutable('setpriv', process.env.PATH);
    setpriv = found && spawnSync(found, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0 ? found : null;
  }
  return setpriv;
}

/** The program `cmd` resolves to on PATH (or relative to cwd when it has a slash), or null. */
export function findExecutable(cmd: string, pathVar: string | undefined, cwd?: string): string | null {
  const candidates = cmd.includes('/')
    ? [path.resolve(cwd ?? process.cwd(), cmd)]
    : (pathVar ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, cmd));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch { /* next */ }
  }
  return null;
}
