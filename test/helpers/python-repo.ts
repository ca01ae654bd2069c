import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A Python repository the test writes commit by commit, pushed to a local
 * bare repository (the "remote" a managed clone is made from, with partial
 * clone allowed as on GitHub).
 */
export class PythonRepo {
  readonly work: string;
  readonly bare: string;
  private clock: number;

  constructor(start = '2021-03-01T12:00:00Z') {
    const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-pyrepo-'));
    this.work = path.join(root, 'work');
    this.bare = path.join(root, 'remote.git');
    this.clock = Date.parse(start) / 1000;
    mkdirSync(this.work);
    execFileSync('git', ['init', '-q', '--bare', this.bare]);
    execFileSync('git', ['-C', this.bare, 'config', 'uploadpack.allowFilter', 'true']);
    this.git('init', '-q', '-b', 'main');
    this.git('remote', 'add', 'origin', this.bare);
  }

  git(...args: string[]): string {
    const date = `${this.clock} +0000`;
    return execFileSync('git', ['-c', 'user.name=Dev', '-c', 'user.email=dev@example.com', ...args], {
      cwd: this.work, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
    }).trim();
  }

  /** Writes (string) or removes (null) files, commits at `when` (default: an hour later), pushes; returns the sha. */
  commit(files: Record<string, string | Buffer | null>, message = 'change', when?: string): string {
    this.clock = when ? Date.parse(when) / 1000 : this.clock + 3600;
    for (const [p, content] of Object.entries(files)) {
      const full = path.join(this.work, p);
      if (content === null) rmSync(full, { force: true });
      else {
        mkdirSync(path.dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
    }
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    this.git('push', '-q', 'origin', 'HEAD:main');
    return this.git('rev-parse', 'HEAD');
  }
}
