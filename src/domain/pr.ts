/** One changed file of a PR; binary files have no line counts. */
export interface ChangedFile {
  path: string;
  additions: number | null;
  deletions: number | null;
}

/**
 * A merged pull request as a source (GitHub API or a local git clone) reports
 * it, before it is stored in `pull_requests`. Timestamps are ISO 8601 strings.
 */
export interface ScrapedPR {
  number: number;
  title: string;
  body: string | null;
  author: string | null;
  labels: string[];
  createdAt: string | null;
  mergedAt: string;
  closedAt: string | null;
  mergeCommitSha: string | null;
  baseSha: string | null;
  headSha: string | null;
  files: ChangedFile[];
  /** The source's own count of changed files (may exceed files.length if truncated). */
  filesCount: number;
  additions: number | null;
  deletions: number | null;
  /** Unified diff, when the source has it for free (the git source). */
  patch?: string | null;
}

export { cleanText } from './clean.js';
