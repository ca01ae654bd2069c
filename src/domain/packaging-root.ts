/**
 * Which directory of a commit is the Python package to install, chosen as the
 * reference does: the one the asv config installs, else the only candidate,
 * else the one named like the repository, else the shallowest.
 */
import path from 'node:path';
import { canonicalName } from './python-requirements.js';

export const PACKAGING_FILES = ['pyproject.toml', 'setup.py', 'setup.cfg'] as const;

export type PackagingRootRule = 'asv' | 'single' | 'name' | 'shallowest';

export interface PackagingRoot {
  /** Relative to the repository root; '' for the root itself. */
  dir: string;
  rule: PackagingRootRule;
  /** Which packaging files the directory has. */
  files: string[];
}

/** Directories never taken for the package (vendored or generated trees). */
const SKIPPED_PARTS = new Set(['.git', 'node_modules', 'site-packages', '.tox', '.nox', '__pycache__']);

/** Every directory holding a packaging file, with the files it holds. */
export function packagingCandidates(files: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of files) {
    const base = path.posix.basename(file);
    if (!(PACKAGING_FILES as readonly string[]).includes(base)) continue;
    const dir = path.posix.dirname(file) === '.' ? '' : path.posix.dirname(file);
    if (dir.split('/').some((p) => SKIPPED_PARTS.has(p))) continue;
    out.set(dir, [...(out.get(dir) ?? []), base].sort());
  }
  return out;
}

/**
 * Directories the asv config points its build at: `repo_subdir`, and
 * `{build_dir}/SUB` in `build_command` / `install_command`.
 */
export function asvInstallDirs(config: Record<string, unknown> | null, configDir: string): string[] {
  if (!config) return [];
  const dirs: string[] = [];
  const norm = (p: string) => {
    const joined = path.posix.normalize(path.posix.join(configDir, p)).replace(/\/$/, '');
    return joined === '.' ? '' : joined;
  };
  if (typeof config.repo_subdir === 'string' && config.repo_subdir) dirs.push(norm(config.repo_subdir));
  for (const key of ['build_command', 'install_command']) {
    const commands = Array.isArray(config[key]) ? config[key] as unknown[] : [];
    for (const c of commands) {
      if (typeof c !== 'string') continue;
      for (const m of c.matchAll(/\{build_dir\}\/([^\s'"]+)/g)) dirs.push(norm(m[1]));
      // "{build_dir}" alone is the repository root (or repo_subdir): nothing to add.
    }
  }
  return dirs.filter((d) => !d.startsWith('..'));
}

/** The packaging root of a commit, or null when it has none. */
export function choosePackagingRoot(files: readonly string[], repoName: string, asvDirs: readonly string[] = []): PackagingRoot | null {
  const candidates = packagingCandidates(files);
  if (candidates.size === 0) return null;
  const pick = (dir: string, rule: PackagingRootRule): PackagingRoot => ({ dir, rule, files: candidates.get(dir)! });
  for (const dir of asvDirs) if (candidates.has(dir)) return pick(dir, 'asv');
  const dirs = [...candidates.keys()];
  if (dirs.length === 1) return pick(dirs[0], 'single');
  const wanted = canonicalName(repoName);
  const named = dirs.filter((d) => d !== '' && canonicalName(path.posix.basename(d)) === wanted);
  const depth = (d: string) => (d === '' ? 0 : d.split('/').length);
  const byDepth = (a: string, b: string) => depth(a) - depth(b) || a.localeCompare(b);
  // The root itself is the most common packaging root; a subdirectory named like the repository beats only deeper ones.
  if (!candidates.has('') && named.length > 0) return pick(named.sort(byDepth)[0], 'name');
  return pick(dirs.sort(byDepth)[0], 'shallowest');
}
