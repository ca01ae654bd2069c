import type { ScrapedPR } from './pr.js';

/**
 * One item per PR number. A source can report a PR twice in one batch (search
 * pages that shift between requests, a PR number squash-merged twice in a git
 * history), and one INSERT ... ON CONFLICT cannot touch the same row twice.
 * The newest merge wins; on a tie, the later item (the fresher read). The
 * result keeps the order of first appearance.
 */
export function onePerNumber<T extends { pr: ScrapedPR }>(items: T[]): T[] {
  const chosen = new Map<number, T>();
  for (const item of items) {
    const held = chosen.get(item.pr.number);
    if (!held || Date.parse(item.pr.mergedAt) >= Date.parse(held.pr.mergedAt)) chosen.set(item.pr.number, item);
  }
  return [...chosen.values()];
}
