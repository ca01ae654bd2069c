/**
 * Reads setup.py and setup.cfg through a small stdlib Python script
 * (read_setup.py): setup.py with Python's own `ast` parser, never executed;
 * setup.cfg with configparser, as setuptools reads it. One process per commit.
 */
import { fileURLToPath } from 'node:url';
import { emptyReading, type PackagingReading } from '../../domain/declared-requirements.js';
import { childEnv } from '../process/child-env.js';
import { abortError, runProcess } from '../process/run-process.js';

export const READ_SETUP_SCRIPT = fileURLToPath(new URL('../../../src/adapters/python/read_setup.py', import.meta.url));

interface ScriptReading {
  name: string | null;
  python_requires: string | null;
  classifiers: string[];
  requirements: PackagingReading['requirements'];
  unreadable: PackagingReading['unreadable'];
  error?: string;
}

export interface SetupReadings {
  setupPy: PackagingReading | null;
  setupCfg: PackagingReading | null;
}

export async function readSetupFiles(python: string, files: { setupPy: string | null; setupCfg: string | null }, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<SetupReadings> {
  if (files.setupPy === null && files.setupCfg === null) return { setupPy: null, setupCfg: null };
  const r = await runProcess(python, ['-I', '-S', READ_SETUP_SCRIPT], {
    env: childEnv(), input: JSON.stringify({ setup_py: files.setupPy, setup_cfg: files.setupCfg }),
    timeoutMs: o.timeoutMs ?? 60_000, signal: o.signal, maxOutputBytes: 16 * 1024 * 1024,
  });
  if (r.aborted) throw abortError(o.signal);
  if (r.timedOut || r.code !== 0) {
    // The script never fails on bad input by design; a crash or a hang is still the input's doing
    // (e.g. nesting deep enough to exhaust the parser), so it is recorded as that file's error.
    const why = r.timedOut ? 'took too long' : `exited with ${r.code ?? r.signal}: ${r.stderrTail.trim().split('\n').slice(-1)[0] ?? ''}`;
    const failed = (file: string) => ({ ...emptyReading(), error: `${file} could not be read (the reader ${why})` });
    return { setupPy: files.setupPy === null ? null : failed('setup.py'), setupCfg: files.setupCfg === null ? null : failed('setup.cfg') };
  }
  const out = JSON.parse(r.stdoutTail) as { setup_py: ScriptReading | null; setup_cfg: ScriptReading | null };
  return { setupPy: toReading(out.setup_py), setupCfg: toReading(out.setup_cfg) };
}

function toReading(s: ScriptReading | null): PackagingReading | null {
  if (!s) return null;
  return {
    ...emptyReading(), name: s.name, requiresPython: s.python_requires, classifiers: s.classifiers,
    requirements: s.requirements, unreadable: s.unreadable, ...(s.error ? { error: s.error } : {}),
  };
}
