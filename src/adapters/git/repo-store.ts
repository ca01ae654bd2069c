/**
 * Source trees of a repository at a commit, for the Build stages.
 *
 * - A git source (`repositories.source = 'git'`) is read in its own clone
 *   (`git_path`), which is never written to: checkouts of it are
 *   `clone --shared` copies.
 * - A GitHub repository gets a managed clone of its own under
 *   PERFMINE_DATA_DIR/repos (one per repository; bare, partial:
 *   `--filter=blob:none`, so only the blobs read are ever fetched) from
 *   `repositories.clone_url` or https://github.com/OWNER/NAME.git, fetched
 *   again when a commit is missing. Checkouts are `git worktree`s of it.
 *
 * Files are read at a commit without any checkout (`git cat-file`). Checkouts
 * (`checkout(sha)`, for reading a whole tree) live under
 * PERFMINE_DATA_DIR/worktrees, are reused while they exist, and are
 * garbage-collected by age and count, never while in use in this process.
 * `checkoutInto(sha, dir)` makes a checkout in a directory the caller owns
 * (a built environment's: stage 6 builds in it, stage 7 runs in it), which
 * the store never reuses or collects.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { git, gitSucceeds } from '../../measure/git.js';
import { abortError } from '../process/run-process.js';
import { checkoutTree } from '../../measure/trees.js';
import { KeyedLock } from '../keyed-lock.js';

export interface RepoRef {
  id: number;
  owner: string;
  name: string;
  source: 'github' | 'git';
  gitPath: string | null;
  cloneUrl: string | null;
}

export interface CommitTree {
  sha: string;
  committedAt: Date;
  /** Every file path of the commit (blobs and symlinks; not submodules). */
  files: string[];
  /** A file's text at the commit; null when absent. Throws FileTooLargeError beyond maxBytes. */
  read(file: string, o?: { maxBytes?: number; signal?: AbortSignal }): Promise<string | null>;
}

export interface Worktree {
  /** A working tree of the commit (detached HEAD). */
  dir: string;
  sha: string;
  /** Done with it for now (it stays for reuse until garbage-collected). */
  release(): void;
}

export interface RepoStore {
  /** The commit's tree, fetching when the clone lacks it; null when the repository has no such commit. */
  commit(repo: RepoRef, sha: string, signal?: AbortSignal): Promise<CommitTree | null>;
  /** A working tree of `sha` (created, or reused); call release() when done. */
  checkout(repo: RepoRef, sha: string, signal?: AbortSignal): Promise<Worktree>;
  /**
   * A checkout of `sha` (detached HEAD, a git working tree) in `dir`, which
   * must not exist yet: the caller's to keep and to remove (rm -rf), never
   * collected by the store.
   */
  checkoutInto(repo: RepoRef, sha: string, dir: string, signal?: AbortSignal): Promise<void>;
  /** Removes worktrees past the age and count limits (not those in use). Returns how many. */
  collectGarbage(): Promise<number>;
}

/** The repository's remote could not be cloned or fetched (after a few tries): unreachable, refused, or gone. */
export class RepoUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepoUnavailableError';
  }
}

export class FileTooLargeError extends Error {
  constructor(file: string, maxBytes: number) {
    super(`${file} is larger than ${maxBytes} bytes`);
    this.name = 'FileTooLargeError';
  }
}

export interface GitRepoStoreOptions {
  /** PERFMINE_DATA_DIR: managed clones go to repos/, worktrees to worktrees/. */
  dataDir: string;
  /** Worktrees unused this long are removed (default 24 h). */
  worktreeMaxAgeMs?: number;
  /** At most this many worktrees are kept (default 20; the least recently used go first). */
  worktreeMaxCount?: number;
  /** Clone and fetch (default 30 min). */
  fetchTimeoutMs?: number;
}

const DEFAULT_MAX_FILE = 4 * 1024 * 1024;
const RETRY_DELAYS_MS = [1000, 4000];
const UNAVAILABLE_MEMORY_MS = 60_000;
const MARKER = '.perfmine-worktree';

export class GitRepoStore implements RepoStore {
  private readonly locks = new KeyedLock();
  private readonly inUse = new Map<string, number>();
  /** Remotes that just failed, by clone path: the next PRs of that repository hear it at once instead of trying again. */
  private readonly unavailable = new Map<string, { until: number; message: string }>();
  private readonly maxAgeMs: number;
  private readonly maxCount: number;
  private readonly fetchTimeoutMs: number;

  constructor(private readonly opts: GitRepoStoreOptions) {
    this.maxAgeMs = opts.worktreeMaxAgeMs ?? 24 * 3600_000;
    this.maxCount = opts.worktreeMaxCount ?? 20;
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? 30 * 60_000;
  }

  /** Where a GitHub repository's managed clone lives. */
  clonePath(repo: RepoRef): string {
    return path.join(this.opts.dataDir, 'repos', `${repo.id}-${safe(repo.owner)}-${safe(repo.name)}.git`);
  }

  async commit(repo: RepoRef, sha: string, signal?: AbortSignal): Promise<CommitTree | null> {
    checkSha(sha);
    const gitDir = await this.repositoryWith(repo, sha, signal);
    if (!gitDir) return null;
    const [when, tree] = await Promise.all([
      git(['-C', gitDir, 'log', '-1', '--format=%cI', sha], { signal }),
      git(['-C', gitDir, '-c', 'core.quotepath=off', 'ls-tree', '-r', '-z', sha], { signal }),
    ]);
    const files = tree.split('\0').filter(Boolean).flatMap((entry) => {
      const tab = entry.indexOf('\t');
      const [, type] = entry.slice(0, tab).split(' ');
      return type === 'blob' ? [entry.slice(tab + 1)] : [];
    });
    const known = new Set(files);
    return {
      sha, committedAt: new Date(when.trim()), files,
      read: async (file, o = {}) => {
        if (!known.has(file)) return null;
        const maxBytes = o.maxBytes ?? DEFAULT_MAX_FILE;
        const size = Number((await git(['-C', gitDir, 'cat-file', '-s', `${sha}:${file}`], { signal: o.signal ?? signal })).trim());
        if (size > maxBytes) throw new FileTooLargeError(file, maxBytes);
        return git(['-C', gitDir, 'cat-file', 'blob', `${sha}:${file}`], { signal: o.signal ?? signal });
      },
    };
  }

  async checkout(repo: RepoRef, sha: string, signal?: AbortSignal): Promise<Worktree> {
    checkSha(sha);
    const dir = path.join(this.opts.dataDir, 'worktrees', String(repo.id), sha);
    await this.locks.run(`wt:${dir}`, async () => {
      if (existsSync(path.join(dir, MARKER))) return;
      await rm(dir, { recursive: true, force: true });
      await this.makeCheckout(repo, sha, dir, signal);
      await writeFile(path.join(dir, MARKER), `${repo.owner}/${repo.name} ${sha}\n`);
    });
    const now = new Date();
    await utimes(path.join(dir, MARKER), now, now);
    this.inUse.set(dir, (this.inUse.get(dir) ?? 0) + 1);
    let released = false;
    return {
      dir, sha,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.inUse.get(dir) ?? 1) - 1;
        if (n <= 0) this.inUse.delete(dir);
        else this.inUse.set(dir, n);
      },
    };
  }

  async checkoutInto(repo: RepoRef, sha: string, dir: string, signal?: AbortSignal): Promise<void> {
    checkSha(sha);
    if (existsSync(dir)) throw new Error(`checkout: ${dir} already exists`);
    await this.locks.run(`wt:${dir}`, () => this.makeCheckout(repo, sha, dir, signal));
  }

  /** A detached working tree of `sha` at `dir` (absent): a shared clone of a git source, else a worktree of the managed clone. */
  private async makeCheckout(repo: RepoRef, sha: string, dir: string, signal?: AbortSignal): Promise<void> {
    await mkdir(path.dirname(dir), { recursive: true });
    if (repo.source === 'git') {
      if (!repo.gitPath) throw new Error(`${repo.owner}/${repo.name}: a git source without git_path`);
      const tree = await checkoutTree(repo.gitPath, sha, 'worktree', { signal });
      // The tree was made in a temporary directory; it moves to `dir`.
      try {
        await rename(tree.dir, dir);
      } catch (err) {
        // Another filesystem (EXDEV): copy it over (alternates are absolute paths, so the copy works as well).
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await cp(tree.dir, dir, { recursive: true, verbatimSymlinks: true });
      } finally {
        await tree.cleanup();
      }
      return;
    }
    const gitDir = await this.repositoryWith(repo, sha, signal);
    if (!gitDir) throw new Error(`${repo.owner}/${repo.name} has no commit ${sha}`);
    await git(['-C', gitDir, 'worktree', 'prune'], { signal });
    await git(['-C', gitDir, '-c', 'advice.detachedHead=false', 'worktree', 'add', '--detach', '--force', dir, sha], {
      signal, timeoutMs: this.fetchTimeoutMs, env: { GIT_LFS_SKIP_SMUDGE: '1' },
    });
  }

  async collectGarbage(): Promise<number> {
    const root = path.join(this.opts.dataDir, 'worktrees');
    if (!existsSync(root)) return 0;
    const trees: Array<{ dir: string; usedAt: number }> = [];
    for (const repoDir of await readdir(root)) {
      for (const sha of await readdir(path.join(root, repoDir)).catch(() => [] as string[])) {
        const dir = path.join(root, repoDir, sha);
        const usedAt = await stat(path.join(dir, MARKER)).then((s) => s.mtimeMs, () => 0);
        trees.push({ dir, usedAt });
      }
    }
    trees.sort((a, b) => b.usedAt - a.usedAt);
    const now = Date.now();
    let removed = 0;
    for (const [i, t] of trees.entries()) {
      if (this.inUse.has(t.dir)) continue;
      if (i < this.maxCount && now - t.usedAt <= this.maxAgeMs) continue;
      await this.locks.run(`wt:${t.dir}`, () => rm(t.dir, { recursive: true, force: true }));
      removed++;
    }
    // Managed clones forget the worktrees that are gone.
    const repos = path.join(this.opts.dataDir, 'repos');
    if (removed && existsSync(repos)) {
      for (const clone of await readdir(repos)) await gitSucceeds(['-C', path.join(repos, clone), 'worktree', 'prune']);
    }
    return removed;
  }

  /** The git directory holding `sha`: the git source's clone, or the managed clone (fetched if needed); null if absent. */
  private async repositoryWith(repo: RepoRef, sha: string, signal?: AbortSignal): Promise<string | null> {
    const has = (dir: string) => gitSucceeds(['-C', dir, 'cat-file', '-e', `${sha}^{commit}`], { signal });
    if (repo.source === 'git') {
      if (!repo.gitPath) throw new Error(`${repo.owner}/${repo.name}: a git source without git_path`);
      return (await has(repo.gitPath)) ? repo.gitPath : null;
    }
    const dir = this.clonePath(repo);
    return this.locks.run(`clone:${dir}`, async () => {
      const known = this.unavailable.get(dir);
      if (known && known.until > Date.now()) throw new RepoUnavailableError(known.message);
      try {
        if (!existsSync(path.join(dir, 'HEAD'))) await this.withRetries(() => this.cloneInto(repo, dir, signal), signal);
        else if (await has(dir)) return dir;
        else await this.withRetries(() => this.fetch(dir, signal), signal);
      } catch (err) {
        if ((err as Error).name === 'AbortError') throw err;
        const message = (err as Error).message;
        this.unavailable.set(dir, { until: Date.now() + UNAVAILABLE_MEMORY_MS, message });
        throw new RepoUnavailableError(message);
      }
      this.unavailable.delete(dir);
      if (await has(dir)) return dir;
      // Not on any branch (e.g. a PR's merge ref): ask for the commit itself, where the server allows it.
      await gitSucceeds(['-C', dir, 'fetch', '--quiet', '--no-tags', '--filter=blob:none', 'origin', sha], { signal, timeoutMs: this.fetchTimeoutMs });
      return (await has(dir)) ? dir : null;
    });
  }

  /** A clone or fetch, tried again after 1 s and 4 s (a network blip is not the repository's fault). */
  private async withRetries(fn: () => Promise<void>, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if ((err as Error).name === 'AbortError' || attempt >= RETRY_DELAYS_MS.length) throw err;
        await sleep(RETRY_DELAYS_MS[attempt], signal);
      }
    }
  }

  private async cloneInto(repo: RepoRef, dir: string, signal?: AbortSignal): Promise<void> {
    const url = cloneUrl(repo);
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    await mkdir(path.dirname(dir), { recursive: true });
    try {
      await git(['clone', '--quiet', '--bare', '--filter=blob:none', '--no-tags', '--', url, tmp], { signal, timeoutMs: this.fetchTimeoutMs });
      // The clone's origin fetches every branch into the same name (a mirror of heads, nothing else).
      await git(['-C', tmp, 'config', 'remote.origin.fetch', '+refs/heads/*:refs/heads/*'], { signal });
      await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
        // Another process cloned it first: theirs is as good as ours.
        if (!existsSync(path.join(dir, 'HEAD'))) throw err;
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async fetch(dir: string, signal?: AbortSignal): Promise<void> {
    await git(['-C', dir, 'fetch', '--quiet', '--no-tags', '--prune', '--filter=blob:none', 'origin'], { signal, timeoutMs: this.fetchTimeoutMs });
  }

}

/** The URL a GitHub repository is cloned from; a local path becomes file:// (so the partial clone filter applies). */
export function cloneUrl(repo: RepoRef): string {
  const url = repo.cloneUrl ?? `https://github.com/${repo.owner}/${repo.name}.git`;
  return path.isAbsolute(url) ? `file://${url}` : url;
}

function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_');
}

function checkSha(sha: string): void {
  // Commit names come from the database (GitHub); never let one reach git as an option or a path.
  if (!/^[0-9a-f]{7,64}$/i.test(sha)) throw new Error(`not a commit sha: ${JSON.stringify(sha)}`);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(abortError(signal)); };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
