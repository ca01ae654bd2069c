/**
 * The wheelhouse: the PR's pinned requirements fetched on the host from the
 * package index (pip download, `--isolated`, allow-listed environment), so
 * that inside the image they are installed with `--no-index` and the build
 * container needs no network at all. Binary wheels only: fetching an sdist
 * makes pip prepare its metadata, which runs the package's setup.py, and
 * that must never happen on the host. Stage 4 resolves the same way (pip:
 * `--only-binary=:all:` for the target Python), so what it pinned has wheels.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { childEnv } from '../../process/child-env.js';
import { runProcess } from '../../process/run-process.js';

export const REQUIREMENTS_FILE = 'requirements.txt';

export interface WheelhouseRequest {
  /** Pinned lines (`name==version --hash=sha256:...`), as stage 4 wrote them. */
  requirements: string[];
  indexUrl: string;
  /** Target Python minor (the image's), e.g. '3.11'. */
  python: string;
  /** Directory to fill (created): the wheels and requirements.txt. */
  dir: string;
  /** The host interpreter whose pip downloads (pip >= 22.2). */
  hostPython: string;
  /** pip's HTTP cache, shared by builds (null: none). */
  cacheDir: string | null;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type WheelhouseResult =
  | { ok: true; files: string[]; output: string }
  | { ok: false; reason: string; output: string; timedOut: boolean; aborted: boolean };

export async function fillWheelhouse(req: WheelhouseRequest): Promise<WheelhouseResult> {
  await mkdir(req.dir, { recursive: true });
  const lines = req.requirements.map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  await writeFile(path.join(req.dir, REQUIREMENTS_FILE), lines.length ? `${lines.join('\n')}\n` : '');
  if (lines.length === 0) return { ok: true, files: [], output: '' };
  const bad = lines.find((l) => /^\s*-/.test(l));
  // An option line (-e, -r, --index-url, -f) would let a requirement point pip elsewhere.
  if (bad) return { ok: false, reason: `not a pinned requirement: ${bad}`, output: '', timedOut: false, aborted: false };
  const r = await runProcess(req.hostPython, [
    '-m', 'pip', 'download', '--isolated', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off',
    '--no-deps', '--only-binary=:all:', '--python-version', req.python, '--index-url', req.indexUrl,
    ...(req.cacheDir ? ['--cache-dir', req.cacheDir] : ['--no-cache-dir']),
    '--dest', req.dir, '-r', path.join(req.dir, REQUIREMENTS_FILE),
  ], { env: childEnv(), timeoutMs: req.timeoutMs, signal: req.signal, maxOutputBytes: 128 * 1024 });
  const output = `${r.stdoutTail}${r.stderrTail}`;
  if (r.code === 0) {
    const files = (await readdir(req.dir)).filter((f) => f !== REQUIREMENTS_FILE).sort();
    return { ok: true, files, output };
  }
  const reason = r.timedOut ? 'timed out while downloading the dependencies'
    : r.aborted ? 'aborted'
      : `downloading the dependencies failed: ${lastError(output)}`;
  return { ok: false, reason, output, timedOut: r.timedOut, aborted: r.aborted };
}

/** pip's own words for what went wrong (its ERROR lines), else its last line. */
function lastError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => l.startsWith('ERROR:'));
  return (errors.length ? errors.join(' ') : lines.at(-1) ?? 'pip failed').slice(0, 500);
}
