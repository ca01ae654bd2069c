/**
 * The hub stand-in's storage: repositories (model, dataset, space) with a
 * linear history per branch, each commit a snapshot of path -> file, and the
 * bytes themselves content-addressed by sha256 (regular files from commit
 * payloads, LFS objects from uploads). In memory: a stand-in lives as long as
 * the test or the demo that started it.
 */
import { createHash } from 'node:crypto';

export type RepoType = 'model' | 'dataset' | 'space';

export interface StoredFile {
  path: string;
  size: number;
  /** sha256 of the content (the LFS oid for LFS files). */
  sha256: string;
  lfs: boolean;
}

export interface Commit {
  oid: string;
  parent: string | null;
  summary: string;
  description: string;
  at: Date;
  files: Map<string, StoredFile>;
}

export interface Repo {
  type: RepoType;
  id: string;
  private: boolean;
  createdAt: Date;
  /** branch -> commits, oldest first. */
  branches: Map<string, Commit[]>;
  /** sha256 -> bytes: every regular file committed and every LFS object uploaded. */
  objects: Map<string, Buffer>;
}

export type FileChange =
  | { kind: 'file'; path: string; bytes: Buffer }
  | { kind: 'lfsFile'; path: string; oid: string; size: number }
  | { kind: 'deletedFile'; path: string };

/** Why a commit was refused, with the HTTP status the hub answers. */
export class CommitRefused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export function repoKey(type: RepoType, id: string): string {
  return `${type}s/${id}`;
}

export class HubStorage {
  private readonly repos = new Map<string, Repo>();

  get(type: RepoType, id: string): Repo | undefined {
    return this.repos.get(repoKey(type, id));
  }

  create(type: RepoType, id: string, o: { private?: boolean } = {}): Repo | null {
    const key = repoKey(type, id);
    if (this.repos.has(key)) return null;
    const initial: Commit = { oid: commitOid(null, 'initial commit', []), parent: null, summary: 'initial commit', description: '', at: new Date(), files: new Map() };
    const repo: Repo = { type, id, private: !!o.private, createdAt: new Date(), branches: new Map([['main', [initial]]]), objects: new Map() };
    this.repos.set(key, repo);
    return repo;
  }

  head(repo: Repo, branch = 'main'): Commit | undefined {
    const commits = repo.branches.get(branch);
    return commits?.[commits.length - 1];
  }

  /** A branch name or a commit oid. */
  resolve(repo: Repo, revision: string): Commit | undefined {
    const head = this.head(repo, revision);
    if (head) return head;
    for (const commits of repo.branches.values()) {
      const c = commits.find((x) => x.oid === revision);
      if (c) return c;
    }
    return undefined;
  }

  hasObject(repo: Repo, oid: string): boolean {
    return repo.objects.has(oid);
  }

  /** An uploaded LFS object; the caller checked that it hashes to its oid. */
  putObject(repo: Repo, bytes: Buffer): string {
    const oid = sha256(bytes);
    repo.objects.set(oid, bytes);
    return oid;
  }

  commit(repo: Repo, branch: string, header: { summary: string; description?: string; parentCommit?: string }, changes: FileChange[]): Commit {
    const head = this.head(repo, branch);
    if (!head) throw new CommitRefused(404, `Invalid rev id: ${branch}`);
    if (header.parentCommit && header.parentCommit !== head.oid) {
      throw new CommitRefused(412, `A commit has happened since. Please refresh and try again. (parent ${header.parentCommit}, head ${head.oid})`);
    }
    const files = new Map(head.files);
    for (const c of changes) {
      if (!c.path || c.path.startsWith('/') || c.path.split('/').includes('..')) throw new CommitRefused(400, `Invalid path: ${c.path}`);
      if (c.kind === 'deletedFile') {
        if (!files.delete(c.path)) throw new CommitRefused(404, `File not found: ${c.path}`);
      } else if (c.kind === 'file') {
        const oid = this.putObject(repo, c.bytes);
        files.set(c.path, { path: c.path, size: c.bytes.length, sha256: oid, lfs: false });
      } else {
        const bytes = repo.objects.get(c.oid);
        if (!bytes) throw new CommitRefused(422, `LFS object ${c.oid} of ${c.path} was never uploaded`);
        if (bytes.length !== c.size) throw new CommitRefused(422, `LFS object ${c.oid} of ${c.path} has ${bytes.length} bytes, not ${c.size}`);
        files.set(c.path, { path: c.path, size: c.size, sha256: c.oid, lfs: true });
      }
    }
    const entries = [...files.values()].sort((a, b) => a.path.localeCompare(b.path));
    const commit: Commit = {
      oid: commitOid(head.oid, header.summary, entries), parent: head.oid, summary: header.summary,
      description: header.description ?? '', at: new Date(), files,
    };
    repo.branches.get(branch)!.push(commit);
    return commit;
  }

  /** A file's bytes at a revision, or null. */
  read(repo: Repo, revision: string, path: string): { file: StoredFile; bytes: Buffer; commit: Commit } | null {
    const commit = this.resolve(repo, revision);
    const file = commit?.files.get(path);
    if (!commit || !file) return null;
    return { file, bytes: repo.objects.get(file.sha256)!, commit };
  }
}

function commitOid(parent: string | null, summary: string, files: StoredFile[]): string {
  const h = createHash('sha1').update(parent ?? '').update('\0').update(summary).update('\0');
  for (const f of files) h.update(`${f.path}\0${f.sha256}\0${f.lfs ? 1 : 0}\n`);
  h.update(String(process.hrtime.bigint()));
  return h.digest('hex');
}
