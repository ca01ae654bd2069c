/** Managed partial clones, reads at a commit without a checkout, worktrees and their garbage collection. */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GitRepoStore, FileTooLargeError, type RepoRef } from '../src/adapters/git/repo-store.js';
import { PythonRepo } from './helpers/python-repo.js';

const dataDir = () => mkdtempSync(path.join(os.tmpdir(), 'perfmine-data-'));

describe('GitRepoStore', () => {
  it('clones a GitHub repository once (partial), reads files at a commit, fetches a commit it lacks', async () => {
    const remote = new PythonRepo();
    const first = remote.commit({ 'pyproject.toml': '[project]\nname = "x"\n', 'pkg/__init__.py': 'A = 1\n' });
    const store = new GitRepoStore({ dataDir: dataDir() });
    const repo: RepoRef = { id: 7, owner: 'acme', name: 'lib', source: 'github', gitPath: null, cloneUrl: remote.bare };
    const tree = await store.commit(repo, first);
    expect(tree!.files.sort()).toEqual(['pkg/__init__.py', 'pyproject.toml']);
    expect(tree!.committedAt.toISOString()).toBe('2021-03-01T13:00:00.000Z');
    const clone = store.clonePath(repo);
    // Partial: no blob was fetched until one was read.
    const missing = execFileSync('git', ['-C', clone, 'rev-list', '--objects', '--missing=print', first]).toString();
    expect(missing).toMatch(/^\?[0-9a-f]{40}$/m);
    expect(await tree!.read('pyproject.toml')).toBe('[project]\nname = "x"\n');
    expect(await tree!.read('absent.txt')).toBeNull();
    await expect(tree!.read('pkg/__init__.py', { maxBytes: 3 })).rejects.toBeInstanceOf(FileTooLargeError);

    const second = remote.commit({ 'pkg/__init__.py': 'A = 2\n' });
    expect(await (await store.commit(repo, second))!.read('pkg/__init__.py')).toBe('A = 2\n');
    expect(await store.commit(repo, 'f'.repeat(40))).toBeNull();
    await expect(store.commit(repo, '--upload-pack=touch /tmp/x')).rejects.toThrow(/not a commit sha/);
  });

  it('worktrees per commit: reused, released, collected by count and age (never one in use)', async () => {
    const remote = new PythonRepo();
    const shas = [1, 2, 3].map((i) => remote.commit({ 'pkg/v.py': `V = ${i}\n` }));
    const dir = dataDir();
    const store = new GitRepoStore({ dataDir: dir, worktreeMaxCount: 2, worktreeMaxAgeMs: 3600_000 });
    const repo: RepoRef = { id: 1, owner: 'acme', name: 'lib', source: 'github', gitPath: null, cloneUrl: remote.bare };
    const trees = [];
    for (const sha of shas) trees.push(await store.checkout(repo, sha));
    expect(readFileSync(path.join(trees[1].dir, 'pkg/v.py'), 'utf8')).toBe('V = 2\n');
    const again = await store.checkout(repo, shas[1]);
    expect(again.dir).toBe(trees[1].dir);
    // All in use: nothing goes.
    expect(await store.collectGarbage()).toBe(0);
    for (const t of [...trees, again]) t.release();
    // Over the count: the least recently used (the first) goes.
    const old = new Date(Date.now() - 60_000);
    utimesSync(path.join(trees[0].dir, '.perfmine-worktree'), old, old);
    expect(await store.collectGarbage()).toBe(1);
    expect(existsSync(trees[0].dir)).toBe(false);
    // Past the age: gone too.
    const ancient = new Date(Date.now() - 2 * 3600_000);
    utimesSync(path.join(trees[1].dir, '.perfmine-worktree'), ancient, ancient);
    expect(await store.collectGarbage()).toBe(1);
    expect(existsSync(trees[2].dir)).toBe(true);
    // The managed clone forgot the removed worktrees.
    const listed = execFileSync('git', ['-C', store.clonePath(repo), 'worktree', 'list', '--porcelain']).toString();
    expect(listed).not.toContain(trees[0].dir);
  });

  it('a git source is read in its own clone and checked out without writing into it', async () => {
    const local = new PythonRepo();
    const sha = local.commit({ 'setup.py': 'setup(name="x")\n' });
    const store = new GitRepoStore({ dataDir: dataDir() });
    const repo: RepoRef = { id: 2, owner: 'acme', name: 'local', source: 'git', gitPath: local.work, cloneUrl: null };
    expect(await (await store.commit(repo, sha))!.read('setup.py')).toBe('setup(name="x")\n');
    const wt = await store.checkout(repo, sha);
    expect(readFileSync(path.join(wt.dir, 'setup.py'), 'utf8')).toBe('setup(name="x")\n');
    wt.release();
    expect(existsSync(path.join(local.work, '.git', 'worktrees'))).toBe(false);
    expect(existsSync(store.clonePath(repo))).toBe(false);
  });
});
