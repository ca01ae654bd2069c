import { findIssueRefs, refKey, refLabel, type IssueRef, type RefForm } from './issue-refs.js';

/** An issue as the BFS needs it; `isPullRequest` when GitHub says the number is a pull request. */
export interface IssueHead {
  title: string;
  body: string | null;
  isPullRequest: boolean;
}

/** An item of a timeline that refers to the issue (GitHub's `cross-referenced` events). */
export interface CrossReference extends IssueRef {
  isPullRequest: boolean;
}

/**
 * How the BFS reads GitHub. `issue` answers the HTTP status instead of the
 * issue when GitHub will not give it (404, 410, 451): that issue is skipped.
 */
export interface IssueFetcher {
  issue(ref: IssueRef): Promise<IssueHead | { status: number }>;
  /** Every comment's body, all pages. */
  comments(ref: IssueRef): Promise<string[]>;
  /** Items whose text refers to this issue or PR, from every timeline page. */
  crossReferences(ref: IssueRef): Promise<CrossReference[]>;
}

/** Where a link was found: the PR's text or timeline, or an issue's body, comments or timeline. */
export type FoundIn = 'pr title' | 'pr body' | 'pr timeline' | 'issue title' | 'issue body' | 'issue comment' | 'issue timeline';

export interface LinkedIssue extends IssueRef {
  title: string;
  body: string | null;
  comments: string[];
  /** 1 = linked from the PR itself, 2 = from an issue linked from the PR. */
  depth: number;
  /** How it was found: where, in which form, and from which item. */
  found: { in: FoundIn; form: RefForm | 'timeline'; from: string };
}

export interface SkippedRef extends IssueRef {
  reason: string;
  from: string;
}

export interface LinkedIssuesResult {
  issues: LinkedIssue[];
  skipped: SkippedRef[];
  /** Issues GitHub was asked about (each one GET, plus its comments and timeline). */
  lookups: number;
}

export interface BfsLimits {
  /** How far from the PR: 1 = only what the PR links, 2 = also what those issues link. */
  maxDepth: number;
  /** Issues kept at most. */
  maxIssues: number;
  /** Issue look-ups at most (linked PRs and missing issues cost a request too). */
  maxLookups: number;
}

interface Candidate {
  ref: IssueRef;
  depth: number;
  found: LinkedIssue['found'];
  /** Known to be a pull request before any request (a /pull/ URL, a timeline item). */
  knownPullRequest: boolean;
}

/**
 * The issues a PR links to, breadth-first: first everything the PR's title,
 * body and timeline name, then (up to `maxDepth`) what those issues' bodies,
 * comments and timelines name. Pull requests are skipped, never read: they may
 * discuss the solution. A reference back to an item already seen (a cycle,
 * the PR itself) is followed once only. Stops at `maxIssues` issues or
 * `maxLookups` requests, whichever comes first.
 */
export async function findLinkedIssues(
  pr: IssueRef & { title: string; body: string | null },
  fetcher: IssueFetcher,
  limits: BfsLimits,
  signal?: AbortSignal,
): Promise<LinkedIssuesResult> {
  const issues: LinkedIssue[] = [];
  const skipped: SkippedRef[] = [];
  const queued = new Set<string>([refKey(pr)]);
  const queue: Candidate[] = [];
  let lookups = 0;

  const enqueue = (ref: IssueRef, depth: number, found: Candidate['found'], knownPullRequest: boolean) => {
    const key = refKey(ref);
    if (queued.has(key)) return;
    queued.add(key);
    queue.push({ ref: { owner: ref.owner, name: ref.name, number: ref.number }, depth, found, knownPullRequest });
  };
  const enqueueText = (text: string | null, here: IssueRef, depth: number, where: FoundIn) => {
    for (const r of findIssueRefs(text, here)) enqueue(r, depth, { in: where, form: r.form, from: refLabel(here) }, r.pullUrl);
  };
  const enqueueTimeline = (refs: CrossReference[], here: IssueRef, depth: number, where: FoundIn) => {
    for (const r of refs) enqueue(r, depth, { in: where, form: 'timeline', from: refLabel(here) }, r.isPullRequest);
  };

  if (limits.maxIssues <= 0 || limits.maxDepth <= 0) return { issues, skipped, lookups };
  enqueueText(pr.title, pr, 1, 'pr title');
  enqueueText(pr.body, pr, 1, 'pr body');
  signal?.throwIfAborted();
  enqueueTimeline(await fetcher.crossReferences(pr), pr, 1, 'pr timeline');

  while (queue.length && issues.length < limits.maxIssues) {
    signal?.throwIfAborted();
    const c = queue.shift()!;
    const from = c.found.from;
    if (c.knownPullRequest) {
      skipped.push({ ...c.ref, from, reason: 'pull request' });
      continue;
    }
    if (lookups >= limits.maxLookups) {
      skipped.push({ ...c.ref, from, reason: `look-up limit (${limits.maxLookups})` });
      continue;
    }
    lookups++;
    const head = await fetcher.issue(c.ref);
    if ('status' in head) {
      skipped.push({ ...c.ref, from, reason: `HTTP ${head.status}` });
      continue;
    }
    if (head.isPullRequest) {
      skipped.push({ ...c.ref, from, reason: 'pull request' });
      continue;
    }
    const comments = await fetcher.comments(c.ref);
    issues.push({ ...c.ref, title: head.title, body: head.body, comments, depth: c.depth, found: c.found });
    if (c.depth < limits.maxDepth) {
      const next = c.depth + 1;
      enqueueText(head.title, c.ref, next, 'issue title');
      enqueueText(head.body, c.ref, next, 'issue body');
      for (const comment of comments) enqueueText(comment, c.ref, next, 'issue comment');
      enqueueTimeline(await fetcher.crossReferences(c.ref), c.ref, next, 'issue timeline');
    }
  }
  for (const c of queue) skipped.push({ ...c.ref, from: c.found.from, reason: `issue limit (${limits.maxIssues})` });
  return { issues, skipped, lookups };
}
