/**
 * Tiny wheels for the index stand-in, fast: a stdlib Python script writes the
 * wheel zips directly (no build step, ~1 ms each), and their upload times and
 * requires-python go into the manifest beside them. Tests, the bench and the
 * demo build their indexes with this.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../../adapters/process/run-process.js';
import { MANIFEST_FILE, readManifest, type ManifestEntry } from './catalog.js';

export const MAKE_WHEELS_SCRIPT = fileURLToPath(new URL('../../../src/standins/index/make_wheels.py', import.meta.url));

export interface WheelSpec {
  name: string;
  version: string;
  requiresDist?: string[];
  requiresPython?: string;
  /** When the index says it was uploaded (default: now). */
  uploadTime?: Date | string;
  yanked?: boolean | string;
}

export interface BuiltWheel {
  filename: string;
  sha256: string;
  size: number;
  path: string;
}

/**
 * Writes one wheel per spec into `dir` and records their manifest entries.
 * `python` is any Python 3.8+ (stdlib only).
 */
export async function buildWheels(dir: string, specs: readonly WheelSpec[], opts: { python?: string; signal?: AbortSignal } = {}): Promise<BuiltWheel[]> {
  if (specs.length === 0) return [];
  mkdirSync(dir, { recursive: true });
  const input = JSON.stringify(specs.map((s) => ({
    name: s.name, version: s.version, requires_dist: s.requiresDist ?? [], requires_python: s.requiresPython ?? null,
  })));
  const r = await runProcess(opts.python ?? 'python3', [MAKE_WHEELS_SCRIPT, dir], { input, timeoutMs: 120_000, signal: opts.signal, registryDir: null });
  if (r.code !== 0) throw new Error(`make_wheels.py failed (${r.code ?? r.signal}): ${r.stderrTail.trim().slice(-500)}`);
  const built = r.stdoutTail.trim().split('\n').map((l) => JSON.parse(l) as Omit<BuiltWheel, 'path'>);
  const manifest = readManifest(dir);
  built.forEach((w, i) => {
    const s = specs[i];
    const entry: ManifestEntry = {
      upload_time: s.uploadTime ? new Date(s.uploadTime).toISOString() : new Date().toISOString(),
      ...(s.requiresPython ? { requires_python: s.requiresPython } : {}),
      ...(s.yanked ? { yanked: s.yanked } : {}),
    };
    manifest.files[w.filename] = entry;
  });
  writeFileSync(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return built.map((w) => ({ ...w, path: path.join(dir, w.filename) }));
}
