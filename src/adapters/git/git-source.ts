/**
 * Mines merged pull requests from a local git clone: no API quota, works offline.
 *
 * PRs are recognised on the first-parent history of HEAD, either as GitHub
 * squash merges ("Title (#123)") or as GitHub merge commits ("Merge pull request
 * #123 from owner/branch"). Every git call uses an argument array (no shell).
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { cleanText, type ChangedFile, type ScrapedPR } from '../../domain/pr.js';
import { gitEnv } from '../process/child-env.js';

export interface GitRepoInfo {
  headSha: string;
  /** The branch HEAD points at (symbolic-ref), null if detached. */
  defaultBranch: string | null;
  /** Path in HEAD's tree of asv.conf.json: the repo root if there, else the shallowest match. */
  asvConfigPath: string | null;
  asvConfigText: string | null;
}

export interface MineOptions {
  /** Include PRs with mergedAt >= since. */
  since?: Date;
  /** Include PRs with mergedAt < until (half-open window [since, until)). */
  until?: Date;
  /** Default 4 MiB: larger diffs get patch = null (files and counts are still reported). */
  maxPatchBytes?: number;
  /** Stop early: the generator throws an Error named 'AbortError'. */
  signal?: AbortSignal;
}

export const DEFAULT_MAX_PATCH_BYTES = 4 * 1024 * 1024;

/** How many `git diff` processes run ahead of the consumer (results stay in log order). */
const DIFF_CONCURRENCY = 4;
/** asv.conf.json is small; refuse to load something absurd. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Keep only the start of stderr for error messages. */
const MAX_STDERR_CHARS = 8192;

// ---------------------------------------------------------------------------
// Running git

/** -C first so the rest applies to that repository; quotepath=off keeps non-ASCII paths as UTF-8. */
function gitArgs(repo: string, args: string[]): string[] {
  return ['-C', repo, '-c', 'core.quotepath=off', ...args];
}

function abortError(signal: AbortSignal): Error {
  const e = new Error('git mining aborted', { cause: signal.reason });
  e.name = 'AbortError';
  return e;
}

function gitFailure(args: string[], code: number | null, sig: NodeJS.Signals | null, stderr: string): Error {
  const how = code !== null ? `exit code ${code}` : `signal ${sig}`;
  return new Error(`git ${args.join(' ')} failed (${how}): ${stderr.trim() || '(no stderr)'}`);
}

interface RunResult {
  code: number | null;
  /** null when the output exceeded maxBytes (the process was killed). */
  stdout: Buffer | null;
  stderr: string;
}

/**
 * Runs git to completion, collecting stdout up to maxBytes; beyond that it stops
 * reading and kills git instead of buffering unbounded output. Rejects only if
 * git cannot be started or the signal fires; callers judge the exit code.
 */
function runGit(repo: string, args: string[], opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<RunResult> {
  const { maxBytes = Infinity, signal } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const child = spawn('git', gitArgs(repo, args), { env: gitEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    let stderr = '';
    const onAbort = () => child.kill();
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > maxBytes) {
        over = true;
        chunks.length = 0;
        child.stdout.destroy();
        child.kill();
      } else chunks.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => { if (stderr.length < MAX_STDERR_CHARS) stderr += s; });
    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new Error(`cannot run git: ${err.message}`, { cause: err }));
    });
    child.once('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return reject(abortError(signal));
      resolve({ code: over ? null : code, stdout: over ? null : Buffer.concat(chunks), stderr });
    });
  });
}

/** runGit that insists on exit code 0 and returns stdout as text. */
async function gitText(repo: string, args: string[], signal?: AbortSignal): Promise<string> {
  const r = await runGit(repo, args, { signal });
  if (r.code !== 0 || r.stdout === null) throw gitFailure(args, r.code, null, r.stderr);
  return r.stdout.toString('utf8');
}

/**
 * Streams git's stdout as NUL-separated tokens (a trailing unterminated token is
 * yielded too). Pull-based, so git blocks on the pipe when the consumer is slow.
 * Closing the generator early kills git; a non-zero exit becomes an Error.
 */
async function* gitTokens(repo: string, args: string[], signal?: AbortSignal): AsyncGenerator<string> {
  if (signal?.aborted) throw abortError(signal);
  const child = spawn('git', gitArgs(repo, args), { env: gitEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  // Listen for the end right away so the event cannot be missed.
  const closed = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run git: ${err.message}`, { cause: err })));
    child.once('close', (code, sig) => resolve({ code, sig }));
  });
  closed.catch(() => {}); // observed below; avoid an unhandled rejection meanwhile
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => { if (stderr.length < MAX_STDERR_CHARS) stderr += s; });
  const onAbort = () => child.kill();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // A streaming decoder keeps multi-byte characters split across chunks intact;
    // NUL is never part of a multi-byte UTF-8 sequence, so splitting after decoding is safe.
    const decoder = new TextDecoder('utf-8');
    let rest = '';
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      rest += decoder.decode(chunk, { stream: true });
      let start = 0;
      for (let nul = rest.indexOf('\0'); nul !== -1; nul = rest.indexOf('\0', start)) {
        yield rest.slice(start, nul);
        start = nul + 1;
      }
      rest = rest.slice(start);
    }
    rest += decoder.decode();
    const { code, sig } = await closed;
    if (signal?.aborted) throw abortError(signal);
    if (code !== 0) throw gitFailure(args, code, sig, stderr);
    if (rest !== '') yield rest;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await closed.catch(() => {});
  }
}

async function gitVersion(repo: string): Promise<[number, number]> {
  const m = /(\d+)\.(\d+)/.exec(await gitText(repo, ['version']));
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(v: [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

// ---------------------------------------------------------------------------
// Repository facts

/** Fails with a readable message unless repoPath is (inside) a git work tree, a bare repository or a .git directory. */
async function assertGitRepo(repoPath: string, signal?: AbortSignal): Promise<void> {
  const st = await stat(repoPath).catch(() => null);
  if (!st?.isDirectory()) throw new Error(`not a git repository: ${repoPath} (no such directory)`);
  const r = await runGit(repoPath, ['rev-parse', '--is-inside-work-tree', '--is-bare-repository', '--is-inside-git-dir'], { signal });
  const out = r.stdout?.toString('utf8') ?? '';
  if (r.code !== 0 || !/\btrue\b/.test(out)) {
    throw new Error(`not a git repository (work tree or bare): ${repoPath}${r.stderr.trim() ? ` (${r.stderr.trim()})` : ''}`);
  }
}

/** HEAD's commit, or null if the repository has no commits yet. */
async function headCommit(repoPath: string, signal?: AbortSignal): Promise<string | null> {
  const r = await runGit(repoPath, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { signal });
  return r.code === 0 && r.stdout ? r.stdout.toString('utf8').trim() : null;
}

export async function readGitRepo(repoPath: string, signal?: AbortSignal): Promise<GitRepoInfo> {
  await assertGitRepo(repoPath, signal);
  const headSha = await headCommit(repoPath, signal);
  if (!headSha) throw new Error(`git repository has no commits: ${repoPath}`);

  // symbolic-ref exits 1 (quietly) when HEAD is detached.
  const ref = await runGit(repoPath, ['symbolic-ref', '--quiet', '--short', 'HEAD'], { signal });
  const defaultBranch = ref.code === 0 && ref.stdout ? cleanText(ref.stdout.toString('utf8').trim()) || null : null;

  // Walk HEAD's whole tree once; --full-tree so paths are root-relative even from a subdirectory.
  let best: { path: string; depth: number; blob: string } | null = null;
  for await (const entry of gitTokens(repoPath, ['ls-tree', '-r', '-z', '--full-tree', headSha], signal)) {
    // "<mode> <type> <object>\t<path>"
    const tab = entry.indexOf('\t');
    if (tab === -1) continue;
    const [mode, type, object] = entry.slice(0, tab).split(' ');
    const path = entry.slice(tab + 1);
    if (type !== 'blob' || mode === '120000') continue; // skip symlinks and submodules
    if (path !== 'asv.conf.json' && !path.endsWith('/asv.conf.json')) continue;
    const depth = path.split('/').length;
    if (!best || depth < best.depth || (depth === best.depth && path < best.path)) best = { path, depth, blob: object };
  }

  let asvConfigText: string | null = null;
  if (best) {
    const r = await runGit(repoPath, ['cat-file', 'blob', best.blob], { maxBytes: MAX_CONFIG_BYTES, signal });
    if (r.code !== 0 || r.stdout === null) throw gitFailure(['cat-file', 'blob', best.blob], r.code, null, r.stderr || 'too large');
    asvConfigText = cleanText(r.stdout.toString('utf8'));
  }
  return { headSha, defaultBranch, asvConfigPath: best ? cleanText(best.path) : null, asvConfigText };
}

// ---------------------------------------------------------------------------
// Parsing `git log --numstat -z`

interface LogCommit {
  sha: string;
  parents: string[];
  authorTime: number;
  committerTime: number;
  authorName: string;
  message: string;
  files: ChangedFile[];
}

/** Starts each commit's header token; NUL-free and unlike any numstat token (which starts with a digit, '-' or '\n'). */
const MARK = '\x1ePERFMINE-COMMIT';
/** Header, then author name and raw message as their own NUL-separated tokens (neither can contain NUL). */
const LOG_FORMAT = `%x00${MARK}%x1f%H%x1f%P%x1f%at%x1f%ct%x00%an%x00%B`;
const NUMSTAT = /^(\d+|-)\t(\d+|-)\t([\s\S]*)$/;

/**
 * Turns the token stream of `git log -z --numstat --format=LOG_FORMAT` into commits.
 * Per commit: header, name, message, then numstat entries "A\tD\tpath" or, for a
 * rename, "A\tD\t" followed by the old and the new path as two more tokens.
 */
async function* parseLog(tokens: AsyncIterable<string>): AsyncGenerator<LogCommit> {
  let cur: LogCommit | null = null;
  let expect: 'name' | 'message' | 'first-stat' | 'stat' | 'rename-old' | 'rename-new' = 'stat';
  let pending: { additions: number | null; deletions: number | null } | null = null;
  const count = (s: string) => (s === '-' ? null : Number(s)); // '-' marks a binary file

  for await (let tok of tokens) {
    switch (expect) {
      case 'name': cur!.authorName = tok; expect = 'message'; continue;
      case 'message': cur!.message = tok; expect = 'first-stat'; continue;
      case 'rename-old': expect = 'rename-new'; continue;
      case 'rename-new':
        cur!.files.push({ path: tok, ...pending! });
        pending = null;
        expect = 'stat';
        continue;
    }
    if (tok.startsWith(MARK)) {
      if (cur) yield cur;
      const [, sha, parents, at, ct] = tok.split('\x1f');
      cur = {
        sha, parents: parents ? parents.split(' ') : [], authorTime: Number(at), committerTime: Number(ct),
        authorName: '', message: '', files: [],
      };
      expect = 'name';
      continue;
    }
    // git puts a newline between the formatted message and the first numstat entry.
    if (expect === 'first-stat' && tok.startsWith('\n')) tok = tok.slice(1);
    expect = 'stat';
    if (tok === '') continue; // separator between commits
    const m = NUMSTAT.exec(tok);
    if (!m || !cur) throw new Error(`unexpected git log output: ${JSON.stringify(tok.slice(0, 200))}`);
    const stat = { additions: count(m[1]), deletions: count(m[2]) };
    if (m[3] === '') {
      pending = stat;
      expect = 'rename-old';
    } else cur.files.push({ path: m[3], ...stat });
  }
  if (cur) yield cur;
}

// ---------------------------------------------------------------------------
// Recognising PRs

const SQUASH_SUFFIX = /\s*\(#(\d+)\)\s*$/;
const MERGE_SUBJECT = /^Merge pull request #(\d+) from (\S+)\s*$/;

interface PrIdentity { number: number; title: string; body: string | null; headSha: string | null }

function nonEmpty(s: string): string | null {
  const t = s.trim();
  return t === '' ? null : t;
}

/** Subject = the message's first line (GitHub writes one-line subjects). */
function identifyPR(c: LogCommit): PrIdentity | null {
  const message = c.message.replace(/\r\n/g, '\n');
  const nl = message.indexOf('\n');
  const subject = (nl === -1 ? message : message.slice(0, nl)).trim();
  const rest = nl === -1 ? '' : message.slice(nl + 1);

  const merge = MERGE_SUBJECT.exec(subject);
  if (merge && c.parents.length >= 2) {
    const number = Number(merge[1]);
    const from = merge[2];
    const branch = from.includes('/') ? from.slice(from.indexOf('/') + 1) : from;
    const lines = rest.split('\n');
    const at = lines.findIndex((l) => l.trim() !== '');
    if (!Number.isSafeInteger(number) || number <= 0) return null;
    if (at === -1) return { number, title: branch, body: null, headSha: c.parents[1] };
    return { number, title: lines[at].trim(), body: nonEmpty(lines.slice(at + 1).join('\n')), headSha: c.parents[1] };
  }

  // Only the last "(#N)" is the PR; earlier ones (e.g. a backported PR) stay in the title.
  const squash = SQUASH_SUFFIX.exec(subject);
  if (squash) {
    const number = Number(squash[1]);
    const title = subject.slice(0, squash.index).trim();
    if (!Number.isSafeInteger(number) || number <= 0 || title === '') return null;
    // A true squash has one parent; a merge commit titled "... (#N)" keeps its branch tip.
    return { number, title, body: nonEmpty(rest), headSha: c.parents[1] ?? null };
  }
  return null;
}

/** UTC, in the same Date#toISOString form the GitHub adapter stores (2024-01-02T03:04:05.000Z). */
function isoUtc(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}

function toScrapedPR(c: LogCommit, id: PrIdentity): ScrapedPR {
  const mergedAt = isoUtc(c.committerTime);
  const files = c.files.map((f) => ({ path: cleanText(f.path), additions: f.additions, deletions: f.deletions }));
  return {
    number: id.number,
    title: cleanText(id.title),
    body: cleanText(id.body),
    author: cleanText(c.authorName) || null,
    labels: [],
    createdAt: isoUtc(c.authorTime),
    mergedAt,
    closedAt: mergedAt,
    mergeCommitSha: c.sha,
    baseSha: c.parents[0],
    headSha: id.headSha,
    files,
    filesCount: files.length,
    additions: files.reduce((n, f) => n + (f.additions ?? 0), 0),
    deletions: files.reduce((n, f) => n + (f.deletions ?? 0), 0),
  };
}

/** The PR's diff against the first parent, or null past maxBytes (git is killed, not drained). */
async function readPatch(repo: string, base: string, sha: string, maxBytes: number, signal?: AbortSignal): Promise<string | null> {
  // Flags pin the output format regardless of user config (colour, external diff, prefixes).
  const args = ['diff', '--no-color', '--no-ext-diff', '--no-textconv', '-M', '--src-prefix=a/', '--dst-prefix=b/', base, sha, '--'];
  const r = await runGit(repo, args, { maxBytes, signal });
  if (r.stdout === null) return null;
  if (r.code !== 0) throw gitFailure(args, r.code, null, r.stderr);
  return cleanText(r.stdout.toString('utf8'));
}

// ---------------------------------------------------------------------------
// Mining

/**
 * Yields the PRs merged on HEAD's first-parent history, NEWEST FIRST (git log
 * order). One streamed `git log --numstat` supplies commits and file stats; one
 * `git diff` per PR supplies the patch, a few running ahead of the consumer.
 * Root commits and shallow-clone boundaries (no parent) are skipped.
 */
export async function* mineGitPRs(repoPath: string, opts: MineOptions = {}): AsyncGenerator<ScrapedPR> {
  const { since, until, maxPatchBytes = DEFAULT_MAX_PATCH_BYTES, signal } = opts;
  if (since && Number.isNaN(since.getTime())) throw new TypeError('mineGitPRs: since is an invalid Date');
  if (until && Number.isNaN(until.getTime())) throw new TypeError('mineGitPRs: until is an invalid Date');
  if (signal?.aborted) throw abortError(signal);
  await assertGitRepo(repoPath, signal);
  const head = await headCommit(repoPath, signal);
  if (!head) return; // no commits, no PRs

  const version = await gitVersion(repoPath);
  const args = [
    'log', '--first-parent', '--no-color', '--no-show-signature', '--encoding=UTF-8',
    '--numstat', '-M', '--no-ext-diff', '--no-textconv', '-z', `--format=${LOG_FORMAT}`,
    // Show merges' stats against the first parent, i.e. what the PR changed.
    atLeast(version, 2, 31) ? '--diff-merges=first-parent' : '-m',
  ];
  // Coarse, inclusive prefilters at whole seconds so git skips diffing commits outside the
  // window; the exact half-open test is done below. Plain --since would stop the walk at
  // the first older commit (committer dates are not monotonic), so only the filter form is used.
  if (since && atLeast(version, 2, 37)) args.push(`--since-as-filter=@${Math.floor(since.getTime() / 1000)}`);
  if (until) args.push(`--until=@${Math.ceil(until.getTime() / 1000)}`);
  args.push(head, '--');

  // Diffs run ahead of the consumer but are yielded in log order.
  const inner = new AbortController();
  const onAbort = () => inner.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const queue: Promise<ScrapedPR>[] = [];
  // Finished diffs may be waiting in the queue, so check the signal before every yield.
  const next = async (): Promise<ScrapedPR> => {
    const pr = await queue.shift()!;
    if (signal?.aborted) throw abortError(signal);
    return pr;
  };
  try {
    for await (const c of parseLog(gitTokens(repoPath, args, signal))) {
      const base = c.parents[0];
      if (!base) continue; // root commit or shallow boundary: nothing to diff against
      const ms = c.committerTime * 1000;
      if ((since && ms < since.getTime()) || (until && ms >= until.getTime())) continue;
      const id = identifyPR(c);
      if (!id) continue;
      const pr = toScrapedPR(c, id);
      const job = readPatch(repoPath, base, c.sha, maxPatchBytes, inner.signal).then((patch) => ({ ...pr, patch }));
      job.catch(() => {}); // awaited in order below; don't report it as unhandled meanwhile
      queue.push(job);
      if (queue.length >= DIFF_CONCURRENCY) yield await next();
    }
    while (queue.length > 0) yield await next();
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Consumer stopped early or something failed: kill diffs still running.
    if (queue.length > 0) {
      inner.abort();
      await Promise.allSettled(queue);
    }
  }
}
