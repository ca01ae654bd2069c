/**
 * A build's own layer over a shared environment: a virtualenv without pip of
 * its own whose site-packages points at the shared one's (a .pth file), so
 * the pins are there and anything the build script installs (`pip install
 * -e .`, a missing build tool) lands in the layer, never in the environment
 * other PRs share. The shared environment's commands (pip included) are
 * copied into the layer with the layer's interpreter on their #! line, so
 * `pip` on PATH installs into the layer too.
 */
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { childEnv } from '../../process/child-env.js';
import { runProcess } from '../../process/run-process.js';
import type { Interpreter } from './interpreters.js';
import type { SharedEnv } from './shared-env.js';

export async function createLayer(interpreter: Interpreter, shared: SharedEnv, layerDir: string, signal: AbortSignal): Promise<void> {
  const r = await runProcess(interpreter.path, ['-m', 'venv', '--without-pip', '--symlinks', layerDir], {
    env: childEnv(), timeoutMs: 120_000, signal, maxOutputBytes: 64 * 1024, registryDir: null,
  });
  if (r.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
  if (r.code !== 0) throw new Error(`python -m venv failed: ${(r.stderrTail || r.stdoutTail).trim().split('\n').slice(-2).join(' | ')}`);
  const minor = interpreter.version.split('.').slice(0, 2).join('.');
  const site = path.join(layerDir, 'lib', `python${minor}`, 'site-packages');
  const shares = [...new Set([shared.purelib, shared.platlib])];
  await writeFile(path.join(site, '_perfmine_shared_env.pth'), `${shares.join('\n')}\n`);

  const sharedBin = path.join(shared.dir, 'bin');
  const layerPython = path.join(layerDir, 'bin', 'python');
  for (const name of await readdir(sharedBin)) {
    if (/^(python|activate)/i.test(name)) continue;
    const text = await readFile(path.join(sharedBin, name), 'utf8').catch(() => null);
    const first = text?.split('\n', 1)[0] ?? '';
    if (!text || !first.startsWith('#!') || !first.includes(sharedBin)) continue;
    const target = path.join(layerDir, 'bin', name);
    await writeFile(target, `#!${layerPython}\n${text.slice(first.length + 1)}`);
    await chmod(target, 0o755);
  }
}
