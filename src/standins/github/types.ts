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
   * The PR's real unified diff (`git diff base merge`). When set, the diff
   * media type serves it as is and `/pulls/N/files` gives each file its own
   * hunks from it (`files` must list the same paths); otherwise both are
   * synthesized from `files`.
   */
  patch?: string | null;
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
  | 'http-500'
  | 'http-502'
  | 'http-503'
  | 'http-504'
  | 'graphql-rate-limited'
  | 'truncate'
  | 'timeout';

export interface Fault {
  kind: FaultKind;
  /** How many matching requests it hits; default 1. */
  times?: number;
  /** Hits every matching request for this long after it is injected, instead of `times` requests. */
  durationMs?: number;
  /** retry-after / reset distance; default 1. */
  retryAfterSeconds?: number;
  /** Which requests it hits; default 'any'. */
  match?: 'graphql' | 'rest' | 'search' | 'any';
  /** Only requests of this route (the stats key, or its start: 'rest:issues' hits issues, their comments and timelines). */
  route?: string;
  /** truncate: how many items to drop; default 1. */
  drop?: number;
  /** timeout: how long the request is held; absent = never answered (until the client gives up, clearFaults() or close()). */
  delayMs?: number;
  /** timeout: after the delay, answer as usual ('answer', default) or drop the connection unanswered ('reset'). */
  after?: 'answer' | 'reset';
}

/** Ways a PR's title and body can be broken on the wire. */
export type CorruptionKind =
  /** A NUL character (`\u0000` in JSON): valid JSON, but PostgreSQL text refuses it. */
  | 'nul'
  /** Raw bytes that are not UTF-8 (0xFF, 0xC3 0x28) in the HTTP body itself. */
  | 'invalid-utf8'
  /** A lone surrogate escape (`\ud800`) in the JSON: decodes to a string PostgreSQL refuses. */
  | 'lone-surrogate';

export interface Corruption {
  /** Default: all three, spread over the chosen PRs. */
  kinds?: CorruptionKind[];
  /** Share (0..1) of PRs whose title and body are corrupted, chosen by a hash of repository and number. */
  fraction?: number;
  /** These PR numbers are corrupted too (in any repository, or only in `repository`). */
  numbers?: number[];
  /** Only PRs of this "owner/name". */
  repository?: string;
}

export interface FaultStats {
  /** Requests each fault kind answered (or held, or shortened). */
  byKind: Partial<Record<FaultKind, number>>;
  /** Distinct PRs served with corrupted text at least once. */
  corruptedPRs: number;
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
