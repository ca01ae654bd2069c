/**
 * Writes the scripted history into a bare git repository in one
 * `git fast-import` run: fixed authors, dates and contents, so every sha is
 * the same on every machine. PRs land as GitHub lands them: each PR's commits
 * on `refs/pull/N/head` (as GitHub keeps them), then a squash commit
 * "Title (#N)" or a merge commit "Merge pull request #N from login/branch"
 * on main, committed by GitHub.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gitEnv } from '../../adapters/process/child-env.js';
import { runProcess } from '../../adapters/process/run-process.js';
import { git } from '../../measure/git.js';
import type { FileEdit, IssueScript, Person, PRScript } from './history.js';

/** Where each PR's commits ended up. */
export interface LandedPR {
  script: PRScript;
  baseSha: string;
  headSha: string;
  mergeSha: string;
}

export interface WrittenHistory {
  initialSha: string;
  tipSha: string;
  prs: LandedPR[];
  /** path -> content on main after the last PR. */
  tipFiles: Record<string, string>;
}

const GITHUB: Person = { login: 'web-flow', name: 'GitHub' };

/** Git's environment for generation: no user or system config may change what is written. */
export const GENERATOR_GIT_ENV = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };

/** "2024-01-22T11:45:09+01:00" -> "1705920309 +0100" (fast-import's raw date format). */
export function rawDate(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not a date: ${iso}`);
  const m = /([+-])(\d\d):?(\d\d)$/.exec(iso);
  const zone = m ? `${m[1]}${m[2]}${m[3]}` : '+0000';
  return `${Math.floor(ms / 1000)} ${zone}`;
}

function email(p: Person): string {
  return p === GITHUB ? 'noreply@github.com' : `${p.login}@users.noreply.github.com`;
}

/** Applies edits to a tree (path -> content); a `before` that is not there exactly once is a bug in the script. */
export function applyEdits(tree: Map<string, string>, edits: FileEdit[], where: string): void {
  for (const edit of edits) {
    if (edit.content !== undefined) {
      tree.set(edit.path, edit.content);
      continue;
    }
    let text = tree.get(edit.path);
    if (text === undefined) throw new Error(`${where}: ${edit.path} does not exist`);
    for (const [before, after] of edit.replace ?? []) {
      const at = text.indexOf(before);
      if (at === -1 || text.indexOf(before, at + 1) !== -1) {
        throw new Error(`${where}: ${edit.path} must contain exactly once: ${JSON.stringify(before.slice(0, 80))}`);
      }
      text = text.slice(0, at) + after + text.slice(at + before.length);
    }
    tree.set(edit.path, text);
  }
}

/** A fast-import stream, built up command by command. */
class ImportStream {
  private readonly parts: Buffer[] = [];
  private marks = 0;

  private line(text: string): void {
    this.parts.push(Buffer.from(`${text}\n`, 'utf8'));
  }

  private data(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.line(`data ${bytes.length}`);
    this.parts.push(bytes, Buffer.from('\n'));
  }

  /** One commit with the whole tree (deleteall, then every file): simple, and the trees are small. */
  commit(o: {
    ref: string; author: Person; authorAt: string; committer: Person; committerAt: string;
    message: string; from?: number; merge?: number; tree: Map<string, string>;
  }): number {
    const mark = ++this.marks;
    this.line(`commit ${o.ref}`);
    this.line(`mark :${mark}`);
    this.line(`author ${o.author.name} <${email(o.author)}> ${rawDate(o.authorAt)}`);
    this.line(`committer ${o.committer.name} <${email(o.committer)}> ${rawDate(o.committerAt)}`);
    this.data(o.message);
    if (o.from !== undefined) this.line(`from :${o.from}`);
    if (o.merge !== undefined) this.line(`merge :${o.merge}`);
    this.line('deleteall');
    for (const file of [...o.tree.keys()].sort()) {
      this.line(`M 100644 inline ${file}`);
      this.data(o.tree.get(file)!);
    }
    this.line('');
    return mark;
  }

  bytes(): Buffer {
    return Buffer.concat([...this.parts, Buffer.from('done\n')]);
  }
}

/** GitHub's squash message: the title with the PR number, then the branch's commits as a list. */
function squashMessage(pr: PRScript): string {
  return `${pr.title} (#${pr.number})\n\n${pr.commits.map((c) => `* ${c.message}`).join('\n\n')}\n`;
}

function mergeMessage(pr: PRScript): string {
  return `Merge pull request #${pr.number} from ${pr.author.login}/${pr.branch}\n\n${pr.title}\n`;
}

/**
 * Writes `initial` and then every PR of `history` into the bare repository
 * `bare` (which must be empty) and returns each PR's base, head and merge sha.
 */
export async function writeHistory(
  bare: string,
  initial: { files: Readonly<Record<string, string>>; message: string; at: string; author: Person },
  history: ReadonlyArray<PRScript | IssueScript>,
  merger: Person,
  signal?: AbortSignal,
): Promise<WrittenHistory> {
  const stream = new ImportStream();
  const main = new Map(Object.entries(initial.files));
  const first = stream.commit({
    ref: 'refs/heads/main', author: initial.author, authorAt: initial.at, committer: initial.author, committerAt: initial.at,
    message: `${initial.message}\n`, tree: main,
  });
  let tip = first;
  const landed: Array<{ script: PRScript; base: number; head: number; merge: number }> = [];
  for (const pr of history) {
    if (pr.kind !== 'pr') continue;
    const branch = new Map(main);
    let head = tip;
    for (const c of pr.commits) {
      applyEdits(branch, c.edits, `PR #${pr.number} (${c.message})`);
      head = stream.commit({
        ref: `refs/pull/${pr.number}/head`, author: pr.author, authorAt: c.at, committer: pr.author, committerAt: c.at,
        message: `${c.message}\n`, from: head, tree: branch,
      });
    }
    const merge = pr.style === 'squash'
      ? stream.commit({
        ref: 'refs/heads/main', author: pr.author, authorAt: pr.mergedAt, committer: GITHUB, committerAt: pr.mergedAt,
        message: squashMessage(pr), from: tip, tree: branch,
      })
      : stream.commit({
        ref: 'refs/heads/main', author: merger, authorAt: pr.mergedAt, committer: GITHUB, committerAt: pr.mergedAt,
        message: mergeMessage(pr), from: tip, merge: head, tree: branch,
      });
    landed.push({ script: pr, base: tip, head, merge });
    tip = merge;
    main.clear();
    for (const [file, text] of branch) main.set(file, text);
  }

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'perfmine-gen-'));
  try {
    const marksFile = path.join(scratch, 'marks');
    await fastImport(bare, stream.bytes(), marksFile, signal);
    const sha = new Map<number, string>();
    for (const line of (await readFile(marksFile, 'utf8')).split('\n')) {
      const m = /^:(\d+) ([0-9a-f]{40})$/.exec(line);
      if (m) sha.set(Number(m[1]), m[2]);
    }
    return {
      initialSha: sha.get(first)!,
      tipSha: sha.get(tip)!,
      prs: landed.map((l) => ({ script: l.script, baseSha: sha.get(l.base)!, headSha: sha.get(l.head)!, mergeSha: sha.get(l.merge)! })),
      tipFiles: Object.fromEntries([...main].sort(([a], [b]) => a.localeCompare(b))),
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function fastImport(bare: string, input: Buffer, marksFile: string, signal?: AbortSignal): Promise<void> {
  const r = await runProcess('git', ['-C', bare, 'fast-import', '--quiet', '--date-format=raw', `--export-marks=${marksFile}`], {
    env: gitEnv(GENERATOR_GIT_ENV), input, signal, timeoutMs: 60_000, maxOutputBytes: 64 * 1024,
  });
  if (r.code !== 0) throw new Error(`git fast-import failed (${r.code ?? r.signal}): ${r.stderrTail.trim().split('\n').slice(-3).join(' | ')}`);
}

/** The PR's diff as GitHub serves it (and as perfmine's git source reads it): base to merge, renames found. */
export async function prDiff(bare: string, base: string, merge: string, signal?: AbortSignal): Promise<{ patch: string; numstat: string }> {
  const common = ['-C', bare, '-c', 'core.quotepath=off', 'diff', '--no-color', '--no-ext-diff', '--no-textconv', '-M'];
  const o = { signal, env: GENERATOR_GIT_ENV };
  const [patch, numstat] = await Promise.all([
    git([...common, '--src-prefix=a/', '--dst-prefix=b/', base, merge, '--'], o),
    git([...common, '--numstat', base, merge, '--'], o),
  ]);
  return { patch, numstat };
}
