import { gitEnv } from '../adapters/process/child-env.js';
import { abortError, runProcess } from '../adapters/process/run-process.js';

export interface GitOptions {
  cwd?: string;
  signal?: AbortSignal;
  /** Extra environment for this call (on top of the allow-listed one). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * One git command with the allow-listed environment (no tokens, no GIT_DIR
 * from ours, never a credential prompt), as a child that leaves nothing
 * behind. Returns stdout; a non-zero exit throws with git's own message.
 */
export async function git(args: string[], o: GitOptions = {}): Promise<string> {
  const r = await runProcess('git', args, {
    cwd: o.cwd, signal: o.signal, timeoutMs: o.timeoutMs ?? 10 * 60_000,
    env: gitEnv(o.env), maxOutputBytes: { stdout: 64 * 1024 * 1024, stderr: 64 * 1024 },
  });
  if (r.aborted) throw abortError(o.signal);
  if (r.timedOut) throw new Error(`git ${args[0]} took longer than ${Math.round((o.timeoutMs ?? 600_000) / 1000)} s`);
  if (r.code !== 0) {
    const message = r.stderrTail.trim().split('\n').slice(-3).join(' | ') || `exit ${r.code ?? r.signal}`;
    throw new Error(`git ${args.join(' ').slice(0, 200)}: ${message}`);
  }
  return r.stdoutTail;
}

/** Whether `git` succeeds (for probes such as "does this clone have that commit?"). */
export async function gitSucceeds(args: string[], o: GitOptions = {}): Promise<boolean> {
  try {
    await git(args, o);
    return true;
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    return false;
  }
}
