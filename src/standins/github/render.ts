/**
 * How the stand-in renders a stored PR: the GraphQL search node, the REST PR
 * and files objects, and a synthetic unified diff.
 */
import { fakeSha, githubTime, sumCounts } from './data.js';
import type { StandinFile, StandinPR } from './types.js';

/** GitHub lists at most 3000 files of a PR. */
export const MAX_PR_FILES = 3000;
/** GitHub refuses the diff media type beyond 300 files (406). */
export const MAX_DIFF_FILES = 300;
/** Lines of each kind written per file; keeps diffs of huge PRs small. */
const MAX_DIFF_LINES = 400;

const WEB = 'https://github.com';

/** The GraphQL `... on PullRequest` node with every field perfmine asks for. */
export function graphqlNode(pr: StandinPR, withTypename: boolean) {
  const { additions, deletions } = sumCounts(pr.files);
  const mergedAt = githubTime(pr.merged_at);
  return {
    ...(withTypename ? { __typename: 'PullRequest' } : {}),
    number: pr.number,
    title: pr.title,
    body: pr.body ?? null,
    url: `${WEB}/${pr.repository}/pull/${pr.number}`,
    repository: { nameWithOwner: pr.repository },
    // GitHub's createdAt is never null; without authored_at the merge time is the best guess.
    createdAt: pr.authored_at ? githubTime(pr.authored_at) : mergedAt,
    mergedAt,
    closedAt: mergedAt,
    author: pr.author ? { login: pr.author } : null,
    mergeCommit: pr.merge_commit_sha ? { oid: pr.merge_commit_sha } : null,
    baseRefOid: pr.base_sha,
    headRefOid: pr.head_sha ?? null,
    additions,
    deletions,
    changedFiles: pr.changed_files,
    labels: { nodes: (pr.labels ?? []).slice(0, 20).map((name) => ({ name })) },
    files: {
      totalCount: pr.changed_files,
      // GitHub's schema has non-null counts: binary files come back as 0/0.
      nodes: pr.files.slice(0, 100).map((f) => ({
        path: f.path,
        additions: f.additions ?? 0,
        deletions: f.deletions ?? 0,
      })),
    },
  };
}

/** `GET /repos/{owner}/{repo}/pulls/{n}` without a special media type. */
export function restPR(pr: StandinPR, apiUrl: string) {
  const { additions, deletions } = sumCounts(pr.files);
  const mergedAt = githubTime(pr.merged_at);
  return {
    url: `${apiUrl}/repos/${pr.repository}/pulls/${pr.number}`,
    html_url: `${WEB}/${pr.repository}/pull/${pr.number}`,
    diff_url: `${WEB}/${pr.repository}/pull/${pr.number}.diff`,
    number: pr.number,
    state: 'closed',
    title: pr.title,
    body: pr.body ?? null,
    user: { login: pr.author ?? 'ghost' },
    labels: (pr.labels ?? []).map((name) => ({ name })),
    created_at: pr.authored_at ? githubTime(pr.authored_at) : mergedAt,
    closed_at: mergedAt,
    merged_at: mergedAt,
    merged: true,
    merge_commit_sha: pr.merge_commit_sha,
    base: { sha: pr.base_sha, ref: 'main' },
    head: { sha: pr.head_sha ?? null, ref: `pr-${pr.number}` },
    changed_files: pr.changed_files,
    additions,
    deletions,
  };
}

/** The files GitHub lists for a PR: at most 3000. */
export function listedFiles(pr: StandinPR): StandinFile[] {
  return pr.files.slice(0, MAX_PR_FILES);
}

/** One item of `GET /repos/{owner}/{repo}/pulls/{n}/files`; binary files have 0/0 and no patch. */
export function restFile(pr: StandinPR, f: StandinFile) {
  const binary = f.additions === null || f.deletions === null;
  const additions = f.additions ?? 0;
  const deletions = f.deletions ?? 0;
  const real = pr.patch ? realDiffFiles(pr.patch).get(f.path) : undefined;
  const patch = binary ? null : real ? real.hunks : hunk(pr, f);
  return {
    sha: fakeSha(pr.repository, pr.number, f.path),
    filename: f.path,
    status: real?.status ?? 'modified',
    additions,
    deletions,
    changes: additions + deletions,
    ...(patch === null ? {} : { patch }),
  };
}

/** The PR's diff (the `diff` media type): its real one when it has one, else a well-formed synthetic one. */
export function unifiedDiff(pr: StandinPR): string {
  if (pr.patch) return pr.patch;
  const parts = pr.files.map((f) => {
    const head = `diff --git a/${f.path} b/${f.path}`;
    const [before, after] = [fakeSha('old', f.path).slice(0, 7), fakeSha('new', pr.number, f.path).slice(0, 7)];
    if (f.additions === null || f.deletions === null) {
      return `${head}\nindex ${before}..${after} 100644\nBinary files a/${f.path} and b/${f.path} differ\n`;
    }
    const body = hunk(pr, f);
    // Nothing changed in the text (a rename or a mode change): git prints no hunk either.
    if (body === null) return `${head}\nold mode 100644\nnew mode 100755\n`;
    return `${head}\nindex ${before}..${after} 100644\n--- a/${f.path}\n+++ b/${f.path}\n${body}\n`;
  });
  return parts.join('');
}

/**
 * One hunk per file: D removed then A added lines (each capped), deterministic
 * and carrying the PR title so a stand-in LLM can recognise the PR from its diff.
 * The header counts only what is written so the hunk stays consistent.
 * Returns null when the file has no line changes.
 */
function hunk(pr: StandinPR, f: StandinFile): string | null {
  const d = Math.min(f.deletions ?? 0, MAX_DIFF_LINES);
  const a = Math.min(f.additions ?? 0, MAX_DIFF_LINES);
  if (d === 0 && a === 0) return null;
  // An empty side starts at line 0, as git writes it.
  const lines = [`@@ -${d ? 1 : 0},${d} +${a ? 1 : 0},${a} @@`];
  const title = pr.title.replace(/\s+/g, ' ').trim();
  const lead = commentPrefix(f.path);
  for (let i = 1; i <= d; i++) lines.push(`-${lead}old ${i}: ${title}`);
  for (let i = 1; i <= a; i++) lines.push(`+${lead}new ${i}: ${title}`);
  return lines.join('\n');
}

/** Makes the synthetic lines at least look like comments in the file's language. */
function commentPrefix(path: string): string {
  if (/\.(py|pyx|pxd|toml|cfg|ya?ml|sh|txt|ini)$/i.test(path)) return '# ';
  if (/\.rst$/i.test(path)) return '.. ';
  if (/\.(md|html?|json)$/i.test(path)) return '';
  return '// ';
}

/** One file of a real diff as `/pulls/N/files` shows it: its hunks (from the first `@@`) and its status. */
interface RealDiffFile {
  hunks: string | null;
  status: 'added' | 'removed' | 'renamed' | 'modified';
}

/** A real `git diff` split per file, keyed by the file's new path (its old path when it was removed). */
export function realDiffFiles(patch: string): Map<string, RealDiffFile> {
  const files = new Map<string, RealDiffFile>();
  for (const section of patch.split(/^(?=diff --git )/m)) {
    if (!section.startsWith('diff --git ')) continue;
    const at = section.search(/^@@/m);
    const header = at === -1 ? section : section.slice(0, at);
    const field = (re: RegExp) => re.exec(header)?.[1];
    const renamedTo = field(/^rename to (.+)$/m);
    const newPath = field(/^\+\+\+ b\/(.+)$/m);
    const oldPath = field(/^--- a\/(.+)$/m);
    const path = renamedTo ?? newPath ?? oldPath ?? field(/^diff --git a\/.+ b\/(.+)$/m);
    if (!path) continue;
    const status = /^new file mode/m.test(header) ? 'added'
      : /^deleted file mode/m.test(header) ? 'removed'
        : renamedTo ? 'renamed' : 'modified';
    files.set(path, { hunks: at === -1 ? null : section.slice(at).replace(/\n$/, ''), status });
  }
  return files;
}
