/** Public data shapes of the GitHub stand-in (see server.ts). */

export interface StandinFile {
  path: string;
  /** null for binary files. */
  additions: number | null;
  deletions: number | null;
}

/** The shape of a line of data/xarray-prs.jsonl, plus optional fields. */
export interface StandinPR {
  /** "owner/name" */
  repository: string;
  number: number;
  title: string;
  body?: string | null;
  /** ISO 8601 with offset, e.g. "2026-08-19T14:48:31-06:00". */
  merged_at: string;
  authored_at?: string | null;
  kind?: string;
  merge_commit_sha: string | null;
  base_sha: string | null;
  head_sha?: string | null;
  changed_files: number;
  files: StandinFile[];
  labels?: string[];
  author?: string | null;
  /**
   * Search serves this PR twice, as GitHub's offset pages do when results
   * shift between requests: 'extra' adds the second copy (all PRs still
   * served), 'displaces_next' serves it in place of the PR after it (that one
   * is never served). issueCount is unchanged either way.
   */
  search_duplicate?: 'extra' | 'displaces_next';
}

export interface StandinRepo {
  owner: string;
  name: string;
  stars?: number;
  topics?: string[];
  description?: string | null;
  default_branch?: string;
  fork?: boolean;
  archived?: boolean;
  disabled?: boolean;
  /** path -> text content, e.g. { 'asv.conf.json': '{...}' } */
  files?: Record<string, string>;
}

export interface StandinIssue {
  number: number;
  title: string;
  body?: string | null;
  comments?: string[];
  isPullRequest?: boolean;
}

export type FaultKind =
  | 'secondary-403'
  | 'secondary-429'
  | 'primary-403'
  | 'http-502'
  | 'graphql-rate-limited'
  | 'truncate';

export interface Fault {
  kind: FaultKind;
  /** How many matching requests it hits; default 1. */
  times?: number;
  /** retry-after / reset distance; default 1. */
  retryAfterSeconds?: number;
  /** Which requests it hits; default 'any'. */
  match?: 'graphql' | 'rest' | 'search' | 'any';
  /** truncate: how many items to drop; default 1. */
  drop?: number;
}

export interface StandinOptions {
  port?: number;
  /** token -> quota per window; absent = no auth needed, unlimited. */
  tokens?: Record<string, number>;
  /** Quota window in seconds; default 3600. */
  resetSeconds?: number;
  /** Delay before every API response. */
  latencyMs?: number;
  /** PRs merged less than this many seconds ago are missing from search results, as from GitHub's eventually consistent index; default 0. */
  searchVisibilityDelayS?: number;
}

export interface StandinStats {
  total: number;
  byRoute: Record<string, number>;
  byToken: Record<string, number>;
}
