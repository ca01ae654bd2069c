/**
 * Reads what a commit declares, from its tree, without running anything: the
 * asv config, the packaging root, and the packaging files there.
 */
import path from 'node:path';
import { parseAsvConfig } from '../../domain/asv-config.js';
import {
  asvMatrixRequirements, asvPythons, binaryFileReason, mergeReadings, readPyproject, type PackagingReading,
} from '../../domain/declared-requirements.js';
import { asvInstallDirs, choosePackagingRoot, type PackagingRoot } from '../../domain/packaging-root.js';
import type { DeclaredRequirement, DroppedRequirement } from '../../domain/python-requirements.js';
import { FileTooLargeError, type CommitTree } from '../git/repo-store.js';
import { readSetupFiles } from './setup-reader.js';

export type Declared =
  | { ok: false; reason: string; root: PackagingRoot | null }
  | {
    ok: true;
    root: PackagingRoot;
    projectName: string | null;
    requiresPython: string | null;
    classifiers: string[];
    asvPythons: string[];
    requirements: DeclaredRequirement[];
    /** Declared but not readable (computed in setup.py, wrong types, a broken asv config). */
    unreadable: DroppedRequirement[];
  };

export interface ReadDeclaredOptions {
  /** The repository's name (the packaging root's name-match rule). */
  repoName: string;
  /** Where scrape_repos found asv.conf.json (in HEAD); else the shallowest one at the commit. */
  asvConfigPath: string | null;
  /** Interpreter for read_setup.py. */
  python: string;
  signal?: AbortSignal;
}

const MAX_PACKAGING_FILE = 2 * 1024 * 1024;

export async function readDeclared(tree: CommitTree, o: ReadDeclaredOptions): Promise<Declared> {
  const unreadable: DroppedRequirement[] = [];
  const asv = await readAsvConfig(tree, o.asvConfigPath, unreadable, o.signal);
  const asvDirs = asv ? asvInstallDirs(asv.config, path.posix.dirname(asv.path) === '.' ? '' : path.posix.dirname(asv.path)) : [];
  const root = choosePackagingRoot(tree.files, o.repoName, asvDirs);
  if (!root) return { ok: false, reason: 'no packaging root: the commit has no pyproject.toml, setup.py or setup.cfg', root: null };

  const at = (f: string) => (root.dir ? `${root.dir}/${f}` : f);
  const text = async (f: string): Promise<string | null | { error: string }> => {
    try {
      return await tree.read(at(f), { maxBytes: MAX_PACKAGING_FILE, signal: o.signal });
    } catch (err) {
      if (err instanceof FileTooLargeError) return { error: err.message };
      throw err;
    }
  };
  const [pyproject, setupPy, setupCfg] = await Promise.all(['pyproject.toml', 'setup.py', 'setup.cfg'].map(text));
  for (const [f, t] of [['pyproject.toml', pyproject], ['setup.py', setupPy], ['setup.cfg', setupCfg]] as const) {
    if (t !== null && typeof t === 'object') return { ok: false, reason: `${at(f)}: ${t.error}`, root };
    const binary = typeof t === 'string' ? binaryFileReason(at(f), t) : null;
    if (binary) return { ok: false, reason: binary, root };
  }
  const readings: PackagingReading[] = [];
  if (typeof pyproject === 'string') readings.push(readPyproject(pyproject, at('pyproject.toml')));
  const setup = await readSetupFiles(o.python, { setupPy: setupPy as string | null, setupCfg: setupCfg as string | null }, { signal: o.signal });
  if (setup.setupCfg) readings.push(setup.setupCfg);
  if (setup.setupPy) readings.push(setup.setupPy);
  const failed = readings.find((r) => r.error);
  if (failed) return { ok: false, reason: root.dir ? `${root.dir}/: ${failed.error}` : failed.error!, root };
  const merged = mergeReadings(readings);
  const matrix = asv ? asvMatrixRequirements(asv.config, asv.path) : [];
  return {
    ok: true, root, projectName: merged.name, requiresPython: merged.requiresPython, classifiers: merged.classifiers,
    asvPythons: asv ? asvPythons(asv.config) : [], requirements: [...merged.requirements, ...matrix],
    unreadable: [...merged.unreadable, ...unreadable],
  };
}

async function readAsvConfig(tree: CommitTree, known: string | null, unreadable: DroppedRequirement[], signal?: AbortSignal) {
  const candidates = tree.files.filter((f) => path.posix.basename(f) === 'asv.conf.json')
    .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
  const file = known && tree.files.includes(known) ? known : candidates[0];
  if (!file) return null;
  try {
    const text = await tree.read(file, { maxBytes: MAX_PACKAGING_FILE, signal });
    if (text === null) return null;
    return { path: file, config: parseAsvConfig(text) };
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    unreadable.push({ requirement: '', source: file, reason: `asv config not readable: ${(err as Error).message.split('\n')[0]}` });
    return null;
  }
}
