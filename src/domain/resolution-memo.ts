/**
 * The memo of resolutions: commits whose requirements, Python version and
 * cutoff day are the same (most adjacent commits of a repository) reuse one
 * resolution. The key also names the index and the resolver with its
 * version, so a new resolver or another index never reuses an old answer.
 * The family key is the same without the cutoff: a resolution made at one
 * cutoff is reused at another of the same family when no file the resolver
 * read was uploaded in between (its window, see the cutoff proxy).
 */
import { createHash } from 'node:crypto';

export interface MemoInputs {
  /** Requirement lines exactly as the resolver gets them. */
  requirements: readonly string[];
  pythonVersion: string;
  /** The cutoff (start of the commit's UTC day), or null when resolving without one. */
  cutoffDay: string | null;
  indexUrl: string;
  resolver: string;
  resolverVersion: string;
}

/**
 * The cutoff of a commit: the start of its UTC day. Resolving "as of the
 * commit's day" rather than its second is what makes the memo exact: every
 * commit of one day sees the same index.
 */
export function cutoffOf(commitDate: Date): { day: string; at: Date } {
  const day = commitDate.toISOString().slice(0, 10);
  return { day, at: new Date(`${day}T00:00:00Z`) };
}

/** Order does not matter (the resolver sees a set); duplicates neither. */
export function memoKey(inputs: MemoInputs): string {
  const canonical = JSON.stringify({
    requirements: [...new Set(inputs.requirements)].sort(),
    python: inputs.pythonVersion,
    cutoff_day: inputs.cutoffDay,
    index: inputs.indexUrl.replace(/\/+$/, ''),
    resolver: `${inputs.resolver} ${inputs.resolverVersion}`,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** The memo key without the cutoff: resolutions that differ only by when they were made. */
export function familyKey(inputs: Omit<MemoInputs, 'cutoffDay'>): string {
  return memoKey({ ...inputs, cutoffDay: 'any' });
}
