/**
 * The two trees a measurement runs in: real checkouts of the user's
 * repository in temporary directories. Not `git archive`, which drops
 * `export-ignore` files (benchmarks often are), submodules and LFS content.
 * The user's repository is only read: `clone --shared` borrows its object
 * store through an alternates file in the new clone, and nothing (no
 * worktree entry, no ref, no config) is written into it.
 */
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { git, gitSucceeds } from './git.js';
import { materializeLfsPointers } from './lfs.js';

/** The full sha of a revision, or a clear error. */
export async function resolveRev(repo: string, rev: string, signal?: AbortSignal): Promise<string> {
  try {
    return (await git(['-C', repo, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { signal })).trim();
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new Error(`${repo}: no commit ${JSON.stringify(rev)}`);
  }
}

export interface Tree {
  dir: string;
  /** What the tree lacks and why (submodules not available offline, LFS content missing). */
  warnings: string[];
  cleanup(): Promise<void>;
}

/** Submodules inside submodules are followed this deep. */
const MAX_SUBMODULE_DEPTH = 4;

/**
 * A checkout of `sha` in a new temporary directory, with its submodules
 * (cloned offline from the repository's own clones of them) and its LFS files
 * (copied from the repository's own LFS store). What cannot be had offline is
 * listed in `warnings`, not silently left out. `cleanup` removes the tree.
 */
export async function checkoutTree(repo: string, sha: string, label: string, o: { signal?: AbortSignal } = {}): Promise<Tree> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `perfmine-${label}-`));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const warnings: string[] = [];
    await cloneAt(repo, sha, dir, o.signal);
    await checkoutSubmodules(repo, dir, '', 0, warnings, o.signal);
    warnings.push(...await materializeLfsPointers(repo, dir, o.signal));
    return { dir, warnings, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** `git clone --shared --no-checkout` of `source` into `dir` (empty), then a detached checkout of `sha`. */
async function cloneAt(source: string, sha: string, dir: string, signal?: AbortSignal): Promise<void> {
  await git(['clone', '--quiet', '--shared', '--no-checkout', '--', source, dir], { signal });
  // No hooks (a global core.hooksPath, e.g. git-lfs's, would run in the new
  // clone), no LFS download (LFS content is copied from the source's store).
  await git(['-C', dir, '-c', 'core.hooksPath=/dev/null', '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', sha, '--'],
    { signal, env: { GIT_LFS_SKIP_SMUDGE: '1' } });
}

interface Gitlink { path: string; sha: string; name: string }

/** The submodules a checkout records (gitlinks), with their names from .gitmodules. */
async function gitlinks(dir: string, signal?: AbortSignal): Promise<Gitlink[]> {
  const tree = await git(['-C', dir, 'ls-tree', '-r', '-z', 'HEAD'], { signal });
  const links = tree.split('\0').filter(Boolean).flatMap((entry) => {
    const [meta, file] = [entry.slice(0, entry.indexOf('\t')), entry.slice(entry.indexOf('\t') + 1)];
    const [mode, , objectSha] = meta.split(' ');
    return mode === '160000' ? [{ path: file, sha: objectSha }] : [];
  });
  if (links.length === 0) return [];
  const names = new Map<string, string>();
  try {
    const config = await git(['-C', dir, 'config', '-z', '--file', '.gitmodules', '--get-regexp', '^submodule\\..*\\.path$'], { signal });
    for (const item of config.split('\0').filter(Boolean)) {
      const [key, value] = [item.slice(0, item.indexOf('\n')), item.slice(item.indexOf('\n') + 1)];
      names.set(value, key.replace(/^submodule\./, '').replace(/\.path$/, ''));
    }
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err; // no .gitmodules: names default to paths
  }
  return links.map((l) => ({ ...l, name: names.get(l.path) ?? l.path }));
}

/**
 * Checks out each submodule of the checkout at `dir` from a clone of it that
 * the source repository already has (its working copy at the submodule's
 * path, or its store under .git/modules), never over the network.
 */
async function checkoutSubmodules(source: string, dir: string, prefix: string, depth: number, warnings: string[], signal?: AbortSignal): Promise<void> {
  for (const link of await gitlinks(dir, signal)) {
    const shown = `${prefix}${link.path}`;
    if (depth >= MAX_SUBMODULE_DEPTH) {
      warnings.push(`submodule ${shown}: nested deeper than ${MAX_SUBMODULE_DEPTH} levels; left empty`);
      continue;
    }
    const from = await localCloneWith(source, link, signal);
    if (!from) {
      warnings.push(`submodule ${shown} (${link.sha.slice(0, 12)}): not available offline (no clone of it in ${source} has that commit); left empty`);
      continue;
    }
    const target = path.join(dir, link.path);
    await rm(target, { recursive: true, force: true });
    await cloneAt(from, link.sha, target, signal);
    await checkoutSubmodules(from, target, `${shown}/`, depth + 1, warnings, signal);
    warnings.push(...(await materializeLfsPointers(from, target, signal)).map((w) => `submodule ${shown}: ${w}`));
  }
}

/** A clone of the submodule, inside the source repository, that has the commit; or null. */
async function localCloneWith(source: string, link: Gitlink, signal?: AbortSignal): Promise<string | null> {
  const gitPath = (cwd: string, what: '--git-dir' | '--git-common-dir') =>
    git(['-C', cwd, 'rev-parse', '--path-format=absolute', what], { signal }).then((s) => path.resolve(s.trim()), (err: Error) => {
      if (err.name === 'AbortError') throw err;
      return null;
    });
  const commonDir = await gitPath(source, '--git-common-dir');
  // A directory that git resolves to the superproject itself is an uninitialised submodule, not a clone.
  const superproject = new Set([commonDir, await gitPath(source, '--git-dir')]);
  const candidates = [path.join(source, link.path), ...(commonDir ? [path.join(commonDir, 'modules', link.name)] : [])];
  for (const candidate of candidates) {
    const own = await gitPath(candidate, '--git-dir');
    if (!own || superproject.has(own)) continue;
    if (await gitSucceeds(['-C', candidate, 'cat-file', '-e', `${link.sha}^{commit}`], { signal })) return candidate;
  }
  return null;
}

/** Whether `dir` is the top of a git checkout (asv mode needs one: asv clones the tree itself). */
export async function isCheckout(dir: string, signal?: AbortSignal): Promise<boolean> {
  const top = await git(['-C', dir, 'rev-parse', '--show-toplevel'], { signal }).then((s) => s.trim(), (err: Error) => {
    if (err.name === 'AbortError') throw err;
    return null;
  });
  if (top === null) return false;
  const [a, b] = await Promise.all([realpath(top).catch(() => top), realpath(dir).catch(() => dir)]);
  return a === b;
}
