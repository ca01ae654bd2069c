/**
 * Shared environments of the local executor: one virtualenv per (interpreter,
 * pinned requirements, index) under PERFMINE_DATA_DIR/envs/python, created
 * once (make_env.py holds a file lock while it creates one, so builds of any
 * number of processes asking at once wait for the first) and then used by
 * every PR with the same pins, read-only: each build gets a thin layer of its
 * own on top (layer.ts), where anything the build script installs goes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installableRequirements } from '../../../domain/python-requirements.js';
import { childEnv } from '../../process/child-env.js';
import { runProcess } from '../../process/run-process.js';
import { NETWORK_FAILURE, resolverMessage } from '../../python/resolver.js';
import type { Interpreter } from './interpreters.js';

export const MAKE_ENV_SCRIPT = fileURLToPath(new URL('../../../../src/adapters/executors/local/make_env.py', import.meta.url));
const MARKER = 'perfmine-env.json';

export interface SharedEnv {
  key: string;
  dir: string;
  /** Its site-packages (what a layer's .pth points at). */
  purelib: string;
  platlib: string;
}

export type SharedEnvResult =
  | { ok: true; env: SharedEnv }
  | { ok: false; reason: string; timedOut: boolean; indexDown: boolean };

/** The key of an environment: the interpreter's identity, the pins (any order) and the index. */
export function sharedEnvKey(interpreter: Interpreter, pins: readonly string[], indexUrl: string): string {
  const identity = JSON.stringify({ python: interpreter.realPath, version: interpreter.version, pins: [...pins].map((p) => p.trim()).sort(), indexUrl });
  return createHash('sha256').update(identity).digest('hex').slice(0, 20);
}

export class SharedEnvironments {
  constructor(private readonly root: string, private readonly cacheDir: string) {}

  dirOf(interpreter: Interpreter, key: string): string {
    return path.join(this.root, `py${interpreter.version.split('.').slice(0, 2).join('.')}-${key}`);
  }

  async ensure(interpreter: Interpreter, pins: readonly string[], indexUrl: string,
    o: { timeoutMs: number; signal: AbortSignal; onLine: (line: string) => void }): Promise<SharedEnvResult> {
    const key = sharedEnvKey(interpreter, pins, indexUrl);
    const dir = this.dirOf(interpreter, key);
    const ready = readMarker(dir, key);
    if (ready) return { ok: true, env: ready };
    const { lines, requireHashes } = installableRequirements(pins);
    await mkdir(this.root, { recursive: true });
    // A file of this call's own: another build may be about to ask for the same environment.
    const reqFile = `${dir}.requirements-${randomBytes(6).toString('hex')}.txt`;
    await writeFile(reqFile, lines.map((l) => `${l}\n`).join(''));
    const r = await runProcess(interpreter.path, [MAKE_ENV_SCRIPT, dir, reqFile, indexUrl, this.cacheDir, requireHashes ? '1' : '0'], {
      env: childEnv(), timeoutMs: o.timeoutMs, signal: o.signal, onLine: (line) => o.onLine(line), maxOutputBytes: 256 * 1024,
    }).finally(() => rm(reqFile, { force: true }));
    if (r.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error('aborted');
    const output = `${r.stdoutTail}\n${r.stderrTail}`;
    if (r.timedOut) return { ok: false, reason: `creating the environment took longer than the build's time limit`, timedOut: true, indexDown: false };
    if (r.code !== 0) {
      const message = r.code === 2 ? resolverMessage(r.stderrTail, r.stdoutTail) : output.trim().split('\n').slice(-3).join(' | ');
      return { ok: false, reason: message.slice(0, 2000), timedOut: false, indexDown: r.code === 2 && NETWORK_FAILURE.test(output) };
    }
    const made = readMarker(dir, key);
    if (!made) return { ok: false, reason: `the environment ${dir} was not marked ready`, timedOut: false, indexDown: false };
    return { ok: true, env: made };
  }
}

function readMarker(dir: string, key: string): SharedEnv | null {
  const file = path.join(dir, MARKER);
  if (!existsSync(file)) return null;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as { purelib: string; platlib: string };
    return { key, dir, purelib: m.purelib, platlib: m.platlib };
  } catch {
    return null;
  }
}
